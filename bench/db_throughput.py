"""Database-side throughput of hubspot_sync.book(): bookings per second at 1, 8 and 32
clients, on one hot exam and spread over many exams.

This is the ceiling for the whole booking path: no HTTP, no pool, no Redis, just
pgbench calling the function the way production does (extended protocol, no prepared
statements: Supavisor in transaction mode cannot keep them). Every transaction must be
a real booking: each picks a student nobody has used yet, and after each run the
harness counts the bookings written against pgbench's transactions, so a run that
measured rejections fails instead of reporting a flattering figure.

Each run starts from the same state: the scratch database's tables are emptied and
reloaded with set-based SQL (the school's past bookings included, as production holds
them: bench/load_data.py HISTORY_BOOKINGS), vacuumed, checkpointed, warmed up, then
measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from bench import db_report, load_data, pgbench, report
from bench.quiet import (
    OTHER_ACTIVE_BACKENDS_TOLERATED,
    OTHER_CPU_TOLERATED_CORES,
    OTHER_TRANSACTIONS_TOLERATED,
    CpuWitness,
    postmaster_of,
)
from bench.stats import Percentiles, percentiles
from bench.waits import WaitSampler
from lib import migrations

NAME = "db"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SCRATCH_DATABASE = "bench_booking"
SECTION = "db"
SCENARIOS = ("hot", "spread")
# Ten seconds at the hundreds to thousands of bookings per second this function does
# gives thousands of latencies per run, enough for a stable P99; longer runs start to
# measure checkpoints and autovacuum rather than the function.
DEFAULT_DURATION_S = 10
# Long enough for every connection to have compiled book() and for the indexes the
# function touches to be in shared buffers; the warm-up's bookings are checked too.
DEFAULT_WARMUP_S = 2
DEFAULT_CLIENTS = (1, 8, 32)
SMOKE_CLIENTS = (1, 4)
SMOKE_DURATION_S = 1  # pgbench's shortest -T: the smoke run proves the harness, not speed
SPREAD_EXAMS = 500
# Students loaded per second of run (warm-up included). Each booking uses up one
# student; this is several times the highest rate measured on a 2-core machine, and
# a run that still runs out is reported (raise --students), never silently rejected.
STUDENTS_PER_SECOND = 10_000
HOT_EXAM = "BENCH-HOT"
# A run that shared the machine (see bench/quiet.py) is repeated after a pause, and
# reported as unsound if the machine stays busy. Test runs here take a minute or a
# few: ten pauses of 30 s outwait most, and a machine busy for longer gets a flagged
# run rather than an endless wait.
BUSY_RETRIES = 10
BUSY_PAUSE_S = 30.0
AUDITED_TABLES = ("hubspot_bookings", "hubspot_contact_credits", "hubspot_mock_exams")
AUDIT_TRIGGER = "record_change"
AUDIT_CHOICES: dict[str, tuple[bool, ...]] = {"on": (True,), "off": (False,), "both": (True, False)}
AUDIT_CHOICES_BACK = {value: key for key, value in AUDIT_CHOICES.items()}
# One audit row per booking written and per credit debited. The seat is taken in a seat
# shard, which is not audited: the booking row is its record (20251212000100).
AUDIT_ROWS_PER_BOOKING = 2


class BenchError(RuntimeError):
    """The benchmark cannot measure what it claims to (e.g. book() rejects the bench
    data outright)."""


# ---------------------------------------------------------------- the workload

_BOOK = """\
-- One booking by a student nobody has used yet. The sequence picks the student inside
-- the same statement, so a transaction is one round trip, as a production call is.
with s as (select nextval('bench_student_seq') as n)
select hubspot_sync.book(
  p_student_id => 'B' || s.n,
  p_email => 'b' || s.n || '@bench.example',
  p_exam_id => {exam},
  p_dominant_hand => 'right',
  p_idempotency_key => 'bench-' || s.n)
from s;
"""


def script(scenario: str, spread_exams: int = SPREAD_EXAMS) -> str:
    """The pgbench script of a scenario: hot = every client books the same exam;
    spread = each booking picks one of `spread_exams` exams at random."""
    if scenario == "hot":
        return _BOOK.format(exam=f"'{HOT_EXAM}'")
    if scenario == "spread":
        return f"\\set exam random(1, {spread_exams})\n" + _BOOK.format(exam="'BENCH-' || :exam")
    raise ValueError(f"unknown scenario {scenario!r}")


# ---------------------------------------------------------------- plan and results


@dataclass(frozen=True)
class Plan:
    admin_url: str = DEFAULT_DATABASE_URL  # any database on the server to measure
    database: str = SCRATCH_DATABASE  # dropped and recreated
    scenarios: tuple[str, ...] = SCENARIOS
    clients: tuple[int, ...] = DEFAULT_CLIENTS
    duration_s: int = DEFAULT_DURATION_S
    warmup_s: int = DEFAULT_WARMUP_S
    protocol: str = "extended"
    audit: tuple[bool, ...] = (True,)  # runs with the audit trigger on, off, or both
    spread_exams: int = SPREAD_EXAMS
    students: int | None = None  # None: STUDENTS_PER_SECOND x (warm-up + duration)
    repeat: int = 1  # runs per combination; the median by bookings/s is reported
    require_quiet: bool = True  # re-run, then fail, runs that shared the server
    history_bookings: int = load_data.HISTORY_BOOKINGS  # the school's past, per reset
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def student_pool(self) -> int:
        if self.students is not None:
            return self.students
        return STUDENTS_PER_SECOND * (self.warmup_s + self.duration_s)

    def threads(self, clients: int) -> int:
        # pgbench shares the machine with the server; more threads than cores only
        # adds scheduling noise.
        return max(1, min(clients, self.cores))

    @property
    def database_url(self) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=self.database)


@dataclass(frozen=True)
class RunResult:
    scenario: str
    clients: int
    threads: int
    audit: bool
    transactions: int  # completed by pgbench in the measured window
    bookings: int  # bookings written in the measured window
    tps: float
    latency_avg_ms: float
    latency: Percentiles
    wal_bytes: int  # WAL the server wrote during the measured window
    waits: tuple[tuple[str, float], ...]  # (wait event, average backends on it)
    tps_repeats: tuple[float, ...]  # every repeat's figure; this result is their median
    other_transactions: int  # committed on the server's other databases meanwhile
    other_active_backends: float  # busy in other databases, on average
    other_cpu_cores: float | None  # CPUs kept busy by other processes; None: unknown
    problems: tuple[str, ...]  # failed verifications and invariants; empty when sound

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def shared(self) -> bool:
        """Whether other work on the server or the machine may have skewed the figures."""
        return (
            self.other_transactions > OTHER_TRANSACTIONS_TOLERATED
            or self.other_active_backends > OTHER_ACTIVE_BACKENDS_TOLERATED
            or (
                self.other_cpu_cores is not None
                and self.other_cpu_cores > OTHER_CPU_TOLERATED_CORES
            )
        )

    def describe_sharing(self) -> str:
        cpu = "unknown" if self.other_cpu_cores is None else f"{self.other_cpu_cores:.2f}"
        return (
            f"{self.other_transactions} transactions and {self.other_active_backends:.2f}"
            f" busy backends in other databases, other processes busy on {cpu} CPUs"
        )


@dataclass(frozen=True)
class Server:
    version: str  # server_version
    kind: str  # embedded (local/stack.py), system (data directory known) or external
    address: str  # host:port, never the password
    settings: dict[str, str]
    postmaster: int | None  # its pid when it runs on this machine


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    server: Server
    pgbench_version: str
    runs: list[RunResult]
    measured_on: datetime.date
    source: str  # the commit whose migrations were measured
    last_migration: str

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)


# ---------------------------------------------------------------- the scratch database


def create_database(plan: Plan) -> str:
    """Drop and recreate the scratch database, migrate it and add the student sequence.
    Returns the last migration applied."""
    name = sql.Identifier(plan.database)
    with psycopg.connect(plan.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(name))
        conn.execute(sql.SQL("create database {}").format(name))
    applied = migrations.up(plan.database_url)
    with psycopg.connect(plan.database_url, autocommit=True) as conn:
        conn.execute("create sequence public.bench_student_seq")
    return applied[-1]


def drop_database(plan: Plan) -> None:
    with psycopg.connect(plan.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(plan.database))
        )


def reset(conn: psycopg.Connection, plan: Plan, audit: bool) -> None:
    """Empty every table of the schema and reload the bench data: the hot exam and
    `spread_exams` exams of type Clinical Skills, open, capacity never reached; the
    student pool, each with one Clinical Skills credit. Triggers are off for the load
    (the logs and the sync's bookkeeping start empty); then the audit trigger is on
    or off as `audit` says, every other trigger on."""
    students = plan.student_pool
    with conn.transaction():
        _set_triggers(conn, sql.SQL("user"), on=False)
        # Every table, not only those book() writes: tables added by later migrations
        # (the sync's, for one) must not grow from run to run either.
        conn.execute(
            "do $$ begin execute (select 'truncate ' || string_agg(format('%I.%I',"
            " schemaname, tablename), ', ') || ' restart identity' from pg_tables"
            " where schemaname = 'hubspot_sync'); end $$"
        )
        # Exam 0 is the hot one. Start times are a month ahead so no exam starts
        # during the run (rule 2).
        conn.execute(
            """
            insert into hubspot_sync.hubspot_mock_exams
              (hubspot_id, mock_exam_name, mock_type, exam_date, start_time, end_time,
               location, capacity, total_bookings, is_active)
            select case when i = 0 then %(hot)s else 'BENCH-' || i end,
                   'Bench exam ' || i, 'Clinical Skills', d,
                   (d + time '09:00') at time zone 'America/Toronto',
                   (d + time '12:00') at time zone 'America/Toronto',
                   'Mississauga', %(capacity)s, 0, 'true'
              from generate_series(0, %(exams)s) i,
                   lateral (select current_date + 30 + i %% 30 as d) day
            """,
            {"hot": HOT_EXAM, "capacity": students, "exams": plan.spread_exams},
        )
        conn.execute(
            """
            insert into hubspot_sync.hubspot_contact_credits
              (hubspot_id, student_id, email, firstname, lastname, cs_credits)
            select 'BH' || n, 'B' || n, 'b' || n || '@bench.example', 'Bench', 'Student ' || n, 1
              from generate_series(1, %(students)s) n
            """,
            {"students": students},
        )
        # The school's past, as in the HTTP benchmark (bench/load_data.py): an empty
        # bookings table would have book() planned on it, sequential scans that grow
        # with every booking of the run. Loaded with the triggers off: no audit rows.
        load_data.load_history(conn, plan.history_bookings)
        conn.execute("alter sequence public.bench_student_seq restart")
        # The load ran with the triggers off, so the exams' seat shards are dealt here
        # (while the audit trigger is still off: the load is not a change to log).
        conn.execute("select hubspot_sync.recount_seats(id) from hubspot_sync.hubspot_mock_exams")
        _set_triggers(conn, sql.SQL("user"), on=True)
        if not audit:
            _set_triggers(conn, sql.Identifier(AUDIT_TRIGGER), on=False)
        _preflight(conn)
    # Fresh statistics and visibility map, and no dead rows left by the preflight.
    conn.execute(
        "vacuum (analyze) hubspot_sync.hubspot_bookings, hubspot_sync.hubspot_contact_credits,"
        " hubspot_sync.hubspot_mock_exams, hubspot_sync.supabase_audit_log"
    )


def _set_triggers(conn: psycopg.Connection, which: sql.Composable, on: bool) -> None:
    """Enable or disable a trigger (or `user`: all of them) on the booking tables."""
    action = sql.SQL("enable" if on else "disable")
    for table in AUDITED_TABLES:
        conn.execute(
            sql.SQL("alter table hubspot_sync.{} {} trigger {}").format(
                sql.Identifier(table), action, which
            )
        )


def _preflight(conn: psycopg.Connection) -> None:
    """Book once per scenario's kind of exam, then undo it: if book() rejects the bench
    data (a new rule, a changed parameter), say so with its answer rather than
    measure a thousand rejections."""
    for exam in (HOT_EXAM, "BENCH-1"):
        with conn.transaction(force_rollback=True):
            row = conn.execute(
                "select hubspot_sync.book(p_student_id => 'B1', p_email => 'b1@bench.example',"
                " p_exam_id => %s, p_dominant_hand => 'right', p_idempotency_key => 'preflight')",
                (exam,),
            ).fetchone()
        answer = row[0] if row else None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise BenchError(f"book() does not accept the bench data for {exam}: {answer}")


# ---------------------------------------------------------------- one run


def measure(
    conn: psycopg.Connection,
    plan: Plan,
    scenario: str,
    clients: int,
    audit: bool,
    postmaster: int | None = None,
) -> RunResult:
    """Reset, checkpoint, warm up, then measure one scenario at `clients` clients.
    With the server's `postmaster` pid, other processes' CPU time is watched too."""
    threads = plan.threads(clients)
    text = script(scenario, plan.spread_exams)
    problems: list[str] = []
    reset(conn, plan, audit)

    def pgbench_run(duration_s: int, log_latencies: bool) -> pgbench.PgbenchResult:
        return pgbench.run(
            plan.database_url,
            text,
            clients=clients,
            threads=threads,
            duration_s=duration_s,
            protocol=plan.protocol,
            log_latencies=log_latencies,
        )

    # The checkpoint writes back the reload, so the measured window does not pay for
    # it; the warm-up then absorbs the first full-page images of the pages every
    # booking touches (the exam rows, the indexes' right edges) and fills the caches.
    conn.execute("checkpoint")
    before = 0
    if plan.warmup_s > 0:
        warm = pgbench_run(plan.warmup_s, log_latencies=False)
        before = _booking_count(conn)
        problems += [f"warm-up: {p}" for p in verify(warm, before, plan, conn)]
    wal_before, others_before = _wal_lsn(conn), _other_transactions(conn, plan.database)
    with (
        CpuWitness(postmaster) as cpu,
        WaitSampler(plan.database_url, plan.database) as waits,
    ):
        result = pgbench_run(plan.duration_s, log_latencies=True)
    wal_bytes = _wal_lsn(conn) - wal_before
    others = _other_transactions(conn, plan.database) - others_before
    after = _booking_count(conn)
    problems += verify(result, after - before, plan, conn)
    problems += invariant_violations(conn, plan, audit)
    return RunResult(
        scenario=scenario,
        clients=clients,
        threads=threads,
        audit=audit,
        transactions=result.transactions,
        bookings=after - before,
        tps=result.tps,
        latency_avg_ms=result.latency_avg_ms,
        latency=percentiles(result.latencies_ms),
        wal_bytes=wal_bytes,
        waits=tuple(waits.summary()),
        tps_repeats=(result.tps,),
        other_transactions=others,
        other_active_backends=waits.elsewhere(),
        other_cpu_cores=cpu.others_cores(),
        problems=tuple(problems),
    )


def _wal_lsn(conn: psycopg.Connection) -> int:
    row = conn.execute("select pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def _other_transactions(conn: psycopg.Connection, database: str) -> int:
    """Transactions ended so far in the server's other databases. Backends report them
    with up to a second's delay, which the few seconds of a run absorb."""
    row = conn.execute(
        "select coalesce(sum(xact_commit + xact_rollback), 0) from pg_stat_database"
        " where datname <> %s",
        (database,),
    ).fetchone()
    return int(row[0]) if row else 0


def _booking_count(conn: psycopg.Connection) -> int:
    """The bookings written since the reset: the history left out."""
    row = conn.execute(
        f"select count(*) from hubspot_sync.hubspot_bookings where {load_data.RUN_BOOKING}"
    ).fetchone()
    return int(row[0]) if row else 0


def verify(
    result: pgbench.PgbenchResult, bookings: int, plan: Plan, conn: psycopg.Connection
) -> list[str]:
    """Every transaction pgbench counted must be one new booking, and nothing failed."""
    problems = []
    if result.aborted:
        errors = [line for line in result.output.splitlines() if "error" in line.lower()]
        problems.append("pgbench clients aborted on errors: " + " / ".join(errors[:3]))
    if result.failed:
        problems.append(f"{result.failed} transactions failed (deadlock or serialization)")
    if bookings != result.transactions:
        problems.append(
            f"{result.transactions} transactions but {bookings} bookings written:"
            f" {result.transactions - bookings} calls were rejected or replayed"
        )
    row = conn.execute("select last_value, is_called from public.bench_student_seq").fetchone()
    used = int(row[0]) if row and row[1] else 0
    if used > plan.student_pool:
        problems.append(f"ran out of students ({used} > {plan.student_pool}); raise --students")
    if result.transactions == 0:
        problems.append("no transaction completed")
    return problems


def invariant_violations(conn: psycopg.Connection, plan: Plan, audit: bool) -> list[str]:
    """What must hold after any run: each exam's seat count equals its seat-holding
    bookings, no credit is negative, each booking spent exactly one credit, and the
    audit log has one row per change (none with the trigger off)."""
    row = conn.execute(
        f"""
        select
          (select count(*) from hubspot_sync.hubspot_mock_exams e
             cross join lateral hubspot_sync._seat_state(e) st
             left join (select associated_mock_exam, count(*) as held
                          from hubspot_sync.hubspot_bookings
                         where is_active = 'Active'
                         group by associated_mock_exam) b
               on b.associated_mock_exam = e.hubspot_id
            where st.booked <> coalesce(b.held, 0)),
          (select count(*) from hubspot_sync.hubspot_contact_credits
            where least(sj_credits, cs_credits, sjmini_credits, mock_discussion_token,
                        shared_mock_credits) < 0),
          (select coalesce(sum(cs_credits), 0) from hubspot_sync.hubspot_contact_credits),
          (select count(*) from hubspot_sync.hubspot_bookings where {load_data.RUN_BOOKING}),
          (select count(*) from hubspot_sync.supabase_audit_log)
        """
    ).fetchone()
    assert row is not None
    seat_mismatches, negative, credits_left, bookings, audit_rows = (int(v) for v in row)
    problems = []
    if seat_mismatches:
        problems.append(f"{seat_mismatches} exams' seat counts differ from their bookings")
    if negative:
        problems.append(f"{negative} contacts have a negative credit balance")
    if plan.student_pool - credits_left != bookings:
        problems.append(f"{plan.student_pool - credits_left} credits spent for {bookings} bookings")
    expected_audit = AUDIT_ROWS_PER_BOOKING * bookings if audit else 0
    if audit_rows != expected_audit:
        problems.append(f"{audit_rows} audit rows, expected {expected_audit}")
    return problems


# ---------------------------------------------------------------- the whole benchmark


def server_info(conn: psycopg.Connection, plan: Plan) -> Server:
    params = psycopg.conninfo.conninfo_to_dict(plan.admin_url)
    address = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
    settings = {}
    for name in ("fsync", "synchronous_commit", "shared_buffers"):
        row = conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()
        settings[name] = str(row[0]) if row else "?"
    row = conn.execute("show server_version").fetchone()
    version = str(row[0]) if row else "?"
    try:
        row = conn.execute("show data_directory").fetchone()
        data_directory = str(row[0]) if row else ""
    except psycopg.errors.InsufficientPrivilege:
        data_directory = ""
    if data_directory.startswith(str(report.ROOT / ".local")):
        kind = "embedded server (local/stack.py)"
    elif data_directory:
        kind = f"system server, data in {data_directory}"
    else:
        kind = "external server"  # data_directory is for superusers and pg_read_all_settings
    row = conn.execute("select pg_backend_pid()").fetchone()
    postmaster = postmaster_of(int(row[0])) if row else None
    return Server(
        version=version, kind=kind, address=address, settings=settings, postmaster=postmaster
    )


def run(plan: Plan, progress: Callable[[str], None] = print) -> Outcome:
    """Every (audit, scenario, clients) combination of the plan, each measured
    `plan.repeat` times; the results come in that order."""
    # Read before migrating: the tree may move on while the benchmark runs.
    source = report.source_version("supabase/migrations")
    last_migration = create_database(plan)
    runs: list[RunResult] = []
    with psycopg.connect(plan.database_url, autocommit=True) as conn:
        server = server_info(conn, plan)
        progress(
            f"PostgreSQL {server.version} ({server.kind}) at {server.address};"
            f" {plan.student_pool} students per run"
        )
        # Repeats outermost: a slow spell of the machine (a virtual machine's host is
        # shared too, invisibly) then touches every combination a little instead of
        # one combination a lot, which keeps the comparisons between them fair.
        combinations = [
            (audit, scenario, clients)
            for audit in plan.audit
            for scenario in plan.scenarios
            for clients in plan.clients
        ]
        repeats: dict[tuple[bool, str, int], list[RunResult]] = {c: [] for c in combinations}
        for _ in range(plan.repeat):
            for audit, scenario, clients in combinations:
                repeats[(audit, scenario, clients)].append(
                    measure_quietly(
                        conn, plan, scenario, clients, audit, server.postmaster, progress
                    )
                )
        runs.extend(median_run(repeats[c]) for c in combinations)
    return Outcome(
        plan=plan,
        server=server,
        pgbench_version=pgbench.version(),
        runs=runs,
        measured_on=datetime.date.today(),
        source=source,
        last_migration=last_migration,
    )


def measure_quietly(
    conn: psycopg.Connection,
    plan: Plan,
    scenario: str,
    clients: int,
    audit: bool,
    postmaster: int | None,
    progress: Callable[[str], None],
) -> RunResult:
    """measure(), again after a pause while other work shares the server (it skews the
    figures, or takes the connections pgbench needs); past BUSY_RETRIES the busy run
    is returned with that as a problem, or the pgbench error raised."""
    for attempt in range(BUSY_RETRIES + 1):
        last = attempt == BUSY_RETRIES
        try:
            result = measure(conn, plan, scenario, clients, audit, postmaster)
        except pgbench.PgbenchError as exc:
            if last:
                raise
            progress(f"pgbench could not run ({str(exc).splitlines()[-1]}); retrying")
        else:
            progress(_progress_line(result))
            if not result.shared or not plan.require_quiet:
                return result
            if last:
                busy = f"machine shared: {result.describe_sharing()}"
                return replace(result, problems=(*result.problems, busy))
            progress(f"machine shared ({result.describe_sharing()}); retrying")
        time.sleep(BUSY_PAUSE_S)
    raise AssertionError("unreachable")


def median_run(repeats: Sequence[RunResult]) -> RunResult:
    """The repeat with the median bookings/s (the lower middle one of an even number),
    carrying every repeat's figure and every repeat's problems: one unsound repeat
    makes the combination unsound."""
    ordered = sorted(repeats, key=lambda r: r.tps)
    middle = ordered[(len(ordered) - 1) // 2]
    problems = tuple(p for r in repeats for p in r.problems)
    return replace(middle, tps_repeats=tuple(r.tps for r in repeats), problems=problems)


def _progress_line(result: RunResult) -> str:
    state = "ok" if result.ok else "FAILED: " + "; ".join(result.problems)
    return (
        f"{result.scenario:6} audit={'on ' if result.audit else 'off'} clients={result.clients:2}"
        f"  {result.tps:8.1f} bookings/s  avg {result.latency_avg_ms:6.2f} ms"
        f"  p50 {result.latency.p50:6.2f}  p95 {result.latency.p95:6.2f}"
        f"  p99 {result.latency.p99:6.2f} ms"
        f"  WAL {result.wal_bytes / max(result.bookings, 1) / 1024:5.1f} KiB/booking  {state}"
    )


# ---------------------------------------------------------------- command line


def command_line(plan: Plan) -> str:
    """The command that reproduces this run (the database URL left out)."""
    parts = ["./run bench db --report"]
    default = Plan(admin_url=plan.admin_url)
    if plan.duration_s != default.duration_s:
        parts.append(f"--duration {plan.duration_s}")
    if plan.warmup_s != default.warmup_s:
        parts.append(f"--warmup {plan.warmup_s}")
    if plan.clients != default.clients:
        parts.append("--clients " + ",".join(map(str, plan.clients)))
    if plan.scenarios != default.scenarios:
        parts.append("--scenarios " + ",".join(plan.scenarios))
    if plan.protocol != default.protocol:
        parts.append(f"--protocol {plan.protocol}")
    if plan.audit != default.audit:
        parts.append("--audit " + AUDIT_CHOICES_BACK.get(plan.audit, "both"))
    if plan.repeat != default.repeat:
        parts.append(f"--repeat {plan.repeat}")
    if plan.students is not None:
        parts.append(f"--students {plan.students}")
    return " ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a database on the server to measure"
        f" ($BENCH_DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--scratch-database",
        default=SCRATCH_DATABASE,
        help="database dropped and recreated for the benchmark (default %(default)s)",
    )
    parser.add_argument(
        "--duration", type=_positive, default=DEFAULT_DURATION_S, help="seconds per run"
    )
    parser.add_argument(
        "--warmup", type=_non_negative, default=DEFAULT_WARMUP_S, help="seconds, 0 for none"
    )
    parser.add_argument("--clients", type=_int_list, default=DEFAULT_CLIENTS, help="e.g. 1,8,32")
    parser.add_argument("--scenarios", type=_scenario_list, default=SCENARIOS, help="hot,spread")
    parser.add_argument("--protocol", choices=pgbench.PROTOCOLS, default="extended")
    parser.add_argument(
        "--audit",
        choices=tuple(AUDIT_CHOICES),
        default="on",
        help="run with the audit trigger on (production), off, or both to measure its cost",
    )
    parser.add_argument(
        "--repeat", type=_positive, default=1, help="runs per combination; the median is reported"
    )
    parser.add_argument("--students", type=_positive, help="student pool per run (default: sized)")
    parser.add_argument("--smoke", action="store_true", help="1 and 4 clients, 1 s: a test run")
    parser.add_argument("--report", action="store_true", help="write the figures to BENCHMARKS.md")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(","))
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("client counts are positive integers")
    return values


def _scenario_list(text: str) -> tuple[str, ...]:
    values = tuple(text.split(","))
    unknown = set(values) - set(SCENARIOS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return values


def plan_from(args: argparse.Namespace) -> Plan:
    plan = Plan(
        admin_url=args.database_url,
        database=args.scratch_database,
        scenarios=args.scenarios,
        clients=args.clients,
        duration_s=args.duration,
        warmup_s=args.warmup,
        protocol=args.protocol,
        audit=AUDIT_CHOICES[args.audit],
        students=args.students,
        repeat=args.repeat,
    )
    if args.smoke:
        plan = smoke(plan)
    return plan


def smoke(plan: Plan) -> Plan:
    """The smallest run that exercises everything: for tests, not for figures, so it
    also runs beside other work on the server (a test suite's other workers)."""
    return replace(
        plan,
        clients=SMOKE_CLIENTS,
        duration_s=SMOKE_DURATION_S,
        warmup_s=1,
        repeat=1,
        require_quiet=False,
        history_bookings=load_data.SMOKE_HISTORY_BOOKINGS,
    )


def main(args: argparse.Namespace) -> int:
    if args.smoke and args.report:
        raise SystemExit("--smoke figures are not benchmark figures; drop --report")
    plan = plan_from(args)
    outcome = run(plan)
    section = db_report.render(outcome, command_line(plan))
    print()
    print(section)
    if args.report:
        report.update_section(report.BENCHMARKS_PATH, SECTION, section)
        print(f"\nwrote section '{SECTION}' of {report.BENCHMARKS_PATH}")
    return 0 if outcome.ok else 1
