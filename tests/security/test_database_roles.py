"""Supabase's client-facing roles, anon and authenticated, can read nothing and execute
nothing in any schema the migrations create (the whole database but PostgreSQL's own
catalogs), whatever is granted to them directly, to PUBLIC, or through a role they
belong to. Beyond tests/sql/test_access.py (tables, views and functions of
hubspot_sync): sequences, types, every privilege kind, column grants, every
non-system schema, PUBLIC's grants, default privileges for objects created later,
the roles' own attributes and memberships, and each object tried as each role.

Left as PostgreSQL has them, on purpose: CONNECT and TEMP on the database (PUBLIC's
defaults; a temporary table reaches no data), USAGE on the empty `public` schema
(PUBLIC's default; a test below keeps what is there to the replaced system's own
objects, because Supabase grants anon and authenticated everything created there), USAGE on the row types of tables
(PUBLIC's default for every table; the schema is out of their reach).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.helpers import Db

ROLES = ("anon", "authenticated")
SYSTEM = "n.nspname !~ '^pg_' and n.nspname <> 'information_schema'"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# Every (role, object, privilege) that anon or authenticated holds, one query.
GRANTED = f"""
with role(name) as (select unnest(%(roles)s::text[])),
relations as (
  select c.oid, c.relkind, format('%%I.%%I', n.nspname, c.relname) as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where {SYSTEM} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
)
select role.name as role, 'table ' || r.name as object, p.privilege
  from role, relations r, unnest(%(table_privileges)s::text[]) as p(privilege)
 where r.relkind <> 'S' and has_table_privilege(role.name, r.oid, p.privilege)
union all
select role.name, 'columns of ' || r.name, 'any column'
  from role, relations r
 where r.relkind <> 'S'
   and has_any_column_privilege(role.name, r.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
union all
select role.name, 'sequence ' || r.name, p.privilege
  from role, relations r, unnest(array['USAGE', 'SELECT', 'UPDATE']) as p(privilege)
 where r.relkind = 'S' and has_sequence_privilege(role.name, r.oid, p.privilege)
union all
select role.name, 'function ' || f.oid::regprocedure::text, 'EXECUTE'
  from role, pg_proc f join pg_namespace n on n.oid = f.pronamespace
 where {SYSTEM} and has_function_privilege(role.name, f.oid, 'EXECUTE')
union all
select role.name, 'type ' || t.oid::regtype::text, 'USAGE'
  from role, pg_type t join pg_namespace n on n.oid = t.typnamespace
 where {SYSTEM} and t.typtype in ('e', 'd', 'r', 'm', 'b')
   and t.typelem = 0 and has_type_privilege(role.name, t.oid, 'USAGE')
union all
select role.name, 'schema ' || n.nspname, p.privilege
  from role, pg_namespace n, unnest(array['USAGE', 'CREATE']) as p(privilege)
 where {SYSTEM} and has_schema_privilege(role.name, n.oid, p.privilege)
   and not (n.nspname = 'public' and p.privilege = 'USAGE')
union all
select role.name, 'database', 'CREATE'
  from role where has_database_privilege(role.name, current_database(), 'CREATE')
union all
select role.name, 'role ' || r.rolname, 'MEMBER'
  from role, pg_roles r
 where r.rolname <> role.name and pg_has_role(role.name, r.oid, 'MEMBER')
"""

# What PUBLIC is granted explicitly or by default on every object of those schemas.
PUBLIC_GRANTS = f"""
select format('%%s %%s', kind, name) as object, acl.privilege_type as privilege
  from (
    select 'relation' as kind, c.oid::regclass::text as name,
           coalesce(c.relacl, acldefault((case when c.relkind = 'S' then 's' else 'r' end)::"char",
                                         c.relowner)) as acl
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where {SYSTEM} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
    union all
    select 'function', p.oid::regprocedure::text, coalesce(p.proacl, acldefault('f'::"char", p.proowner))
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace where {SYSTEM}
    union all
    select 'schema', n.nspname, coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))
      from pg_namespace n where {SYSTEM} and n.nspname <> 'public'
    union all
    select 'type', t.oid::regtype::text, coalesce(t.typacl, acldefault('T'::"char", t.typowner))
      from pg_type t join pg_namespace n on n.oid = t.typnamespace
     where {SYSTEM} and t.typtype in ('e', 'd', 'r', 'm', 'b') and t.typelem = 0
  ) objects, aclexplode(objects.acl) as acl
 where acl.grantee = 0
"""


def _granted(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        GRANTED, {"roles": list(ROLES), "table_privileges": list(TABLE_PRIVILEGES)}
    ).fetchall()
    return sorted((row[0], row[1], row[2]) for row in rows)


def _objects(db: Db) -> dict[str, int]:
    return {
        row["kind"]: row["n"]
        for row in db.all(
            f"select case when c.relkind = 'S' then 'sequence' else 'relation' end as kind,"
            f" count(*) as n from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            f" where {SYSTEM} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') group by 1"
            f" union all select 'function', count(*) from pg_proc p"
            f" join pg_namespace n on n.oid = p.pronamespace where {SYSTEM}"
            f" union all select 'schema', count(*) from pg_namespace n where {SYSTEM}"
        )
    }


def test_anon_and_authenticated_hold_no_privilege_on_anything(db: Db) -> None:
    objects = _objects(db)
    assert objects["relation"] >= 12 and objects["sequence"] >= 1
    assert objects["function"] >= 60 and objects["schema"] >= 3
    with psycopg.connect(db.url) as conn:
        assert _granted(conn) == []


def test_the_privilege_check_sees_a_grant(db: Db) -> None:
    """Negative control: grants made in a transaction (rolled back) are each reported,
    directly, through PUBLIC and through membership of a role that holds them."""
    with psycopg.connect(db.url) as conn:
        conn.execute("grant usage on schema hubspot_sync to anon")
        conn.execute("grant select (email) on hubspot_sync.hubspot_contact_credits to anon")
        conn.execute("grant execute on function hubspot_sync.sync_health() to public")
        conn.execute("grant usage on sequence hubspot_sync.sync_run_errors_id_seq to authenticated")
        # NOINHERIT: nothing of service_role's shows as authenticated's own privilege,
        # but SET ROLE would take all of it.
        conn.execute("grant service_role to authenticated")
        granted = _granted(conn)
        conn.rollback()
    assert ("anon", "schema hubspot_sync", "USAGE") in granted
    assert ("anon", "columns of hubspot_sync.hubspot_contact_credits", "any column") in granted
    assert ("anon", "function hubspot_sync.sync_health()", "EXECUTE") in granted
    assert ("authenticated", "sequence hubspot_sync.sync_run_errors_id_seq", "USAGE") in granted
    assert ("authenticated", "role service_role", "MEMBER") in granted


def test_public_is_granted_nothing(db: Db) -> None:
    """No object of these schemas grants anything to PUBLIC, explicitly or by
    PostgreSQL's defaults (new functions are executable by PUBLIC unless revoked: every
    migration that creates one revokes it). Table row types keep PUBLIC's USAGE."""
    granted = db.all(PUBLIC_GRANTS)
    assert [g for g in granted if not g["object"].startswith("type ")] == []
    row_types = {g["object"] for g in granted}
    tables = {
        f"type {r['name']}"
        for r in db.all(
            f"select c.oid::regclass::text as name from pg_class c"
            f" join pg_namespace n on n.oid = c.relnamespace"
            f" where {SYSTEM} and c.relkind in ('r', 'p', 'v', 'm')"
        )
    }
    assert row_types <= tables


def test_no_default_privileges_reach_the_client_roles(db: Db) -> None:
    """Objects created later get nothing either: no ALTER DEFAULT PRIVILEGES names
    anon, authenticated or PUBLIC."""
    rows = db.all(
        "select d.defaclnamespace::regnamespace::text as schema, d.defaclobjtype as kind,"
        " acl.grantee from pg_default_acl d, aclexplode(d.defaclacl) acl"
        " where acl.grantee = 0 or acl.grantee in"
        " (select oid from pg_roles where rolname in ('anon', 'authenticated'))"
    )
    assert rows == []


def test_the_public_schema_holds_only_what_the_replaced_system_put_there(db: Db) -> None:
    """Supabase grants anon and authenticated everything created in `public` (its
    default privileges there): the migrations create nothing in it. What is there is
    the replaced system's (its sync_metadata table and seat-counter function, in the
    baseline), and the privilege tests above hold for those too."""
    rows = db.all(
        "select 'relation ' || c.relname as name from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'"
        " union all select 'function ' || p.proname from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'"
        " union all select 'type ' || t.typname from pg_type t"
        " join pg_namespace n on n.oid = t.typnamespace where n.nspname = 'public'"
    )
    assert sorted(r["name"] for r in rows) == [
        "function increment_exam_bookings",
        "relation idx_sync_metadata_type",
        "relation sync_metadata",
        "relation sync_metadata_pkey",
        "relation sync_metadata_sync_type_key",
        "type _sync_metadata",
        "type sync_metadata",
    ]


@pytest.mark.parametrize("role", ROLES)
def test_the_client_roles_have_no_power_of_their_own(db: Db, role: str) -> None:
    """Not superuser, no RLS bypass, cannot create roles or databases (memberships are
    in the privilege check above)."""
    row = db.one(
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication"
        " from pg_roles where rolname = %s",
        role,
    )
    assert not any(row.values()), row


def _tries(db: Db) -> list[tuple[str, str]]:
    """One statement per table, sequence and function, as a client would try it."""
    tries = [
        (r["name"], f"select * from {r['name']} limit 1")
        for r in db.all(
            f"select c.oid::regclass::text as name from pg_class c"
            f" join pg_namespace n on n.oid = c.relnamespace"
            f" where {SYSTEM} and c.relkind in ('r', 'p', 'v', 'm', 'f')"
        )
    ]
    tries += [
        (r["name"], f"select nextval('{r['name']}')")
        for r in db.all(
            f"select c.oid::regclass::text as name from pg_class c"
            f" join pg_namespace n on n.oid = c.relnamespace where {SYSTEM} and c.relkind = 'S'"
        )
    ]
    for function in db.all(
        f"select p.oid::regprocedure::text as signature, format('%%I.%%I', n.nspname, p.proname)"
        f" as name, p.pronargs as args, p.prokind as kind from pg_proc p"
        f" join pg_namespace n on n.oid = p.pronamespace where {SYSTEM}"
    ):
        nulls = ", ".join(["null"] * function["args"])
        call = "call" if function["kind"] == "p" else "select"
        tries.append((function["signature"], f"{call} {function['name']}({nulls})"))
    return tries


@pytest.mark.parametrize("role", ROLES)
def test_every_table_sequence_and_function_refuses_the_client_roles(db: Db, role: str) -> None:
    tries = _tries(db)
    assert len(tries) >= 75
    refused = []
    with psycopg.connect(db.url, autocommit=True, row_factory=dict_row) as conn:
        for name, statement in tries:
            try:
                with conn.transaction():
                    conn.execute(f"set local role {role}")
                    conn.execute(statement)
            except psycopg.errors.InsufficientPrivilege:
                refused.append(name)
            except psycopg.Error as exc:
                pytest.fail(f"{role}: {statement} reached the object: {exc}")
            else:
                pytest.fail(f"{role}: {statement} ran")
    assert len(refused) == len(tries)
