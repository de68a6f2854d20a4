"""Apply and roll back `supabase/migrations/` the way the Supabase CLI does.

Each file is one migration, applied in version order, each in its own transaction,
and recorded in `supabase_migrations.schema_migrations(version, name, statements)`,
so that `supabase db push` on a real project sees the same history. Files whose
first line is `-- migrate: no-transaction` hold one statement that cannot run in a
transaction (CREATE INDEX CONCURRENTLY); they run in autocommit, as the CLI runs a
single-statement file.

Rollbacks live beside them in `supabase/rollbacks/<version>_<name>.down.sql` (the
CLI has no down migrations). `down --to V` undoes every applied migration newer
than V, newest first.

Used by the local stack, the tests and, for a production deploy, by hand:
    ./run migrate up --database-url "$DATABASE_URL"
Written by hand because it is small and must match the CLI's bookkeeping exactly;
no migration library records versions in Supabase's table.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from lib.migration_check import Finding

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
ROLLBACKS_DIR = ROOT / "supabase" / "rollbacks"
NO_TRANSACTION_MARKER = "-- migrate: no-transaction"
DESTRUCTIVE_MARKER = "DESTRUCTIVE"

# A migration that gives up on its lock (lock_timeout, 55P03) or loses a deadlock
# (40P01) is retried:
# it failed without waiting long, so trying again a moment later is what an operator
# would do by hand. Five tries spread over ~15 s ride out a burst of long transactions.
LOCK_RETRIES = 5
LOCK_RETRY_PAUSE_S = 1.0

_FILE_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration or rollback could not be applied; nothing of that file was kept."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def rollback_path(self) -> Path:
        return ROLLBACKS_DIR / f"{self.version}_{self.name}.down.sql"


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: expected <YYYYMMDDHHMMSS>_<name>.sql")
        found.append(Migration(match["version"], match["name"], path))
    return found


def _ensure_history_table(conn: psycopg.Connection) -> None:
    # The same shape the Supabase CLI creates.
    with conn.transaction():
        conn.execute("create schema if not exists supabase_migrations")
        conn.execute(
            "create table if not exists supabase_migrations.schema_migrations"
            " (version text not null primary key)"
        )
        conn.execute(
            "alter table supabase_migrations.schema_migrations"
            " add column if not exists statements text[]"
        )
        conn.execute(
            "alter table supabase_migrations.schema_migrations add column if not exists name text"
        )


def applied_versions(conn: psycopg.Connection[Any]) -> list[str]:
    _ensure_history_table(conn)
    return _recorded_versions(conn)


def _recorded_versions(conn: psycopg.Connection[Any]) -> list[str]:
    """The applied versions, read without creating anything (the pre-flight writes
    nothing, not even the history table)."""
    from psycopg.rows import tuple_row

    cur = conn.cursor(row_factory=tuple_row)
    found = cur.execute(
        "select to_regclass('supabase_migrations.schema_migrations') is not null"
    ).fetchone()
    if not found or not found[0]:
        return []
    rows = cur.execute(
        "select version from supabase_migrations.schema_migrations order by version"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _is_no_transaction(text: str) -> bool:
    return text.lstrip().startswith(NO_TRANSACTION_MARKER)


def _drop_invalid_indexes_named_in(conn: psycopg.Connection, text: str) -> None:
    """A CREATE INDEX CONCURRENTLY that failed half-way leaves an INVALID index behind,
    and `if not exists` would then skip it forever. Drop such leftovers first."""
    for name in re.findall(r"index concurrently if not exists (\w+)", text, flags=re.I):
        row = conn.execute(
            "select n.nspname from pg_index i join pg_class c on c.oid = i.indexrelid"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where c.relname = %s and not i.indisvalid",
            (name,),
        ).fetchone()
        if row:
            conn.execute(
                sql.SQL("drop index concurrently if exists {}.{}").format(
                    sql.Identifier(row[0]), sql.Identifier(name)
                )
            )


def _existing_valid_indexes(conn: psycopg.Connection, names: list[str]) -> list[str]:
    rows = conn.execute(
        "select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'hubspot_sync' and c.relname = any(%s) and i.indisvalid",
        (names,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _has_kept_objects(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select to_regclass('supabase_migrations.kept_objects') is not null"
    ).fetchone()
    return bool(row and row[0])


def _kept_indexes(conn: psycopg.Connection, version: str) -> list[str]:
    """Indexes `version` found already there (supabase_migrations.kept_objects, made by
    20251203000001), which its rollback must leave."""
    if not _has_kept_objects(conn):
        return []
    rows = conn.execute(
        "select name from supabase_migrations.kept_objects where version = %s and kind = 'index'",
        (version,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _adopt_existing_indexes(conn: psycopg.Connection, version: str, text: str) -> None:
    """A CREATE INDEX CONCURRENTLY IF NOT EXISTS that finds a valid index of its name
    keeps it (the original team's dual-ID attempt made `idx_bookings_student_id` and
    `idx_bookings_student_email`); it is recorded so that the rollback does not drop
    what it did not build. A single-statement file cannot record this itself."""
    names = re.findall(r"index concurrently if not exists (\w+)", text, flags=re.I)
    found = _existing_valid_indexes(conn, names) if names else []
    if found and _has_kept_objects(conn):
        for index in found:
            conn.execute("select supabase_migrations.keep(%s, 'index', %s)", (version, index))


def _run_file(
    conn: psycopg.Connection, text: str, record: str | None, forget: str | None, name: str
) -> None:
    """Run one file (in a transaction unless marked otherwise), then record or forget
    its version. Retries on lock timeout."""
    for attempt in range(1, LOCK_RETRIES + 1):
        try:
            if _is_no_transaction(text):
                _drop_invalid_indexes_named_in(conn, text)
                if record is not None:
                    _adopt_existing_indexes(conn, record, text)
                dropped = re.findall(
                    r"drop index concurrently if exists (?:\w+\.)?(\w+)", text, flags=re.I
                )
                if (
                    forget is not None
                    and dropped
                    and set(dropped) <= set(_kept_indexes(conn, forget))
                ):
                    # An adopted index: its rollback leaves it as it was found.
                    with conn.transaction():
                        conn.execute(
                            "delete from supabase_migrations.kept_objects where version = %s",
                            (forget,),
                        )
                        _bookkeep(conn, record, forget, name, text)
                    return
                try:
                    conn.execute(text.encode())
                except psycopg.Error:
                    # CREATE INDEX CONCURRENTLY that fails (a duplicate for a unique
                    # index, a cancel) leaves its index behind INVALID: never used for
                    # reads, yet maintained on every write and blocking the name. A
                    # failed file leaves nothing behind, so `up` can simply run again.
                    _drop_invalid_indexes_named_in(conn, text)
                    raise
                with conn.transaction():
                    _bookkeep(conn, record, forget, name, text)
            else:
                with conn.transaction():
                    conn.execute(text.encode())
                    _bookkeep(conn, record, forget, name, text)
            return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            if attempt == LOCK_RETRIES:
                raise
            time.sleep(LOCK_RETRY_PAUSE_S * attempt)


def _bookkeep(
    conn: psycopg.Connection, record: str | None, forget: str | None, name: str, text: str
) -> None:
    if record is not None:
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements)"
            " values (%s, %s, %s)",
            (record, name, [text]),
        )
    if forget is not None:
        conn.execute(
            "delete from supabase_migrations.schema_migrations where version = %s", (forget,)
        )


def preflight(
    conn: psycopg.Connection[Any],
    to: str | None = None,
    migrations: Iterable[Migration] | None = None,
) -> list[Finding]:
    """What would stop or change the pending migrations (lib/migration_check.py)."""
    from lib.migration_check import check

    every = list(migrations) if migrations is not None else discover()
    applied = set(_recorded_versions(conn))
    pending = [
        (m.version, m.text)
        for m in every
        if m.version not in applied and (to is None or m.version <= to)
    ]
    done = [(m.version, m.text) for m in every if m.version in applied]
    return check(conn, pending, done)


def up(
    database_url: str,
    to: str | None = None,
    migrations: Iterable[Migration] | None = None,
    *,
    check: bool = True,
) -> list[str]:
    """Apply every pending migration (up to and including `to`). Returns the versions
    applied. With `check` (always, but in tests of the runner itself), the pre-flight
    runs first and a blocking finding refuses before anything changes."""
    done: list[str] = []
    migrations = list(migrations) if migrations is not None else None
    with psycopg.connect(database_url, autocommit=True, prepare_threshold=None) as conn:
        if check:
            blocking = [f for f in preflight(conn, to, migrations) if f.blocking]
            if blocking:
                raise MigrationError(
                    "the pre-flight check found what would stop the migration; nothing was"
                    " changed:\n" + "\n".join(f.line() for f in blocking)
                )
        applied = set(applied_versions(conn))
        for migration in migrations if migrations is not None else discover():
            if migration.version in applied:
                continue
            if to is not None and migration.version > to:
                break
            try:
                _run_file(conn, migration.text, migration.version, None, migration.name)
            except psycopg.Error as exc:
                raise MigrationError(f"{migration.path.name}: {exc}") from exc
            done.append(migration.version)
    return done


def down(database_url: str, to: str, allow_destructive: bool = False) -> list[str]:
    """Roll back every applied migration newer than `to` (use `to='0'` for all), newest
    first. Returns the versions rolled back."""
    known = {m.version: m for m in discover()}
    done: list[str] = []
    with psycopg.connect(database_url, autocommit=True, prepare_threshold=None) as conn:
        # Rollbacks that would drop history (sync runs, their errors) read this and
        # refuse unless the operator asked for it.
        conn.execute(
            "select set_config('migrate.allow_destructive', %s, false)",
            ("on" if allow_destructive else "off",),
        )
        for version in reversed(applied_versions(conn)):
            if version <= to:
                break
            migration = known.get(version)
            if migration is None or not migration.rollback_path.exists():
                raise MigrationError(f"{version}: no rollback script")
            text = migration.rollback_path.read_text()
            if DESTRUCTIVE_MARKER in text.split("\n", 1)[0] and not allow_destructive:
                raise MigrationError(f"{version}: rollback destroys data; pass --allow-destructive")
            try:
                _run_file(conn, text, None, version, migration.name)
            except psycopg.Error as exc:
                raise MigrationError(f"{migration.rollback_path.name}: {exc}") from exc
            done.append(version)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run migrate", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "check"])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--to", help="up: last version to apply; down: last version to keep")
    parser.add_argument("--allow-destructive", action="store_true")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("DATABASE_URL is not set (or pass --database-url)")
    if args.action == "check":
        with psycopg.connect(args.database_url, autocommit=True, prepare_threshold=None) as conn:
            findings = preflight(conn, args.to)
        for finding in findings:
            print(finding.line())
        blocking = sum(f.blocking for f in findings)
        print(f"{len(findings)} findings, {blocking} that would stop the migration")
        return 1 if blocking else 0
    if args.action == "up":
        try:
            versions = up(args.database_url, args.to)
        except MigrationError as exc:
            print(exc, file=sys.stderr)
            return 1
        for version in versions:
            print(f"applied {version}")
    elif args.action == "down":
        if args.to is None:
            parser.error("down needs --to VERSION (0 for everything)")
        for version in down(args.database_url, args.to, args.allow_destructive):
            print(f"rolled back {version}")
    else:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            applied = set(applied_versions(conn))
        for migration in discover():
            state = "applied" if migration.version in applied else "pending"
            print(f"{state:8} {migration.version} {migration.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
