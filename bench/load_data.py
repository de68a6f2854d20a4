"""The data the HTTP benchmarks run on, and the invariants checked after each run.

One scratch database (dropped and recreated, migrated with lib.migrations) and one
Redis database of their own. Before every measured run both are emptied and reloaded
with set-based SQL, so each run starts from the same state and its checks only see
its own rows:

* students `<prefix><n>` / `<prefix><n>@load.example`, n = 1..count, each holding
  `credits` Clinical Skills credits and nothing else;
* Clinical Skills exams `LOAD-<n>`, open, starting a month ahead (one per day, so a
  student may hold one of each), with the capacity the run asks for;
* the school's past (`load_history`): HISTORY_BOOKINGS completed bookings of other
  students on closed exams `HIST-<n>`, synced to HubSpot long ago, as production's
  tables hold the old system's migrated bookings. No student of the run owns them and
  no run books those exams; they are there for the planner (see HISTORY_BOOKINGS).

After the run, `check()` reads the database (the run's own bookings: the history
is left out) and holds it to what must never break:
no exam oversold and every seat count equal to its seat-holding bookings, credits
conserved (what the students hold now plus what their active bookings spent is what
they were given), and every booking the client was told about exists, and vice versa.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import psycopg
import redis
from psycopg import sql

from lib import migrations

MOCK_TYPE = "Clinical Skills"
EXAM_PREFIX = "LOAD-"
EMAIL_DOMAIN = "load.example"
# The history production's bookings table carries. A run that starts from an empty
# table measures what production never runs: each pooled connection plans book()'s
# look-ups (by Idempotency-Key, the one-per-day check) while the table is a page long,
# keeps those plans (sequential scans), and scans the whole table twice per booking
# as the run fills it. Issue 16 found it: one client's booking took 1.4 ms of database
# time at the start and 2.6 ms after 4,800 bookings; with this history, 1.2 ms
# throughout. 20,000 is about ten years of the school (~2,000 students a year booking
# a few mocks each); what matters is that the planner sees a table of thousands.
HISTORY_BOOKINGS = 20_000
# Smoke runs prove the harness, not speed: a history that still exercises loading it
# and leaving it out of the checks, at a fraction of the reset's time and WAL.
SMOKE_HISTORY_BOOKINGS = 400
HISTORY_EXAMS = 200
HISTORY_PREFIX = "HIST-"
# The SQL condition for a booking of the run, not of the history: every count of a
# run's bookings uses it. A literal built from our own constant, never from input (and
# without %, so it reads the same in a query with parameters and in one without).
RUN_BOOKING = f"not starts_with(associated_mock_exam, '{HISTORY_PREFIX}')"
# Every table book() and cancel_booking() write, and the audit logs their triggers fill.
# CASCADE: tables added by later migrations (the sync's) may reference them.
TABLES = (
    "hubspot_sync.hubspot_bookings",
    "hubspot_sync.hubspot_contact_credits",
    "hubspot_sync.hubspot_mock_exams",
    "hubspot_sync.supabase_audit_log",
    "hubspot_sync.audit_log",
)


class DataError(RuntimeError):
    """The scratch data cannot be set up (e.g. the Redis database is not empty-able)."""


@dataclass(frozen=True)
class Population:
    """What one run needs loaded."""

    students: int
    exams: int
    capacity: int  # seats per exam
    credits: int = 1  # Clinical Skills credits per student
    prefix: str = "L"  # student ids are <prefix><n>
    history: int = HISTORY_BOOKINGS  # past bookings loaded beside (load_history)

    def student_id(self, n: int) -> str:
        return f"{self.prefix}{n}"

    def email(self, n: int) -> str:
        return f"{self.prefix.lower()}{n}@{EMAIL_DOMAIN}"


@dataclass(frozen=True)
class Exam:
    id: str  # the UUID students book by, as the available list gives it
    hubspot_id: str
    capacity: int


def create_database(admin_url: str, name: str) -> str:
    """Drop and recreate database `name` on admin_url's server, migrate it; its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    migrations.up(url)
    return url


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def reset(database_url: str, redis_url: str, population: Population) -> list[Exam]:
    """Empty the scratch database and Redis database, load `population`; its exams."""
    flush_redis(redis_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(sql.SQL("truncate {} restart identity cascade").format(_tables()))
            # Start times a month ahead and beyond: no exam starts during a run (rule 2).
            rows = _insert_exams(
                conn, EXAM_PREFIX, population.exams, population.capacity, days_from_now=30
            )
            conn.execute(
                """
                insert into hubspot_sync.hubspot_contact_credits
                  (hubspot_id, student_id, email, firstname, lastname, cs_credits)
                select 'LH' || %(prefix)s || n, %(prefix)s || n,
                       lower(%(prefix)s) || n || '@' || %(domain)s,
                       'Load', 'Student ' || n, %(credits)s
                  from generate_series(1, %(students)s) n
                """,
                {
                    "prefix": population.prefix,
                    "domain": EMAIL_DOMAIN,
                    "credits": population.credits,
                    "students": population.students,
                },
            )
            load_history(conn, population.history)
        # Fresh statistics: the planner must see 100,000 students, not an empty table.
        conn.execute(
            "vacuum (analyze) hubspot_sync.hubspot_bookings, hubspot_sync.hubspot_contact_credits,"
            " hubspot_sync.hubspot_mock_exams"
        )
        # Write the reload back now, as bench/db_throughput.py does, so that the run
        # does not pay for it in a checkpoint of its own.
        conn.execute("checkpoint")
    exams = [Exam(id=str(r[0]), hubspot_id=str(r[1]), capacity=int(r[2])) for r in rows]
    return sorted(exams, key=lambda e: int(e.hubspot_id.removeprefix(EXAM_PREFIX)))


def _insert_exams(
    conn: psycopg.Connection, prefix: str, count: int, capacity: int, days_from_now: int
) -> list[tuple[str, str, int]]:
    """Clinical Skills exams `<prefix><i>`, i = 1..count, one a day from `days_from_now`
    days ahead onwards, or backwards from there for a negative offset (past exams,
    closed). Their (id, hubspot_id, capacity)."""
    rows = conn.execute(
        """
        insert into hubspot_sync.hubspot_mock_exams
          (hubspot_id, mock_exam_name, mock_type, exam_date, start_time, end_time,
           location, capacity, total_bookings, is_active)
        select %(prefix)s || i, 'Exam ' || %(prefix)s || i, %(type)s, d,
               (d + time '09:00') at time zone 'America/Toronto',
               (d + time '12:00') at time zone 'America/Toronto',
               'Mississauga', %(capacity)s, 0, %(active)s
          from generate_series(1, %(count)s) i,
               lateral (select current_date + %(offset)s + sign(%(offset)s)::int * i as d) day
        returning id::text, hubspot_id, capacity
        """,
        {
            "prefix": prefix,
            "type": MOCK_TYPE,
            "capacity": capacity,
            "count": count,
            "offset": days_from_now,
            "active": "true" if days_from_now > 0 else "false",
        },
    ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def load_history(conn: psycopg.Connection, bookings: int = HISTORY_BOOKINGS) -> None:
    """`bookings` completed, synced bookings of past students on HISTORY_EXAMS
    closed exams (dates before today, `HIST-<n>`). Set-based: ~1 s a reset. The
    caller analyzes afterwards. A completed booking holds no seat, so these exams show
    0 held, as check() finds them."""
    capacity = max(1, -(-bookings // HISTORY_EXAMS))
    _insert_exams(conn, HISTORY_PREFIX, HISTORY_EXAMS, capacity, days_from_now=-30)
    # Student n's booking is on exam n mod HISTORY_EXAMS + 1; synced (hubspot_id, a
    # sync time no later than the last change), so the sync has nothing to do for it.
    conn.execute(
        """
        insert into hubspot_sync.hubspot_bookings
          (hubspot_id, booking_id, associated_mock_exam, associated_contact_id, student_id,
           name, student_email, is_active, booking_status, attendance, exam_date,
           dominant_hand, token_used, start_time, end_time, idempotency_key, mock_type,
           created_at, updated_at, hubspot_last_sync_at)
        select 'HB' || n, 'HIST-' || n, e.hubspot_id, 'HC' || n, 'P' || n,
               'Past Student ' || n, 'p' || n || '@' || %(domain)s, 'Completed', 'Completed',
               'Yes', e.exam_date, 'right', 'Clinical Skills Token', e.start_time,
               e.end_time, 'history-' || n, e.mock_type, e.exam_date - 20, e.exam_date,
               e.exam_date + 1
          from generate_series(1, %(bookings)s) n
          join hubspot_sync.hubspot_mock_exams e
            on e.hubspot_id = %(prefix)s || (n %% %(exams)s + 1)
        """,
        {
            "prefix": HISTORY_PREFIX,
            "domain": EMAIL_DOMAIN,
            "bookings": bookings,
            "exams": HISTORY_EXAMS,
        },
    )


def _tables() -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL(".").join(sql.Identifier(part) for part in table.split(".")) for table in TABLES
    )


def flush_redis(redis_url: str) -> None:
    """Empty the benchmark's own Redis database: cached exam lists, seat counters and
    rate-limit windows of an earlier run must not answer for this one."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        raise DataError(f"cannot empty the benchmark's Redis database: {exc}") from exc
    finally:
        client.close()


# ---------------------------------------------------------------- invariants


@dataclass(frozen=True)
class Checks:
    exams_oversold: int  # exams with more seat-holding bookings than capacity
    seat_mismatches: int  # exams whose seat count differs from their bookings
    negative_balances: int
    credits_given: int
    credits_held: int  # now
    credits_spent: int  # by the active bookings (each spent one)
    bookings: int  # the run's rows in hubspot_bookings (active and cancelled; no history)
    active: int
    cancelled: int
    unanswered: int  # bookings in the database the client was never told about
    phantom: int  # bookings the client was told about that the database lacks

    @property
    def problems(self) -> list[str]:
        found = []
        if self.exams_oversold:
            found.append(f"{self.exams_oversold} exams oversold")
        if self.seat_mismatches:
            found.append(f"{self.seat_mismatches} exams' seat counts differ from their bookings")
        if self.negative_balances:
            found.append(f"{self.negative_balances} negative credit balances")
        if self.credits_given != self.credits_held + self.credits_spent:
            found.append(
                f"credits not conserved: {self.credits_given} given,"
                f" {self.credits_held} held + {self.credits_spent} spent"
            )
        if self.unanswered:
            found.append(f"{self.unanswered} bookings written but never answered to the client")
        if self.phantom:
            found.append(f"{self.phantom} bookings answered but not in the database")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


def check(database_url: str, population: Population, answered: Collection[str]) -> Checks:
    """The invariants after a run. `answered`: the ids of every booking a 201 (or a
    replay) reported to the client."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            """
            with held as (
              select e.hubspot_id, e.capacity, (hubspot_sync._seat_state(e)).booked as counted,
                     -- Active only: a Completed booking holds no seat (20251203000900).
                     count(b.id) filter (where b.is_active = 'Active') as holding
                from hubspot_sync.hubspot_mock_exams e
                left join hubspot_sync.hubspot_bookings b on b.associated_mock_exam = e.hubspot_id
               group by e.id)
            select
              (select count(*) from held where holding > capacity or counted > capacity),
              (select count(*) from held where holding <> counted),
              (select count(*) from hubspot_sync.hubspot_contact_credits
                where least(sj_credits, cs_credits, sjmini_credits, mock_discussion_token,
                            shared_mock_credits) < 0),
              (select coalesce(sum(cs_credits), 0) from hubspot_sync.hubspot_contact_credits),
              (select count(*) from hubspot_sync.hubspot_bookings
                where is_active = 'Active' and token_used <> 'Admin Override'),
              (select count(*) from hubspot_sync.hubspot_bookings where is_active = 'Active'),
              (select count(*) from hubspot_sync.hubspot_bookings where is_active = 'Cancelled')
            """
        ).fetchone()
        ids = {
            str(r[0])
            for r in conn.execute(
                f"select id::text from hubspot_sync.hubspot_bookings where {RUN_BOOKING}"
            )
        }
    assert row is not None
    oversold, mismatches, negative, held, spent, active, cancelled = (int(v) for v in row)
    answered_ids = set(answered)
    return Checks(
        exams_oversold=oversold,
        seat_mismatches=mismatches,
        negative_balances=negative,
        credits_given=population.students * population.credits,
        credits_held=held,
        credits_spent=spent,
        bookings=len(ids),
        active=active,
        cancelled=cancelled,
        unanswered=len(ids - answered_ids),
        phantom=len(answered_ids - ids),
    )
