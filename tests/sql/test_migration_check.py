"""`./run migrate check` reports what would stop or change the migration, reads only,
and `up` refuses on it before its first statement.

The data quirks are ones the replaced system allowed (docs/original-system-database.md):
a balance its refund path drove negative, two active bookings of one student for one
date and type, a new-form booking code used twice. The object clashes are what its
team's own dual-ID attempt (its PRD 01/02) left in production: `supabase_audit_log`
with other columns, `hubspot_last_sync_at` already added, `check_idempotency_key` with
its own parameter name (ours has another name, so theirs is left alone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from lib import migrations
from lib.migration_check import Finding

PRE = "20251201000000"


def _connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def _baseline_with_data(url: str) -> None:
    migrations.up(url, to=PRE)
    with _connect(url) as conn:
        for n in range(1, 6):
            conn.execute(
                "insert into hubspot_sync.hubspot_contact_credits"
                " (hubspot_id, student_id, email, cs_credits, shared_mock_credits)"
                " values (%s, %s, %s, 2, 1)",
                (f"c{n}", f"S{n:07d}", f"s{n}@example.com"),
            )
        conn.execute(
            "insert into hubspot_sync.hubspot_mock_exams (hubspot_id, mock_type, exam_date,"
            " capacity, total_bookings, is_active) values"
            " ('e1', 'Clinical Skills', current_date + 10, 10, 0, 'true')"
        )


def _book(conn: psycopg.Connection[dict[str, Any]], hubspot_id: str, code: str) -> None:
    conn.execute(
        "insert into hubspot_sync.hubspot_bookings (hubspot_id, booking_id, student_id,"
        " student_email, exam_date, mock_type, is_active, associated_mock_exam,"
        " associated_contact_id) values (%s, %s, 'S0000001', 's1@example.com',"
        " current_date + 10, 'Clinical Skills', 'Active', 'e1', 'c1')",
        (hubspot_id, code),
    )


def _by_code(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.code: finding for finding in findings}


def _state(url: str) -> tuple[Any, ...]:
    """Everything check could have changed: the data and the schema's objects."""
    with _connect(url) as conn:
        rows = tuple(
            tuple(conn.execute(f"select * from hubspot_sync.{table} order by id").fetchall())
            for table in ("hubspot_contact_credits", "hubspot_mock_exams", "hubspot_bookings")
        )
        objects = conn.execute(
            "select c.relname, c.relkind from pg_class c join pg_namespace n"
            " on n.oid = c.relnamespace where n.nspname = 'hubspot_sync' order by 1"
        ).fetchall()
        versions = conn.execute(
            "select version from supabase_migrations.schema_migrations order by 1"
        ).fetchall()
    return rows, tuple(objects), tuple(versions)


def test_a_clean_baseline_has_nothing_to_report(new_database: Callable[[], str]) -> None:
    url = new_database()
    _baseline_with_data(url)
    with _connect(url) as conn:
        assert [f for f in migrations.preflight(conn) if f.blocking] == []
    assert migrations.main(["check", "--database-url", url]) == 0


def test_each_data_quirk_is_reported_with_its_count_and_ids(
    new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = new_database()
    _baseline_with_data(url)
    with _connect(url) as conn:
        conn.execute(
            "update hubspot_sync.hubspot_contact_credits set cs_credits = -1"
            " where hubspot_id in ('c2', 'c4')"
        )
        _book(conn, "b1", "Clinical Skills-S0000001-March 1, 2026")
        _book(conn, "b2", "Clinical Skills-S0000001-March 1, 2026")  # the same seat twice
        conn.execute(
            "update hubspot_sync.hubspot_bookings set booking_id = 'BK-20261203-AAAAAA'"
        )  # two rows, one new-form code
    before = _state(url)

    with _connect(url) as conn:
        found = _by_code(migrations.preflight(conn))

    negative = found["NEGATIVE_BALANCE"]  # kept: the rule covers new writes
    assert not negative.blocking and negative.migration == "20251203000700"
    assert negative.count == 2 and negative.samples == ("c2", "c4")
    duplicate = found["DUPLICATE_ACTIVE_BOOKINGS"]  # kept, marked legacy_duplicate
    assert not duplicate.blocking and duplicate.migration == "20251203001090"
    assert duplicate.count == 1 and duplicate.samples == ("b1+b2",)
    codes = found["DUPLICATE_BOOKING_CODES"]
    assert codes.count == 1 and codes.samples == ("BK-20261203-AAAAAA",)
    assert _state(url) == before  # read only

    assert migrations.main(["check", "--database-url", url]) == 1
    out = capsys.readouterr().out
    assert "note NEGATIVE_BALANCE [20251203000700]: 2" in out
    assert "note DUPLICATE_ACTIVE_BOOKINGS [20251203001090]: 1" in out
    assert "STOP DUPLICATE_BOOKING_CODES [20251203001000]: 1" in out
    # The two bookings hold seats the exam's count (0) never had; the baseline's
    # timestamps are naive: both reported, neither stops.
    assert "note SEAT_COUNT_DRIFT [20251203000900]: 1 " in out
    assert "note NAIVE_TIMESTAMPS: 9 " in out
    assert "5 findings, 1 that would stop the migration" in out

    # `up` runs it first and changes nothing.
    with pytest.raises(migrations.MigrationError, match="nothing was changed"):
        migrations.up(url)
    assert _state(url) == before


def test_objects_left_by_the_original_teams_dual_id_attempt_are_refused_before_any_change(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    _baseline_with_data(url)
    with _connect(url) as conn:
        # As its PRD 01/02 made them.
        conn.execute(
            "create table hubspot_sync.supabase_audit_log (id bigserial primary key,"
            " table_name text not null, record_id uuid not null, record_hubspot_id text,"
            " operation text not null, changed_fields jsonb, old_values jsonb,"
            " new_values jsonb, performed_by text, performed_at timestamptz default now(),"
            " synced_to_hubspot_at timestamptz)"
        )
        conn.execute(
            "alter table hubspot_sync.hubspot_contact_credits"
            " add column hubspot_last_sync_at timestamptz"
        )
        conn.execute(
            "create function hubspot_sync.check_idempotency_key(p_idempotency_key text)"
            " returns jsonb language sql as $$ select null::jsonb $$"
        )
    before = _state(url)

    with _connect(url) as conn:
        findings = migrations.preflight(conn)
    found = _by_code(findings)

    table = found["TABLE_CLASH"]
    assert table.blocking and table.migration == "20251203000130"
    assert "supabase_audit_log" in table.message
    assert "hubspot_id missing" in table.message and "reason missing" in table.message
    assert "changed_fields is jsonb, not text[]" in table.message
    column = found["COLUMN_ADOPTED"]  # same name, same type: adopted
    assert not column.blocking and "hubspot_contact_credits.hubspot_last_sync_at" in column.message
    # Our read of an idempotency key is named booking_for_key: theirs is left alone.
    assert "FUNCTION_CLASH" not in found

    with pytest.raises(migrations.MigrationError, match="TABLE_CLASH"):
        migrations.up(url)
    assert _state(url) == before
    # The old app's writes still work: no trigger was added to insert into the
    # foreign audit table.
    with _connect(url) as conn:
        conn.execute(
            "update hubspot_sync.hubspot_contact_credits set cs_credits = 3 where hubspot_id = 'c1'"
        )


def test_a_migrated_database_has_nothing_pending_to_report(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    migrations.up(url)
    with _connect(url) as conn:
        assert migrations.preflight(conn) == []


def test_negative_balances_are_kept_and_the_rule_covers_new_writes(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    _baseline_with_data(url)
    with _connect(url) as conn:
        conn.execute(
            "update hubspot_sync.hubspot_contact_credits set sj_credits = -2"
            " where hubspot_id = 'c1'"
        )
    migrations.up(url)  # a negative balance stops nothing
    with _connect(url) as conn:
        row = conn.execute(
            "select id, sj_credits, cs_credits from hubspot_sync.hubspot_contact_credits"
            " where hubspot_id = 'c1'"
        ).fetchone()
        assert row is not None and (row["sj_credits"], row["cs_credits"]) == (-2, 2)
        contact = str(row["id"])
        # The student still books with a kind above zero (the row is updated: the rule
        # must not trip over the legacy -2 in another kind).
        booked = conn.execute(
            "select hubspot_sync.book(p_student_id => 'S0000001', p_email => 's1@example.com',"
            " p_exam_id => 'e1', p_dominant_hand => 'right') as r"
        ).fetchone()
        assert booked is not None and booked["r"]["ok"] is True, booked
        # An admin may raise the legacy balance, or change another kind...
        raised = conn.execute(
            'select hubspot_sync.adjust_credits(%s, \'{"sj_credits": 1, "cs_credits": 1}\','
            " 'legacy fix', 'admin@example.com', 'adjust-1') as r",
            (contact,),
        ).fetchone()
        assert raised is not None and raised["r"]["ok"] is True, raised
        # ...but not lower it further.
        lowered = conn.execute(
            "select hubspot_sync.adjust_credits(%s, '{\"sj_credits\": -1}', 'oops',"
            " 'admin@example.com', 'adjust-2') as r",
            (contact,),
        ).fetchone()
        assert lowered is not None and lowered["r"]["code"] == "CREDITS_WOULD_BE_NEGATIVE"
        # Whatever path writes: no balance becomes negative, or more negative.
        with pytest.raises(psycopg.errors.CheckViolation) as refused:
            conn.execute(
                "update hubspot_sync.hubspot_contact_credits set sj_credits = sj_credits - 1"
                " where hubspot_id = 'c1'"
            )
        assert refused.value.diag.constraint_name == "contact_credits_non_negative"
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "update hubspot_sync.hubspot_contact_credits set shared_mock_credits = -1"
                " where hubspot_id = 'c2'"
            )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "insert into hubspot_sync.hubspot_contact_credits (student_id, email, cs_credits)"
                " values ('NEW1', 'new1@example.com', -1)"
            )
        with pytest.raises(psycopg.errors.CheckViolation) as refused:
            conn.execute(
                "update hubspot_sync.hubspot_mock_exams set capacity = -1 where hubspot_id = 'e1'"
            )
        assert refused.value.diag.constraint_name == "mock_exams_seats_non_negative"
        after = conn.execute(
            "select sj_credits, cs_credits from hubspot_sync.hubspot_contact_credits"
            " where hubspot_id = 'c1'"
        ).fetchone()
        assert after == {"sj_credits": -1, "cs_credits": 2}  # -2 + 1; 2 - 1 (booked) + 1


def test_duplicate_active_bookings_are_kept_outside_the_one_per_day_rule(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    _baseline_with_data(url)
    with _connect(url) as conn:
        _book(conn, "b1", "Clinical Skills-S0000001-March 1, 2026")
        _book(conn, "b2", "Clinical Skills-S0000001-March 1, 2026")
    migrations.up(url)  # duplicates stop nothing
    with _connect(url) as conn:
        rows = conn.execute(
            "select hubspot_id, is_active, legacy_duplicate from hubspot_sync.hubspot_bookings"
            " order by hubspot_id"
        ).fetchall()
        assert rows == [
            {"hubspot_id": "b1", "is_active": "Active", "legacy_duplicate": False},
            {"hubspot_id": "b2", "is_active": "Active", "legacy_duplicate": True},
        ]
        audited = conn.execute(
            "select performed_by, changed_fields from hubspot_sync.supabase_audit_log"
            " where table_name = 'hubspot_bookings' and hubspot_id = 'b2'"
        ).fetchall()
        assert audited == [
            {"performed_by": "migration:20251203001090", "changed_fields": ["legacy_duplicate"]}
        ]
        # The rule holds for every other row: a third is refused by the index.
        with pytest.raises(psycopg.errors.UniqueViolation):
            _book(conn, "b3", "Clinical Skills-S0000001-March 1, 2026")
    # The marks go with the rollback: the baseline comes back as it was.
    migrations.down(url, to=PRE)
    with _connect(url) as conn:
        column = conn.execute(
            "select 1 from information_schema.columns where table_name = 'hubspot_bookings'"
            " and column_name = 'legacy_duplicate'"
        ).fetchone()
        assert column is None
        assert conn.execute(
            "select count(*) as n from hubspot_sync.hubspot_bookings where is_active = 'Active'"
        ).fetchone() == {"n": 2}
