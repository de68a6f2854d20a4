"""Supabase's client-facing roles reach nothing: not a credit, not a function."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import Db


def _objects(db: Db, kind: str) -> list[str]:
    if kind == "table":
        rows = db.all(
            "select format('hubspot_sync.%%I', relname) as name from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'hubspot_sync' and relkind in ('r', 'v', 'm')"
        )
    else:
        rows = db.all(
            "select p.oid::regprocedure::text as name from pg_proc p"
            " join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'hubspot_sync'"
        )
    return [r["name"] for r in rows]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_client_roles_have_no_privilege_on_any_table_or_function(db: Db, role: str) -> None:
    tables = _objects(db, "table")
    functions = _objects(db, "function")
    assert len(tables) >= 5 and len(functions) >= 10

    for table in tables:
        for privilege in ("select", "insert", "update", "delete"):
            allowed = db.one(
                "select has_table_privilege(%s, %s, %s) as ok", role, table, privilege
            )["ok"]
            assert not allowed, f"{role} may {privilege} {table}"
    for function in functions:
        allowed = db.one("select has_function_privilege(%s, %s, 'execute') as ok", role, function)[
            "ok"
        ]
        assert not allowed, f"{role} may execute {function}"
    assert not db.one("select has_schema_privilege(%s, 'hubspot_sync', 'usage') as ok", role)["ok"]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_client_roles_cannot_read_a_credit_or_call_a_function(db: Db, role: str) -> None:
    db.contact(student_id="SECRET1", email="secret@example.com", cs_credits=7)
    exam = db.exam()

    attempts = [
        "select cs_credits from hubspot_sync.hubspot_contact_credits",
        "select hubspot_sync.contact_credits(p_student_id => 'SECRET1', p_email => 'secret@example.com')",
        f"select hubspot_sync.book(p_student_id => 'SECRET1', p_email => 'secret@example.com',"
        f" p_exam_id => '{exam['id']}', p_dominant_hand => 'right')",
        "update hubspot_sync.hubspot_contact_credits set cs_credits = 100",
    ]
    with psycopg.connect(db.url, autocommit=True) as conn:
        for statement in attempts:
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(f"set local role {role}")
                conn.execute(statement)
    assert db.one("select cs_credits from hubspot_sync.hubspot_contact_credits")["cs_credits"] == 7
    assert db.count("hubspot_bookings") == 0


def test_service_role_can_book(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam()
    with psycopg.connect(db.url, autocommit=True) as conn, conn.transaction():
        conn.execute("set local role service_role")
        row = conn.execute(
            "select hubspot_sync.book(p_student_id => %s, p_email => %s, p_exam_id => %s,"
            " p_dominant_hand => 'left')",
            (contact["student_id"], contact["email"], str(exam["id"])),
        ).fetchone()
    assert row is not None and row[0]["ok"] is True


def test_row_level_security_is_on_for_every_table(db: Db) -> None:
    off = db.all(
        "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'hubspot_sync' and relkind = 'r' and not relrowsecurity"
    )
    assert off == []
