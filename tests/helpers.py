"""Row factories and queries for tests: put rows in place directly, call the SQL
functions the way production does (lib.db backends), and read back the truth."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from lib.db import PsycopgBackend

TORONTO = ZoneInfo("America/Toronto")
CREDIT_KINDS = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)
TABLES = (
    "hubspot_sync.hubspot_bookings",
    "hubspot_sync.hubspot_contact_credits",
    "hubspot_sync.hubspot_mock_exams",
    "hubspot_sync.supabase_audit_log",
    "hubspot_sync.audit_log",
    "hubspot_sync.sync_runs",
    "hubspot_sync.sync_run_errors",
    "hubspot_sync.sync_lease",
    "hubspot_sync.sync_state",
    "hubspot_sync.sync_contact_credits",
    "hubspot_sync.sync_exam_seats",
    "hubspot_sync.exam_seat_shards",
    "hubspot_sync.sync_booking_creates",
    "hubspot_sync.credit_adjustments",
)
_serial = itertools.count(1)


def old_app_time(moment: datetime) -> str:
    """A start/end time as the exams and bookings tables hold it: text, in the form the
    replaced app writes (JavaScript's toISOString(), UTC); see 20251203001180."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class Db:
    def __init__(self, url: str, backend: PsycopgBackend) -> None:
        self.url = url
        self.backend = backend
        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)

    def close(self) -> None:
        self.conn.close()

    def truncate(self) -> None:
        self.conn.execute(f"truncate {', '.join(TABLES)} restart identity")

    # ------------------------------------------------------------------ calls

    def call(self, name: str, **params: Any) -> dict[str, Any]:
        return self.backend.call(name, params)

    def book(self, contact: dict[str, Any], exam: dict[str, Any], **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "p_student_id": contact["student_id"],
            "p_email": contact["email"],
            "p_exam_id": str(exam["id"]),
        }
        if exam["mock_type"] == "Clinical Skills":
            params["p_dominant_hand"] = "right"
        if exam["mock_type"] in ("Situational Judgment", "Mini-mock"):
            params["p_attending_location"] = "mississauga"
        params.update(extra)
        return self.backend.call("book", params)

    # ------------------------------------------------------------------ rows

    def contact(self, **values: Any) -> dict[str, Any]:
        n = next(_serial)
        row: dict[str, Any] = {
            "hubspot_id": f"{100000 + n}",
            "student_id": f"S{n:05d}",
            "email": f"student{n}@example.com",
            "firstname": "Test",
            "lastname": f"Student{n}",
        }
        row.update({kind: 0 for kind in CREDIT_KINDS})
        row.update(values)
        return self._insert("hubspot_contact_credits", row)

    def exam(self, **values: Any) -> dict[str, Any]:
        n = next(_serial)
        day: date = values.pop("exam_date", date.today() + timedelta(days=14))
        start = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TORONTO)
        row: dict[str, Any] = {
            "hubspot_id": f"{900000 + n}",
            "mock_exam_name": f"Exam {n}",
            "mock_type": "Clinical Skills",
            "exam_date": day,
            "start_time": start,
            "end_time": start + timedelta(hours=3),
            "location": "Mississauga",
            "capacity": 10,
            "total_bookings": 0,
            "is_active": "true",
        }
        row.update(values)
        for key in ("start_time", "end_time"):
            if isinstance(row[key], datetime):
                row[key] = old_app_time(row[key])
        return self._insert("hubspot_mock_exams", row)

    def booking(
        self, contact: dict[str, Any], exam: dict[str, Any], **values: Any
    ) -> dict[str, Any]:
        """A booking inserted directly (history the functions cannot create, e.g. past
        exams). Keeps the exam's seat count in step when the booking holds a seat: its
        shards are re-dealt from the exam's Active bookings (recount_seats)."""
        n = next(_serial)
        row: dict[str, Any] = {
            "hubspot_id": f"{500000 + n}",
            "booking_id": f"{exam['mock_type']}-{contact['student_id']}-legacy{n}",
            "associated_mock_exam": exam["hubspot_id"],
            "associated_contact_id": contact["hubspot_id"],
            "student_id": contact["student_id"],
            "student_email": contact["email"],
            "name": "Test Student",
            "is_active": "Active",
            "exam_date": exam["exam_date"],
            "mock_type": exam["mock_type"],
            "token_used": "Clinical Skills Token",
        }
        row.update(values)
        inserted = self._insert("hubspot_bookings", row)
        if inserted["is_active"] == "Active":
            self.conn.execute(
                "select hubspot_sync.recount_seats(id) from hubspot_sync.hubspot_mock_exams"
                " where hubspot_id = %s",
                (exam["hubspot_id"],),
            )
        return inserted

    def _insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        columns = ", ".join(row)
        placeholders = ", ".join(f"%({key})s" for key in row)
        result = self.conn.execute(
            f"insert into hubspot_sync.{table} ({columns}) values ({placeholders}) returning *",
            row,
        ).fetchone()
        assert result is not None
        return result

    # ------------------------------------------------------------------ truth

    def one(self, query: str, *args: Any) -> dict[str, Any]:
        row = self.conn.execute(query, args).fetchone()
        assert row is not None, query
        return row

    def all(self, query: str, *args: Any) -> list[dict[str, Any]]:
        return self.conn.execute(query, args).fetchall()

    def credits(self, contact: dict[str, Any]) -> dict[str, int]:
        row = self.one(
            "select * from hubspot_sync.hubspot_contact_credits where id = %s", contact["id"]
        )
        return {kind: row[kind] for kind in CREDIT_KINDS}

    def seats(self, exam: dict[str, Any]) -> int:
        """The exam's live seat count: the sum of its shards (20251212000100)."""
        return int(
            self.one(
                "select (hubspot_sync._seat_state(e)).booked from hubspot_sync.hubspot_mock_exams e"
                " where id = %s",
                exam["id"],
            )["booked"]
        )

    def held_seats(self, exam: dict[str, Any]) -> int:
        return int(
            self.one(
                "select count(*) as n from hubspot_sync.hubspot_bookings"
                " where associated_mock_exam = %s and is_active = 'Active'",
                exam["hubspot_id"],
            )["n"]
        )

    def count(self, table: str) -> int:
        return int(self.one(f"select count(*) as n from hubspot_sync.{table}")["n"])


def now_utc() -> datetime:
    return datetime.now(UTC)
