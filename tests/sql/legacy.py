"""The replaced system's database for tests: its data quirks, its team's dual-ID
attempt, and its app's traffic.

Facts from its public repository (docs/original-system-database.md): what its scripts
allowed and what its code wrote. `fill(url)` fills the baseline (20251201000000) with
rows as that app left them; `OldApp` issues the statements its code sends through
PostgREST (section 14 of that document), so a test can keep it writing while the
migrations run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

DUAL_ID_ATTEMPT = Path(__file__).with_name("dual_id_attempt.sql")
MOCK_TYPES = ("Situational Judgment", "Clinical Skills", "Mini-mock", "Mock Discussion")
TOKENS = {
    "Situational Judgment": ("sj_credits", "SJ Token"),
    "Clinical Skills": ("cs_credits", "CS Token"),
    "Mini-mock": ("sjmini_credits", "Mini-mock Token"),
    "Mock Discussion": ("mock_discussion_token", "Mock Discussion Token"),
}
LOCATIONS = ("Mississauga", "Calgary", "Vancouver", "Montreal", "Richmond Hill", "Online")
# The first student of the data: a test logs in as them after the migration.
FIRST_STUDENT = ("PREP000001", "student1@example.com")


@dataclass
class Quirks:
    """What fill() made, by quirk, so a test can find each one in `check`'s report."""

    negative_balance: list[str] = field(default_factory=list)  # contact hubspot ids
    duplicate_active: list[str] = field(default_factory=list)  # booking hubspot ids (the later)
    lowercase_cancelled: list[str] = field(default_factory=list)
    legacy_dominant_hand: list[str] = field(default_factory=list)
    null_hubspot_id: int = 0  # bookings made in Supabase first (variant only)
    repeated_codes: list[str] = field(default_factory=list)
    drifted_exams: list[str] = field(default_factory=list)
    unreadable_times: list[str] = field(default_factory=list)
    legacy_bookings_of_first_student: int = 0


def _js_iso(moment: datetime) -> str:
    """new Date(ms).toISOString(): what the old app wrote into text time columns."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _naive(moment: datetime) -> datetime:
    """What a `timestamp` column keeps of the old app's ISO string: UTC wall-clock."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def fill(
    url: str, *, students: int = 120, exams: int = 24, seed: int = 13, nullable_ids: bool = False
) -> Quirks:
    """Rows as the replaced system left them. With `nullable_ids` (the dual-ID
    attempt's schema, tests/sql/dual_id_attempt.sql) some bookings have no HubSpot id
    yet, as its create_booking_atomic and bulk-create made them."""
    rng = random.Random(seed)
    quirks = Quirks()
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        for n in range(1, students + 1):
            balances = [rng.randint(0, 4) for _ in range(5)]
            if n % 37 == 5:  # the refund bug: a balance below zero
                balances[0] = -1
                balances[4] = -2
                quirks.negative_balance.append(f"{9000 + n}")
            created = now - timedelta(days=200 - n)
            conn.execute(
                "insert into hubspot_sync.hubspot_contact_credits (hubspot_id, student_id,"
                " email, firstname, lastname, sj_credits, cs_credits, sjmini_credits,"
                " mock_discussion_token, shared_mock_credits, ndecc_exam_date, created_at,"
                " updated_at, synced_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s)",
                (
                    f"{9000 + n}",
                    f"PREP{n:06d}",
                    f"student{n}@example.com",
                    "Stu",
                    f"Dent{n}",
                    *balances,
                    "2027-06-15" if n % 3 else None,
                    _naive(created),
                    _naive(created + timedelta(days=1)),
                    _naive(created + timedelta(days=1)),
                ),
            )
        exam_rows = []
        for n in range(1, exams + 1):
            mock_type = MOCK_TYPES[n % 4]
            day = (now + timedelta(days=(n % 12) * 5 - 20)).date()
            start = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
            end = start + timedelta(hours=3)
            forms = (
                (_js_iso(start), _js_iso(end)),
                (str(int(start.timestamp() * 1000)), str(int(end.timestamp() * 1000))),
                (start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")),
            )
            start_text: str = forms[n % 3][0]
            end_text: str | None = forms[n % 3][1]
            if n == exams:  # a value that is no time at all
                start_text, end_text = "TBD", None
                quirks.unreadable_times.append(f"7{n:04d}")
            exam_rows.append((f"7{n:04d}", mock_type, day))
            conn.execute(
                "insert into hubspot_sync.hubspot_mock_exams (hubspot_id, mock_exam_name,"
                " mock_type, exam_date, start_time, end_time, location, capacity,"
                " total_bookings, is_active, created_at, updated_at, synced_at, mock_set)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s)",
                (
                    f"7{n:04d}",
                    f"{mock_type} {day}",
                    mock_type,
                    day,
                    start_text,
                    end_text,
                    LOCATIONS[n % len(LOCATIONS)],
                    40,
                    "true" if n % 5 else "false",
                    _naive(now - timedelta(days=60)) if n % 4 else None,
                    _naive(now - timedelta(days=30)) if n % 4 else None,
                    _naive(now - timedelta(hours=5)),
                    "ABCDEFGH"[n % 8] if n % 2 else None,
                ),
            )
        booking = 0
        for s in range(1, students + 1):
            for k in range(rng.randint(1, 4) if s > 1 else 5):
                hubspot_exam, mock_type, day = exam_rows[(s * 7 + k * 5) % len(exam_rows)]
                booking += 1
                status = rng.choice(("Active", "Active", "Active", "Cancelled", "Completed"))
                if booking % 23 == 0:
                    status = "cancelled"  # the lower-case spelling its filters allow for
                hand = rng.choice(("true", "false", "Right", None))
                hubspot_id: str | None = f"5{booking:06d}"
                if nullable_ids and booking % 17 == 0:
                    hubspot_id = None
                    quirks.null_hubspot_id += 1
                _insert_booking(
                    conn, booking, hubspot_id, s, hubspot_exam, mock_type, day, status, hand, now
                )
                if status == "cancelled" and hubspot_id:
                    quirks.lowercase_cancelled.append(hubspot_id)
                if hand in ("true", "false", "Right") and hubspot_id:
                    quirks.legacy_dominant_hand.append(hubspot_id)
                if s == 1:
                    quirks.legacy_bookings_of_first_student += 1
        # Its duplicate check raced: two Active bookings of one student, type and date,
        # and with them a repeated legacy booking code.
        for s in (3, 4):
            hubspot_exam, mock_type, day = exam_rows[(s * 11) % len(exam_rows)]
            for _ in range(2):
                booking += 1
                _insert_booking(
                    conn,
                    booking,
                    f"5{booking:06d}",
                    s,
                    hubspot_exam,
                    mock_type,
                    day,
                    "Active",
                    "Right",
                    now,
                )
            quirks.duplicate_active.append(f"5{booking:06d}")
            quirks.repeated_codes.append(f"{mock_type}-PREP{s:06d}-{day:%B %-d, %Y}")
        # The running counter: Active bookings, drifted on a few exams (lost webhooks).
        conn.execute(
            "update hubspot_sync.hubspot_mock_exams e set total_bookings = (select count(*)"
            " from hubspot_sync.hubspot_bookings b where b.associated_mock_exam = e.hubspot_id"
            " and b.is_active = 'Active')"
        )
        for hubspot_exam, _, _ in exam_rows[:3]:
            conn.execute(
                "update hubspot_sync.hubspot_mock_exams set total_bookings = total_bookings + 2"
                " where hubspot_id = %s",
                (hubspot_exam,),
            )
            quirks.drifted_exams.append(hubspot_exam)
    return quirks


def _insert_booking(
    conn: psycopg.Connection[Any],
    n: int,
    hubspot_id: str | None,
    student: int,
    exam: str,
    mock_type: str,
    day: date,
    status: str,
    hand: str | None,
    now: datetime,
) -> None:
    start = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
    made = now - timedelta(days=90) + timedelta(minutes=n)
    token = TOKENS[mock_type][1]
    conn.execute(
        "insert into hubspot_sync.hubspot_bookings (hubspot_id, booking_id,"
        " associated_mock_exam, associated_contact_id, student_id, name, student_email,"
        " is_active, attendance, attending_location, exam_date, dominant_hand, created_at,"
        " updated_at, synced_at, token_used, start_time, end_time, idempotency_key,"
        " mock_type) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s)",
        (
            hubspot_id,
            f"{mock_type}-PREP{student:06d}-{day:%B %-d, %Y}",
            exam,
            f"{9000 + student}",
            f"PREP{student:06d}",
            f"Stu Dent{student}",
            f"student{student}@example.com",
            status,
            "Yes" if status == "Completed" else None,
            "Mississauga",
            datetime(day.year, day.month, day.day),
            hand,
            _naive(made) if n % 11 else None,
            _naive(made) if n % 11 else None,
            _naive(made + timedelta(minutes=5)),
            token,
            _js_iso(start),
            _js_iso(start + timedelta(hours=3)),
            f"idem_{n:08x}",
            mock_type,
        ),
    )


class OldApp:
    """The replaced app's statements, as its supabase-js calls reach PostgreSQL
    (section 14 of docs/original-system-database.md): reads by student and exam, cache
    upserts ON CONFLICT (hubspot_id) with its own column sets, the seat counter RPC,
    the prerequisite RPCs and status updates. One connection, autocommit, as PostgREST
    runs each request in its own transaction."""

    def __init__(self, url: str, worker: int, students: int, exams: int) -> None:
        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        self.worker = worker
        self.students = students
        self.exams = exams
        self.n = 0

    def close(self) -> None:
        self.conn.close()

    def _read(self, query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """A read as PostgREST sends it: the rows come back as one JSON body, so the
        statement's result type never changes when a migration adds or retypes a
        column (a prepared `select *` would fail with "cached plan must not change
        result type"; PostgREST's do not)."""
        row = self.conn.execute(
            f"select coalesce(json_agg(_t), '[]'::json) as body from ({query}) _t", params
        ).fetchone()
        assert row is not None
        return list(row["body"])

    def step(self) -> str:  # noqa: PLR0911 - one branch per kind of request, in one place
        """One request of the mix; returns its name."""
        self.n += 1
        s = 1 + (self.worker * 31 + self.n) % self.students
        e = f"7{1 + (self.worker * 7 + self.n) % self.exams:04d}"
        kind = self.n % 8
        now_iso = _js_iso(datetime.now(UTC))
        c = self.conn
        if kind == 0:  # user login.js: credits by student id and email
            self._read(
                "select * from hubspot_sync.hubspot_contact_credits where student_id = %s"
                " and email = lower(%s)",
                (f"PREP{s:06d}", f"student{s}@example.com"),
            )
            return "read credits"
        if kind == 1:  # C1: the login's cache upsert of HubSpot's contact
            c.execute(
                "insert into hubspot_sync.hubspot_contact_credits (hubspot_id, student_id, email,"
                " firstname, lastname, sj_credits, cs_credits, sjmini_credits,"
                " mock_discussion_token, shared_mock_credits, ndecc_exam_date, updated_at,"
                " synced_at) select hubspot_id, student_id, email, firstname, lastname,"
                " greatest(sj_credits, 0), cs_credits, sjmini_credits, mock_discussion_token,"
                " greatest(shared_mock_credits, 0), ndecc_exam_date, %s, %s"
                " from hubspot_sync.hubspot_contact_credits where hubspot_id = %s"
                " on conflict (hubspot_id) do update set student_id = excluded.student_id,"
                " email = excluded.email, sj_credits = excluded.sj_credits,"
                " cs_credits = excluded.cs_credits, shared_mock_credits ="
                " excluded.shared_mock_credits, updated_at = excluded.updated_at,"
                " synced_at = excluded.synced_at",
                (now_iso, now_iso, f"{9000 + s}"),
            )
            return "upsert contact"
        if kind == 2:  # bookings/list.js
            self._read(
                "select * from hubspot_sync.hubspot_bookings where associated_contact_id = %s"
                " order by exam_date desc",
                (f"{9000 + s}",),
            )
            return "list bookings"
        if kind == 3:  # the seat counter, up then down (a booking and its cancel)
            c.execute("select public.increment_exam_bookings(%s, 1)", (e,))
            c.execute("select public.increment_exam_bookings(%s, -1)", (e,))
            return "increment_exam_bookings"
        if kind == 4:  # E2: the hourly cron's exam upsert (no total_bookings)
            c.execute(
                "insert into hubspot_sync.hubspot_mock_exams (hubspot_id, mock_exam_name,"
                " mock_type, mock_set, exam_date, start_time, end_time, location, capacity,"
                " is_active, prerequisite_exam_ids, created_at, updated_at, synced_at)"
                " select hubspot_id, mock_exam_name, mock_type, mock_set, exam_date, start_time,"
                " end_time, location, capacity, is_active, prerequisite_exam_ids, %s, %s, %s"
                " from hubspot_sync.hubspot_mock_exams where hubspot_id = %s"
                " on conflict (hubspot_id) do update set mock_exam_name ="
                " excluded.mock_exam_name, start_time = excluded.start_time, end_time ="
                " excluded.end_time, capacity = excluded.capacity, updated_at ="
                " excluded.updated_at, synced_at = excluded.synced_at",
                (now_iso, now_iso, now_iso, e),
            )
            return "upsert exam"
        if kind == 5:  # prerequisites/delta.js and index.js
            c.execute(
                "select hubspot_sync.update_exam_prerequisites(%s, %s, %s)",
                (e, ["70001", "70002"], ["70003"]),
            )
            c.execute("select hubspot_sync.set_exam_prerequisites(%s, %s)", (e, ["70001"]))
            return "prerequisite RPCs"
        if kind == 6:  # B2: the admin's bookings cache upsert, and a status update
            rows = self._read(
                "select hubspot_id from hubspot_sync.hubspot_bookings where student_id = %s"
                " and hubspot_id is not null limit 1",
                (f"PREP{s:06d}",),
            )
            if rows:
                row = rows[0]
                c.execute(
                    "insert into hubspot_sync.hubspot_bookings (hubspot_id, booking_id,"
                    " associated_mock_exam, associated_contact_id, student_id, name,"
                    " student_email, is_active, attendance, attending_location, exam_date,"
                    " dominant_hand, token_used, mock_type, start_time, end_time,"
                    " idempotency_key, created_at, updated_at, synced_at)"
                    " select hubspot_id, booking_id, associated_mock_exam, associated_contact_id,"
                    " student_id, name, student_email, is_active, attendance, attending_location,"
                    " exam_date, dominant_hand, token_used, mock_type, start_time, end_time,"
                    " idempotency_key, created_at, %s, %s from hubspot_sync.hubspot_bookings"
                    " where hubspot_id = %s on conflict (hubspot_id) do update set"
                    " attendance = excluded.attendance, updated_at = excluded.updated_at,"
                    " synced_at = excluded.synced_at",
                    (now_iso, now_iso, row["hubspot_id"]),
                )
            return "upsert booking"
        # kind 7: the capacity check of bookings/create.js and a sync_metadata write
        self._read(
            "select count(*) from hubspot_sync.hubspot_bookings where associated_mock_exam = %s"
            " and is_active = 'Active'",
            (e,),
        )
        c.execute(
            "insert into public.sync_metadata (sync_type, last_sync_timestamp, updated_at)"
            " values ('mock_exams', %s, %s) on conflict (sync_type) do update set"
            " last_sync_timestamp = excluded.last_sync_timestamp, updated_at = excluded.updated_at",
            (int(datetime.now(UTC).timestamp() * 1000), now_iso),
        )
        return "capacity check"
