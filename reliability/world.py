"""The torture's world: students and upcoming mock exams in PostgreSQL, mirrored into
the HubSpot stand-in as the real portal would hold them before the rush.

Sized to make the system argue with itself: few seats per exam (capacities 2 to 10)
against many students, several exams of one type on one date (the duplicate rule),
balances of 0 to 3 per kind (so credits run out), and some students PostgreSQL made
that HubSpot has never seen (the sync must create them). Everything is drawn from one
seeded generator: the same seed gives the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from lib.hubspot.mapping import CREDIT_KINDS

TORONTO = ZoneInfo("America/Toronto")
MOCK_TYPES = ("Situational Judgment", "Clinical Skills", "Mini-mock", "Mock Discussion")
LOCATIONS = ("Mississauga", "Calgary", "Vancouver", "Montreal")
MIN_SEATS, MAX_SEATS = 2, 10
# The share of students PostgreSQL created that HubSpot does not know yet.
POSTGRES_ONLY_SHARE = 0.1


@dataclass(frozen=True)
class Student:
    id: str  # the contact row's UUID
    student_id: str
    email: str
    hubspot_id: str | None


@dataclass(frozen=True)
class Exam:
    id: str
    hubspot_id: str
    mock_type: str
    exam_date: date
    capacity: int


@dataclass(frozen=True)
class World:
    students: tuple[Student, ...]
    exams: tuple[Exam, ...]
    # Balances when the world was made: the checker's starting point.
    initial_credits: dict[str, dict[str, int]]  # contact UUID -> kind -> balance


def create(database_url: str, rng: random.Random, *, students: int, exams: int) -> World:
    """Insert the world in one transaction and return it."""
    today = datetime.now(TORONTO).date()
    with psycopg.connect(database_url, row_factory=dict_row) as conn, conn.transaction():
        exam_rows = [
            _insert(conn, "hubspot_mock_exams", _exam_row(rng, n, today)) for n in range(exams)
        ]
        contact_rows = [
            _insert(conn, "hubspot_contact_credits", _contact_row(rng, n)) for n in range(students)
        ]
    return World(
        students=tuple(
            Student(str(r["id"]), r["student_id"], r["email"], r["hubspot_id"])
            for r in contact_rows
        ),
        exams=tuple(
            Exam(str(r["id"]), r["hubspot_id"], r["mock_type"], r["exam_date"], r["capacity"])
            for r in exam_rows
        ),
        initial_credits={
            str(r["id"]): {kind: int(r[kind]) for kind in CREDIT_KINDS} for r in contact_rows
        },
    )


def _exam_row(rng: random.Random, n: int, today: date) -> dict[str, Any]:
    # Pairs of exams share a type and a date, so one student may try both.
    mock_type = MOCK_TYPES[(n // 2) % len(MOCK_TYPES)]
    day = today + timedelta(days=7 + (n // 2) % 5)
    start = datetime.combine(day, time(9 + n % 2 * 4), tzinfo=TORONTO)
    return {
        "hubspot_id": f"{770000 + n}",
        "mock_exam_name": f"Torture {mock_type} {n}",
        "mock_type": mock_type,
        "exam_date": day,
        "start_time": start,
        "end_time": start + timedelta(hours=3),
        "location": LOCATIONS[n % len(LOCATIONS)],
        "capacity": rng.randint(MIN_SEATS, MAX_SEATS),
        "total_bookings": 0,
        "is_active": "true",
    }


def _contact_row(rng: random.Random, n: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "hubspot_id": None if rng.random() < POSTGRES_ONLY_SHARE else f"{660000 + n}",
        "student_id": f"T{n:05d}",
        "email": f"torture{n}@example.com",
        "firstname": "Torture",
        "lastname": f"Student {n}",
    }
    row.update({kind: rng.randint(0, 3) for kind in CREDIT_KINDS})
    return row


def _insert(conn: psycopg.Connection[dict[str, Any]], table: str, row: dict[str, Any]) -> Any:
    columns = ", ".join(row)
    values = ", ".join(f"%({key})s" for key in row)
    return conn.execute(
        f"insert into hubspot_sync.{table} ({columns}) values ({values}) returning *", row
    ).fetchone()
