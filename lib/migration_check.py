"""`./run migrate check`: what would stop or change the pending migrations, found
before any of them runs, without writing anything.

The production database was made by the replaced system and lived with its bugs:
balances its refund path drove negative, duplicate active bookings, a half-finished
dual-ID attempt that left objects under the names our migrations use. Each of those
stops a migration half-way (or, worse, lets it pass and breaks the old app's writes).
`check(conn, pending)` reads the database in one read-only REPEATABLE READ transaction
and returns findings, each with the migration it concerns, a count and sample ids;
`blocking` ones would make `up` fail, so `up` refuses before its first statement.

Object clashes are found by reading the pending files themselves (the names they
create: tables, columns, functions, indexes, triggers), so a new migration is covered
without adding a rule here. A clash is adopted when the existing object is what the
migration would make (a table with every column at the same type, a column of the same
type); any other clash is blocking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

SCHEMA = "hubspot_sync"
# Enough ids to find the rows, few enough to read in a terminal.
SAMPLE_SIZE = 5
BALANCES = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)
# Column types as a migration writes them, as PostgreSQL's format_type() names them.
_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "bigserial": "bigint",
    "serial": "integer",
    "bool": "boolean",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "varchar": "character varying",
}
_NOT_COLUMNS = {"constraint", "primary", "unique", "check", "foreign", "exclude", "like"}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    blocking: bool
    migration: str | None = None  # the version it concerns
    count: int = 0
    samples: tuple[str, ...] = ()

    def line(self) -> str:
        where = f" [{self.migration}]" if self.migration else ""
        kind = "STOP" if self.blocking else "note"
        sample = f" (e.g. {', '.join(self.samples)})" if self.samples else ""
        count = f" {self.count}" if self.count else ""
        return f"{kind} {self.code}{where}:{count} {self.message}{sample}"


@dataclass
class _Creates:
    """What one migration file creates in the schema, read from its text."""

    version: str
    tables: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> column: type
    columns: list[tuple[str, str, str]] = field(default_factory=list)  # table, column, type
    functions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # name -> args
    indexes: list[str] = field(default_factory=list)
    triggers: list[tuple[str, str]] = field(default_factory=list)  # name, table


def _normal_type(text: str) -> str:
    words = text.strip().lower().split()
    base = " ".join(words)
    for stop in (
        " not null",
        " null",
        " default ",
        " primary key",
        " unique",
        " references ",
        " check ",
        " check(",
        " constraint ",
        " generated ",
        " collate ",
    ):
        cut = base.find(stop)
        if cut > 0:
            base = base[:cut]
    base = base.strip()
    array = base.endswith("[]")
    base = base.removesuffix("[]").strip()
    base = base.removeprefix(f"{SCHEMA}.")
    base = _TYPE_ALIASES.get(base, base)
    return base + ("[]" if array else "")


def _split_top_level(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(body):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:index])
            start = index + 1
    parts.append(body[start:])
    return [part.strip() for part in parts if part.strip()]


def _parenthesised(text: str, open_at: int) -> str:
    depth = 0
    for index in range(open_at, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : index]
    return text[open_at + 1 :]


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


def creates(version: str, text: str) -> _Creates:
    found = _Creates(version)
    sql = _strip_comments(text)
    for match in re.finditer(
        rf"create table (?:if not exists )?{SCHEMA}\.(\w+)\s*\(", sql, flags=re.I
    ):
        columns = {}
        for item in _split_top_level(_parenthesised(sql, match.end() - 1)):
            name, _, rest = item.partition(" ")
            if name.lower() in _NOT_COLUMNS:
                continue
            columns[name.lower()] = _normal_type(rest)
        found.tables[match.group(1).lower()] = columns
    for match in re.finditer(rf"alter table (?:only )?{SCHEMA}\.(\w+)([^;]*);", sql, flags=re.I):
        for column in re.finditer(
            r"add column (?:if not exists )?(\w+)\s+([^,;]+)", match.group(2), flags=re.I
        ):
            found.columns.append(
                (match.group(1).lower(), column.group(1).lower(), _normal_type(column.group(2)))
            )
    for match in re.finditer(
        rf"create (?:or replace )?function {SCHEMA}\.(\w+)\s*\(", sql, flags=re.I
    ):
        args = []
        for item in _split_top_level(_parenthesised(sql, match.end() - 1)):
            words = item.split()
            if words and words[0].lower() in ("in", "out", "inout", "variadic"):
                words = words[1:]
            if len(words) >= 2:
                typ = re.split(r"\s(?:default|=)\s", " ".join(words[1:]), flags=re.I)[0]
                args.append((words[0].lower(), _normal_type(typ)))
        found.functions.setdefault(match.group(1).lower(), args)
    found.indexes = [
        m.group(1).lower()
        for m in re.finditer(
            r"create (?:unique )?index (?:concurrently )?(?:if not exists )?(\w+)", sql, re.I
        )
    ]
    found.triggers = [
        (m.group(1).lower(), m.group(2).lower())
        for m in re.finditer(rf"create trigger (\w+)[^;]*? on {SCHEMA}\.(\w+)", sql, re.I)
    ]
    return found


def check(
    conn: psycopg.Connection[Any],
    pending: Iterable[tuple[str, str]],
    applied: Iterable[tuple[str, str]] = (),
) -> list[Finding]:
    """Findings for the pending migrations (version, text), read in one read-only
    snapshot; `applied` are the migrations already recorded (what they created is ours,
    not a clash). Never writes."""
    pending = list(pending)
    versions = [version for version, _ in pending]
    cur = conn.cursor(row_factory=dict_row)
    findings: list[Finding] = []
    # Outside any transaction of the caller's: the snapshot and read-only mode are ours.
    with conn.transaction():
        cur.execute("set transaction isolation level repeatable read, read only")
        if not _exists(cur, "hubspot_bookings") and not any(
            v == "20251201000000" for v in versions
        ):
            findings.append(
                Finding("NO_BASELINE", f"schema {SCHEMA} lacks the replaced system's tables", True)
            )
            return findings
        findings += _data_findings(cur, versions)
        findings += _invalid_indexes(cur)
        findings += _clashes(cur, pending, list(applied))
    return findings


def _exists(cur: psycopg.Cursor[dict[str, object]], table: str) -> bool:
    cur.execute(
        "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
        (SCHEMA, table),
    )
    return cur.fetchone() is not None


def _samples(cur: psycopg.Cursor[dict[str, object]], query: str) -> tuple[int, tuple[str, ...]]:
    cur.execute(f"select count(*) over () as n, ref from ({query}) found limit {SAMPLE_SIZE}")
    rows = cur.fetchall()
    if not rows:
        return 0, ()
    return int(str(rows[0]["n"])), tuple(str(row["ref"]) for row in rows)


def _first(versions: list[str], wanted: str) -> str | None:
    return wanted if wanted in versions else None


def _data_findings(cur: psycopg.Cursor[dict[str, object]], versions: list[str]) -> list[Finding]:
    out: list[Finding] = []
    if not _exists(cur, "hubspot_contact_credits"):
        return out
    # Kept as they are: the non-negative rules are triggers over new writes (a balance
    # may not become negative, nor more negative), so these stop nothing.
    rule = _first(versions, "20251203000700")
    negative = " or ".join(f"coalesce({b}, 0) < 0" for b in BALANCES)
    count, samples = _samples(
        cur,
        f"select coalesce(hubspot_id, id::text) as ref from {SCHEMA}.hubspot_contact_credits"
        f" where {negative} order by 1",
    )
    if count:
        out.append(
            Finding(
                "NEGATIVE_BALANCE",
                "contacts with a negative balance: kept; no write may lower them further,"
                " and the student can spend only the kinds that are above zero",
                False,
                rule,
                count,
                samples,
            )
        )
    count, samples = _samples(
        cur,
        f"select hubspot_id as ref from {SCHEMA}.hubspot_mock_exams"
        " where coalesce(total_bookings, 0) < 0 or coalesce(capacity, 0) < 0 order by 1",
    )
    if count:
        out.append(
            Finding(
                "NEGATIVE_SEATS",
                "exams with a negative capacity or seat count: kept; no write may lower them",
                False,
                _first(versions, "20251203000710"),
                count,
                samples,
            )
        )
    count, samples = _samples(
        cur,
        f"select string_agg(coalesce(hubspot_id, id::text), '+' order by hubspot_id) as ref"
        f" from {SCHEMA}.hubspot_bookings where is_active in ('Active', 'Completed')"
        " group by student_id, student_email, exam_date, mock_type having count(*) > 1"
        " order by 1",
    )
    if count:
        out.append(
            Finding(
                "DUPLICATE_ACTIVE_BOOKINGS",
                "students holding two seat-holding bookings of one type on one date: kept;"
                " all but the first of each are marked legacy_duplicate, outside the"
                " one-per-day rule",
                False,
                _first(versions, "20251203001090"),
                count,
                samples,
            )
        )
    out += _legacy_value_findings(cur, versions)
    unique_code = _first(versions, "20251203001000")
    count, samples = _samples(
        cur,
        f"select booking_id as ref from {SCHEMA}.hubspot_bookings where booking_id like 'BK-%%'"
        " group by booking_id having count(*) > 1 order by 1",
    )
    if count:
        out.append(
            Finding(
                "DUPLICATE_BOOKING_CODES",
                "booking codes of the new form used twice",
                unique_code is not None,
                unique_code,
                count,
                samples,
            )
        )
    return out


# A start/end time the API can read (hubspot_sync.text_time): epoch seconds or
# milliseconds, or an ISO date-time with or without an offset.
_READABLE_TIME = (
    r"^\s*(\d{10}|\d{13}|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
    r" ?(Z|z|[+-]\d{2}(:?\d{2})?)?)\s*$"
)


def _legacy_value_findings(
    cur: psycopg.Cursor[dict[str, object]], versions: list[str]
) -> list[Finding]:
    """Values the replaced system wrote that the new schema reads as they are: each is
    reported (nothing stops), with what the migration does about it."""
    checks = [
        (
            "SEAT_COUNT_DRIFT",
            "exams whose total_bookings is not their count of Active bookings: set to that"
            " count (the old value is kept for the rollback, the change is audited)",
            "20251203000900",
            f"select hubspot_id as ref from {SCHEMA}.hubspot_mock_exams e"
            " where coalesce(e.total_bookings, 0) <> (select count(*) from"
            f" {SCHEMA}.hubspot_bookings b where b.associated_mock_exam = e.hubspot_id"
            " and b.is_active = 'Active') order by 1",
        ),
        (
            "NONSTANDARD_STATUS",
            "bookings whose is_active is not Active, Cancelled or Completed (e.g. lower-case"
            " 'cancelled'): kept as written; they hold no seat and count as cancelled",
            None,
            f"select coalesce(hubspot_id, id::text) || '=' || coalesce(is_active, 'NULL') as ref"
            f" from {SCHEMA}.hubspot_bookings where is_active is null"
            " or is_active not in ('Active', 'Cancelled', 'Completed') order by 1",
        ),
        (
            "LEGACY_DOMINANT_HAND",
            "bookings whose dominant_hand is the old app's spelling ('true', 'Right', ...):"
            " kept; read as right or left handed",
            None,
            f"select coalesce(hubspot_id, id::text) || '=' || dominant_hand as ref"
            f" from {SCHEMA}.hubspot_bookings where dominant_hand is not null"
            " and dominant_hand not in ('left', 'right') order by 1",
        ),
        (
            "MISSING_HUBSPOT_ID",
            "rows the old app made in Supabase first (hubspot_id NULL): kept; they wait for"
            " a HubSpot id as new rows do",
            None,
            f"select 'booking ' || id as ref from {SCHEMA}.hubspot_bookings where hubspot_id"
            f" is null union all select 'contact ' || id from {SCHEMA}.hubspot_contact_credits"
            " where hubspot_id is null order by 1",
        ),
        (
            "LEGACY_BOOKING_CODES",
            "booking codes of the old form ({mock_type}-{student_id}-{date}) that repeat:"
            " kept; the unique rule covers only new BK- codes",
            None,
            f"select booking_id as ref from {SCHEMA}.hubspot_bookings where booking_id not like"
            " 'BK-%%' group by booking_id having count(*) > 1 order by 1",
        ),
        (
            "UNREADABLE_TIMES",
            "exam or booking start/end times that are not a date-time: kept as written;"
            " read as unknown (the exam date stands in)",
            None,
            "select 'exam ' || hubspot_id || ' ' || coalesce(start_time, end_time) as ref"
            f" from {SCHEMA}.hubspot_mock_exams where start_time !~ %(re)s or end_time !~ %(re)s"
            " union all select 'booking ' || coalesce(hubspot_id, id::text)"
            f" from {SCHEMA}.hubspot_bookings where start_time !~ %(re)s or end_time !~ %(re)s"
            " order by 1",
        ),
    ]
    out = []
    readable = "'" + _READABLE_TIME.replace("'", "''") + "'"
    for code, message, version, query in checks:
        count, samples = _samples(cur, query.replace("%(re)s", readable))
        if count:
            out.append(
                Finding(code, message, False, version and _first(versions, version), count, samples)
            )
    out += _naive_timestamp_findings(cur, versions)
    return out


def _naive_timestamp_findings(
    cur: psycopg.Cursor[dict[str, object]], versions: list[str]
) -> list[Finding]:
    if not versions:  # a note for a migration to come; nothing pends once all applied
        return []
    cur.execute(
        "select table_name || '.' || column_name as ref from information_schema.columns"
        " where table_schema = %s and table_name like 'hubspot\\_%%'"
        " and column_name in ('created_at', 'updated_at', 'synced_at')"
        " and data_type = 'timestamp without time zone' order by 1",
        (SCHEMA,),
    )
    columns = tuple(str(row["ref"]) for row in cur.fetchall())
    if not columns:
        return []
    return [
        Finding(
            "NAIVE_TIMESTAMPS",
            "timestamp columns without time zone (the old app's UTC wall-clock times): kept"
            " as they are and read as UTC (every function runs with TimeZone UTC)",
            False,
            None,
            len(columns),
            columns[:SAMPLE_SIZE],
        )
    ]


def _invalid_indexes(cur: psycopg.Cursor[dict[str, object]]) -> list[Finding]:
    cur.execute(
        "select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid"
        " join pg_namespace n on n.oid = c.relnamespace where n.nspname = %s"
        " and not i.indisvalid order by 1",
        (SCHEMA,),
    )
    names = tuple(str(row["relname"]) for row in cur.fetchall())
    if not names:
        return []
    return [
        Finding(
            "INVALID_INDEX",
            "INVALID indexes (left by a failed CREATE INDEX CONCURRENTLY): maintained on"
            " every write, never used; `up` drops those it creates itself",
            False,
            None,
            len(names),
            names[:SAMPLE_SIZE],
        )
    ]


@dataclass
class _Catalogue:
    """What the schema holds now: columns by table, functions, indexes, triggers."""

    columns: dict[str, dict[str, str]]
    functions: dict[str, list[tuple[str, str]]]  # name -> [(parameter names, identity)]
    indexes: set[str]
    triggers: set[tuple[str, str]]


def _catalogue(cur: psycopg.Cursor[dict[str, object]]) -> _Catalogue:
    cur.execute(
        "select c.relname as table_name, a.attname as column_name,"
        " format_type(a.atttypid, a.atttypmod) as type from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relkind in ('r', 'p') and a.attnum > 0"
        " and not a.attisdropped",
        (SCHEMA,),
    )
    columns: dict[str, dict[str, str]] = {}
    for row in cur.fetchall():
        columns.setdefault(str(row["table_name"]), {})[str(row["column_name"])] = str(row["type"])
    cur.execute(
        "select p.proname, coalesce(array_to_string(p.proargnames, ','), '') as names,"
        " pg_get_function_identity_arguments(p.oid) as args"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = %s",
        (SCHEMA,),
    )
    functions: dict[str, list[tuple[str, str]]] = {}
    for row in cur.fetchall():
        functions.setdefault(str(row["proname"]), []).append((str(row["names"]), str(row["args"])))
    cur.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relkind = 'i'",
        (SCHEMA,),
    )
    indexes = {str(row["relname"]) for row in cur.fetchall()}
    cur.execute(
        "select t.tgname, c.relname from pg_trigger t join pg_class c on c.oid = t.tgrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and not t.tgisinternal",
        (SCHEMA,),
    )
    triggers = {(str(row["tgname"]), str(row["relname"])) for row in cur.fetchall()}
    return _Catalogue(columns, functions, indexes, triggers)


def _clashes(
    cur: psycopg.Cursor[dict[str, object]],
    pending: list[tuple[str, str]],
    applied: list[tuple[str, str]],
) -> list[Finding]:
    now = _catalogue(cur)
    # Created by an applied or an earlier pending migration of ours: no clash.
    made: set[str] = set()
    for version, text in applied:
        made |= _names(creates(version, text))
    out: list[Finding] = []
    for version, text in pending:
        wants = creates(version, text)
        out += _table_findings(wants, now, made)
        out += _column_findings(wants, now, made)
        out += _function_findings(wants, now, made)
        out += _index_and_trigger_findings(wants, now, made)
        made |= _names(wants)
    return out


def _names(found: _Creates) -> set[str]:
    return (
        set(found.tables)
        | set(found.functions)
        | set(found.indexes)
        | {f"{table}.{column}" for table, column, _ in found.columns}
        | {f"trigger {name}" for name, _ in found.triggers}
    )


def _table_findings(wants: _Creates, now: _Catalogue, made: set[str]) -> list[Finding]:
    out = []
    for table, columns in wants.tables.items():
        if table in made or table not in now.columns:
            continue
        have = now.columns[table]
        missing = [c for c in columns if c not in have]
        differ = [c for c in columns if c in have and have[c] != columns[c]]
        if not missing and not differ:
            out.append(
                Finding("TABLE_ADOPTED", f"{SCHEMA}.{table} exists as made", False, wants.version)
            )
            continue
        detail = ", ".join(
            [f"{c} missing" for c in missing]
            + [f"{c} is {have[c]}, not {columns[c]}" for c in differ]
        )
        out.append(
            Finding(
                "TABLE_CLASH",
                f"{SCHEMA}.{table} already exists and differs from the migration's: {detail}."
                " If nothing reads it (the replaced app never used the dual-ID attempt's"
                f" supabase_audit_log), rename it: ALTER TABLE {SCHEMA}.{table} RENAME TO"
                f" {table}_before_migration; then run up again",
                True,
                wants.version,
            )
        )
    return out


def _column_findings(wants: _Creates, now: _Catalogue, made: set[str]) -> list[Finding]:
    out = []
    for table, column, typ in wants.columns:
        have = now.columns.get(table, {}).get(column)
        if have is None or f"{table}.{column}" in made:
            continue
        same = have == typ
        out.append(
            Finding(
                "COLUMN_ADOPTED" if same else "COLUMN_CLASH",
                f"{SCHEMA}.{table}.{column} already exists ({have})"
                + ("" if same else f"; the migration adds it as {typ}"),
                not same,
                wants.version,
            )
        )
    return out


def _function_findings(wants: _Creates, now: _Catalogue, made: set[str]) -> list[Finding]:
    out = []
    for name, args in wants.functions.items():
        if name in made:
            continue
        ours = ",".join(arg for arg, _ in args)
        for names, identity in now.functions.get(name, []):
            why = (
                f" with parameter names ({names}), not ({ours})"
                if names != ours
                else "; the migration would replace production's function"
            )
            out.append(
                Finding(
                    "FUNCTION_CLASH",
                    f"{SCHEMA}.{name}({identity}) already exists{why}",
                    True,
                    wants.version,
                )
            )
    return out


def _index_and_trigger_findings(wants: _Creates, now: _Catalogue, made: set[str]) -> list[Finding]:
    out = []
    for index in wants.indexes:
        if index in now.indexes and index not in made:
            out.append(
                Finding("INDEX_EXISTS", f"index {index} already exists; kept", False, wants.version)
            )
    for trigger, table in wants.triggers:
        if (trigger, table) in now.triggers and f"trigger {trigger}" not in made:
            out.append(
                Finding(
                    "TRIGGER_CLASH",
                    f"trigger {trigger} on {SCHEMA}.{table} already exists",
                    True,
                    wants.version,
                )
            )
    return out
