"""The booking path under load, over HTTP, against the local server on this machine's
PostgreSQL and Redis: booking rush, throughput ceiling, stampede; with the database
function's own throughput, the HubSpot sync and cold start beside them.

1. Rush: N students arrive over S seconds (open loop), each login -> available ->
   validate-credits -> create; a share cancel and book again. Per endpoint P50/P95/
   P99, throughput and errors; then the invariants (nothing oversold, credits
   conserved, every booking answered).
2. Ceiling: bookings back to back at rising concurrency (closed loop), against the
   API and against the bare-bones endpoint (bench/bare_endpoint.py, one database call
   under the same gunicorn settings). The ceiling is the most bookings/s at a level
   whose P95 stays under 200 ms with no error; reported as a share of the bare
   endpoint's and of the database function's own (bench/db_throughput.py, pgbench,
   measured in the same run).
3. Stampede: N creates for one exam of 50 seats, all sent at once: exactly 50 must
   succeed and every other answer must be EXAM_FULL.
4. Sync: the section of `./run bench sync` (the HubSpot sync), when there is one.
5. Cold start: bench/cold_start.py, its own section rewritten too.

Every run of 1-3 starts from freshly loaded data (bench/load_data.py) in a scratch
database and a Redis database of its own, and is repeated (--repeat): the report gives
the median run and the range. The machine is checked for quiet first (load average,
other test suites) and the load average is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg

from bench import cold_start, db_throughput, load_client, machine, report, servers
from bench.load_client import StudentPool
from bench.load_data import HISTORY_BOOKINGS, SMOKE_HISTORY_BOOKINGS, Checks, Population
from bench.load_stats import EndpointStats, Level

NAME = "load"
SECTION = "load"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# A Redis database of its own: each run empties it (FLUSHDB), so it must not be the
# one the application or the test suite (0) uses.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
SCRATCH_DATABASE = "bench_load"
PLOTS_DIR = report.ROOT / "bench" / "plots"
LOGS_DIR = report.ROOT / ".local" / "bench-logs"
# The load-fit server: two workers (one per core) of eight threads, as local.server
# defaults; a pool of eight connections per worker so no thread ever waits for one.
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 8
DEFAULT_POOL = 8
# Apart from `./run dev` (3000) and the ports other tools here pick (3100...).
DEFAULT_PORT = 3870
# The rush of issue 7: 2,000 students in 10 s; one in ten cancels and books again.
RUSH_STUDENTS = 2000
RUSH_ARRIVAL_S = 10.0
CANCEL_FRACTION = 0.1
# The same rush again, once each, at these shares of its arrival rate (fewer students
# over the same window): how the rush / unloaded latency ratio grows with the load the
# two cores carry, which says whether a miss is the API's cost or the box's.
RUSH_SHARES = (0.25, 0.5)
# Ten sessions with room for everyone twice over: the rush measures speed; running
# out of seats is the stampede's subject.
RUSH_EXAMS = 10
RUSH_CREDITS = 2
# Client connections for the rush: more than it ever has in flight, so requests never
# queue inside the client (which would hide the server's latency).
RUSH_CONNECTIONS = 512
LEVELS = (1, 4, 8, 16, 32, 64)
LEVEL_WARMUP_S = 1.0
LEVEL_S = 4.0
SPREAD_EXAMS = 500
SCENARIOS = ("spread", "hot")
# Students loaded per second of a level: above any rate two cores reach, so a level
# never runs out (and says so if it does).
STUDENTS_PER_S = 4000
STAMPEDE_CREATES = 2000
STAMPEDE_SEATS = 50
# The pgbench reference at 8 clients (its best in `./run bench db`), at the 16 the
# HTTP servers use in total (2 workers x 8 connections) and at twice that.
DB_CLIENTS = (8, 16, 32)
DB_DURATION_S = 10
COLD_START_RUNS = 5
# Issue 7's wait for a quiet machine, then the run goes ahead and says how busy it was.
QUIET_WAIT_S = 20 * 60.0
DEFAULT_REPEAT = 3
SEED = 7


@dataclass(frozen=True)
class Plan:
    admin_url: str = DEFAULT_DATABASE_URL
    database: str = SCRATCH_DATABASE
    redis_url: str = DEFAULT_REDIS_URL
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    pool_size: int = DEFAULT_POOL
    port: int = DEFAULT_PORT  # the API; the bare endpoint listens on port + 1
    rush_students: int = RUSH_STUDENTS
    rush_arrival_s: float = RUSH_ARRIVAL_S
    cancel_fraction: float = CANCEL_FRACTION
    rush_connections: int = RUSH_CONNECTIONS
    rush_shares: tuple[float, ...] = RUSH_SHARES
    levels: tuple[int, ...] = LEVELS
    level_warmup_s: float = LEVEL_WARMUP_S
    level_s: float = LEVEL_S
    scenario: str = "spread"
    spread_exams: int = SPREAD_EXAMS
    stampede_creates: int = STAMPEDE_CREATES
    stampede_seats: int = STAMPEDE_SEATS
    db_clients: tuple[int, ...] = DB_CLIENTS
    db_duration_s: int = DB_DURATION_S
    db_warmup_s: int = db_throughput.DEFAULT_WARMUP_S
    cold_start_runs: int = COLD_START_RUNS
    cold_start_functions: tuple[str, ...] = ()  # all
    repeat: int = DEFAULT_REPEAT
    quiet_wait_s: float = QUIET_WAIT_S
    client_cpu: int | None = None  # pin the load generator to this core
    history_bookings: int = HISTORY_BOOKINGS  # the school's past, loaded before each run
    # An experiment, never the report's figures: the API without Redis (servers.Setup).
    api_redis: bool = True
    seed: int = SEED
    smoke: bool = False

    @property
    def database_url(self) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=self.database)

    def setup(self) -> servers.Setup:
        return servers.Setup(
            database_url=self.database_url,
            redis_url=self.redis_url,
            workers=self.workers,
            threads=self.threads,
            pool_size=self.pool_size,
            redis=self.api_redis,
        )

    def rush_population(self, students: int | None = None) -> Population:
        """The rush's students (by default all of them) and exams with room for all,
        twice."""
        students = self.rush_students if students is None else students
        capacity = -(-2 * students // RUSH_EXAMS)
        return Population(
            students=students,
            exams=RUSH_EXAMS,
            capacity=capacity,
            credits=RUSH_CREDITS,
            prefix="R",
            history=self.history_bookings,
        )

    def level_population(self) -> Population:
        students = max(100, round(STUDENTS_PER_S * (self.level_warmup_s + self.level_s)))
        exams = 1 if self.scenario == "hot" else self.spread_exams
        return Population(
            students=students,
            exams=exams,
            capacity=students,
            prefix="C",
            history=self.history_bookings,
        )

    def stampede_population(self) -> Population:
        return Population(
            students=self.stampede_creates,
            exams=1,
            capacity=self.stampede_seats,
            prefix="S",
            history=self.history_bookings,
        )


def smoke(plan: Plan) -> Plan:
    """Every part at the smallest scale: for tests, never for figures."""
    return replace(
        plan,
        rush_students=24,
        rush_arrival_s=1.0,
        cancel_fraction=0.25,
        rush_connections=16,
        rush_shares=(0.5,),
        levels=(1, 4),
        level_warmup_s=0.3,
        level_s=0.7,
        spread_exams=20,
        stampede_creates=40,
        stampede_seats=5,
        db_clients=(2,),
        db_duration_s=1,
        db_warmup_s=0,
        cold_start_runs=1,
        cold_start_functions=("api/health.py",),
        history_bookings=SMOKE_HISTORY_BOOKINGS,
        repeat=1,
        quiet_wait_s=0.0,
        smoke=True,
    )


# ---------------------------------------------------------------- results


# Which lib/http.py route name (in the server's JSON log) serves each endpoint.
ROUTES = {
    "user.login": "login",
    "mock-exams.available": "available",
    "mock-exams.validate-credits": "validate-credits",
    "bookings.create": "create",
    "bookings.item": "cancel",
}


def function_times(log_path: Path, since: float, until: float) -> dict[str, list[float]]:
    """Per endpoint, the durations lib/http.py logged for requests it finished between
    `since` and `until` (epoch seconds): the time inside the function, without the
    HTTP server's parsing and queueing or the network."""
    import json

    found: dict[str, list[float]] = {}
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        endpoint = ROUTES.get(str(entry.get("route")))
        if entry.get("msg") != "request" or endpoint is None:
            continue
        if since <= float(entry.get("ts", 0)) <= until:
            found.setdefault(endpoint, []).append(float(entry["duration_ms"]))
    return found


@dataclass(frozen=True)
class RushResult:
    endpoints: list[EndpointStats]
    checks: Checks
    duration_s: float
    arrival_lag_p99_ms: float
    loop_lag_max_ms: float
    client_cpu_s: float
    cpu: machine.CpuUse
    samples: list[load_client.Sample]
    # endpoint -> (p50, p95) ms inside the function, from the server's log
    in_function: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def create(self) -> EndpointStats:
        return next(e for e in self.endpoints if e.endpoint == "create")

    def p95(self, endpoint: str) -> float:
        found = [e for e in self.endpoints if e.endpoint == endpoint]
        return found[0].p95_ms if found else float("nan")

    @property
    def problems(self) -> list[str]:
        found = list(self.checks.problems)
        every = next(e for e in self.endpoints if e.endpoint == "all")
        if every.unanswered:
            found.append(f"{every.unanswered} requests got no answer")
        return found


@dataclass(frozen=True)
class Sweep:
    """One closed-loop sweep of one target."""

    target: str  # "api" or "bare"
    levels: list[Level]
    problems: list[str]

    @property
    def ceiling(self) -> Level | None:
        from bench.load_stats import ceiling

        return ceiling(self.levels)


@dataclass(frozen=True)
class StampedeResult:
    creates: int
    seats: int
    booked: int
    full: int
    other: tuple[tuple[str, int], ...]  # any other answer, by code
    all_answered_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    checks: Checks
    samples: list[load_client.Sample]

    @property
    def problems(self) -> list[str]:
        found = list(self.checks.problems)
        if self.booked != self.seats:
            found.append(f"{self.booked} bookings for {self.seats} seats")
        if self.full != self.creates - self.seats:
            found.append(f"{self.full} EXAM_FULL answers, expected {self.creates - self.seats}")
        if self.other:
            found.append("other answers: " + ", ".join(f"{c} x{n}" for c, n in self.other))
        return found


@dataclass(frozen=True)
class DbReference:
    scenario: str
    by_clients: tuple[tuple[int, float], ...]  # clients -> bookings/s
    problems: tuple[str, ...]

    @property
    def best(self) -> float:
        return max((tps for _, tps in self.by_clients), default=float("nan"))


@dataclass
class Outcome:
    plan: Plan
    measured_on: datetime.date
    source: str
    server_version: str
    quiet_before: machine.Quiet
    quiet_after: machine.Quiet | None = None
    rushes: list[RushResult] = field(default_factory=list)
    # (share of the rush's arrival rate, its one run): see RUSH_SHARES
    lighter_rushes: list[tuple[float, RushResult]] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    stampedes: list[StampedeResult] = field(default_factory=list)
    db: DbReference | None = None
    cold: cold_start.Outcome | None = None
    cold_error: str | None = None
    sync_section: str | None = None

    @property
    def problems(self) -> list[str]:
        found = [f"rush {i + 1}: {p}" for i, r in enumerate(self.rushes) for p in r.problems]
        found += [f"rush at {s:.0%}: {p}" for s, r in self.lighter_rushes for p in r.problems]
        found += [f"ceiling ({s.target}): {p}" for s in self.sweeps for p in s.problems]
        found += [
            f"stampede {i + 1}: {p}" for i, s in enumerate(self.stampedes) for p in s.problems
        ]
        if self.db is not None:
            found += [f"db reference: {p}" for p in self.db.problems]
        if self.cold_error:
            found.append(f"cold start: {self.cold_error}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- the phases


def _cpu_meter(processes: dict[str, int]) -> machine.CpuMeter:
    def tree(pid: int) -> Callable[[], list[int]]:
        return lambda: machine.descendants(pid)

    groups = {name: tree(pid) for name, pid in processes.items()}
    groups["postgres"] = lambda: machine.pids_named("postgres")
    groups["redis"] = lambda: machine.pids_named("redis-server")
    groups["client"] = lambda: [os.getpid()]
    return machine.CpuMeter(groups)


@contextmanager
def _pinned(core: int | None) -> Iterator[None]:
    """Run the load generator (this process) on one core, then undo it."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run_rush(
    plan: Plan,
    base_url: str,
    meter: machine.CpuMeter,
    seed: int,
    log_path: Path | None = None,
    students: int | None = None,
) -> RushResult:
    from bench import load_data
    from bench.load_stats import endpoint_stats
    from bench.stats import percentiles

    population = plan.rush_population(students)
    load_data.reset(plan.database_url, plan.redis_url, population)
    since = time.time()
    meter.start()
    with _pinned(plan.client_cpu):
        run = asyncio.run(
            load_client.rush(
                base_url,
                population,
                plan.rush_arrival_s,
                plan.cancel_fraction,
                seed,
                plan.rush_connections,
            )
        )
    cpu = meter.stop()
    until = time.time()
    checks = load_data.check(plan.database_url, population, run.answered_bookings)
    lag = sorted(run.arrival_lag_ms)
    from bench.stats import percentile

    in_function = {}
    if log_path is not None:
        for endpoint, durations in function_times(log_path, since, until).items():
            figures = percentiles(durations)
            in_function[endpoint] = (figures.p50, figures.p95)
    return RushResult(
        endpoints=endpoint_stats(run.samples, run.duration_s),
        checks=checks,
        duration_s=run.duration_s,
        arrival_lag_p99_ms=percentile(lag, 0.99),
        loop_lag_max_ms=max(run.loop_lag_ms, default=0.0),
        client_cpu_s=run.client_cpu_s,
        cpu=cpu,
        samples=run.samples,
        in_function=in_function,
    )


def run_sweep(plan: Plan, target: str, base_url: str, meter: machine.CpuMeter, seed: int) -> Sweep:
    from bench import load_data
    from bench.load_stats import level

    population = plan.level_population()
    levels, problems = [], []
    for concurrency in plan.levels:
        exams = load_data.reset(plan.database_url, plan.redis_url, population)
        students = StudentPool(population.students)
        window = (plan.level_warmup_s, plan.level_warmup_s + plan.level_s)
        meter.start()
        with _pinned(plan.client_cpu):
            run = asyncio.run(
                load_client.closed_loop(
                    base_url,
                    population,
                    students,
                    [e.id for e in exams],
                    concurrency,
                    window[1],
                    seed + concurrency,
                )
            )
        cpu = meter.stop()
        result = level(concurrency, run.samples, window, cpu.cores_busy, cpu.groups)
        levels.append(result)
        checks = load_data.check(plan.database_url, population, run.answered_bookings)
        problems += [f"{concurrency} clients: {p}" for p in checks.problems]
        if students.used >= students.count:
            problems.append(f"{concurrency} clients: ran out of students")
        if not result.requests:
            problems.append(f"{concurrency} clients: no request in the measured window")
    return Sweep(target=target, levels=levels, problems=problems)


def run_stampede(plan: Plan, base_url: str) -> StampedeResult:
    from collections import Counter

    from bench import load_data
    from bench.stats import percentiles

    population = plan.stampede_population()
    [exam] = load_data.reset(plan.database_url, plan.redis_url, population)
    with _pinned(plan.client_cpu):
        run = asyncio.run(
            load_client.burst(base_url, population, exam.id, connections=population.students)
        )
    checks = load_data.check(plan.database_url, population, run.answered_bookings)
    outcomes = Counter(
        "booked" if s.status == 201 else (s.code or str(s.status)) for s in run.samples
    )
    booked, full = outcomes.pop("booked", 0), outcomes.pop("EXAM_FULL", 0)
    latency = percentiles([s.latency_ms for s in run.samples])
    return StampedeResult(
        creates=population.students,
        seats=exam.capacity,
        booked=booked,
        full=full,
        other=tuple(outcomes.most_common()),
        all_answered_s=run.duration_s,
        p50_ms=latency.p50,
        p95_ms=latency.p95,
        p99_ms=latency.p99,
        checks=checks,
        samples=run.samples,
    )


def _warm(plan: Plan, api_url: str, bare_url: str) -> None:
    """Each server thread imports and connects before anything is measured."""
    from bench import load_data

    population = Population(
        students=plan.workers * plan.threads * 2,
        exams=1,
        capacity=1000,
        history=plan.history_bookings,
    )
    [exam] = load_data.reset(plan.database_url, plan.redis_url, population)
    n = population.students
    asyncio.run(load_client.warm(api_url, population, exam.id, n, full_api=True))
    load_data.reset(plan.database_url, plan.redis_url, population)
    asyncio.run(load_client.warm(bare_url, population, exam.id, n, full_api=False))


def run_db_reference(plan: Plan, progress: Callable[[str], None]) -> DbReference:
    """The booking function's own throughput (pgbench), in its own scratch database."""
    db_plan = db_throughput.Plan(
        admin_url=plan.admin_url,
        database=f"{plan.database}_pgbench",
        scenarios=(plan.scenario,),
        clients=plan.db_clients,
        duration_s=plan.db_duration_s,
        warmup_s=plan.db_warmup_s,
        repeat=plan.repeat,
        require_quiet=not plan.smoke,
    )
    try:
        outcome = db_throughput.run(db_plan, progress=progress)
    finally:
        db_throughput.drop_database(db_plan)
    return DbReference(
        scenario=plan.scenario,
        by_clients=tuple((r.clients, r.tps) for r in outcome.runs),
        problems=tuple(p for r in outcome.runs for p in r.problems),
    )


def sync_section(path: Path = report.BENCHMARKS_PATH) -> str | None:
    """The sync benchmark's section of BENCHMARKS.md (`./run bench sync`), if any."""
    if not path.exists():
        return None
    start, end = report.markers("sync")
    text = path.read_text()
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def run(plan: Plan, progress: Callable[[str], None] = print) -> Outcome:
    from bench import load_data

    quiet = machine.wait_for_quiet(plan.quiet_wait_s, progress, database_url=plan.admin_url)
    progress(f"machine: {quiet.describe()}")
    source = report.source_version("lib", "api", "local", "bench", "supabase/migrations")
    load_data.create_database(plan.admin_url, plan.database)
    with psycopg.connect(plan.database_url, autocommit=True) as conn:
        row = conn.execute("show server_version").fetchone()
    outcome = Outcome(
        plan=plan,
        measured_on=datetime.date.today(),
        source=source,
        server_version=str(row[0]) if row else "?",
        quiet_before=quiet,
    )
    setup = plan.setup()
    logs = LOGS_DIR / plan.database  # a run's own: a test may run beside a real one
    api_url = f"http://127.0.0.1:{plan.port}"
    bare_url = f"http://127.0.0.1:{plan.port + 1}"
    try:
        with (
            servers.running(
                servers.api_command(setup, plan.port), setup, plan.port, logs / "api.log"
            ) as api,
            servers.running(
                servers.bare_command(setup, plan.port + 1),
                setup,
                plan.port + 1,
                logs / "bare.log",
            ) as bare,
        ):
            meter = _cpu_meter({"api": api.pid, "bare": bare.pid})
            _warm(plan, api_url, bare_url)
            for i in range(plan.repeat):
                rush = run_rush(plan, api_url, meter, plan.seed + i, logs / "api.log")
                outcome.rushes.append(rush)
                progress(_rush_line(f"rush {i + 1}", rush))
            for share in plan.rush_shares:
                students = max(1, round(plan.rush_students * share))
                lighter = run_rush(
                    plan, api_url, meter, plan.seed, logs / "api.log", students=students
                )
                outcome.lighter_rushes.append((share, lighter))
                progress(_rush_line(f"rush at {share:.0%}", lighter))
            for i in range(plan.repeat):
                for target, url in (("api", api_url), ("bare", bare_url)):
                    sweep = run_sweep(plan, target, url, meter, plan.seed + 100 * i)
                    outcome.sweeps.append(sweep)
                    progress(_sweep_line(i, sweep))
            for i in range(plan.repeat):
                stampede = run_stampede(plan, api_url)
                outcome.stampedes.append(stampede)
                progress(_stampede_line(i, stampede))
    finally:
        load_data.drop_database(plan.admin_url, plan.database)
    progress("database function alone (pgbench) ...")
    outcome.db = run_db_reference(plan, progress)
    outcome.quiet_after = machine.quiet(database_url=plan.admin_url)
    progress("cold start ...")
    try:
        routes = cold_start.function_routes(list(plan.cold_start_functions))
        outcome.cold = cold_start.measure(routes, runs=plan.cold_start_runs, progress=progress)
    except cold_start.BenchError as exc:
        outcome.cold_error = str(exc)
    outcome.sync_section = sync_section()
    return outcome


def _rush_line(label: str, rush: RushResult) -> str:
    state = "ok" if not rush.problems else "FAILED: " + "; ".join(rush.problems)
    parts = [f"{e.endpoint} p95 {e.p95_ms:.1f}" for e in rush.endpoints if e.endpoint != "all"]
    every = rush.endpoints[-1]
    return (
        f"{label}: {every.requests} requests in {rush.duration_s:.1f} s,"
        f" {every.errors} errors; {', '.join(parts)} ms; {state}"
    )


def _sweep_line(i: int, sweep: Sweep) -> str:
    levels = ", ".join(
        f"{lv.concurrency}: {lv.bookings_per_s:.0f}/s p95 {lv.p95_ms:.0f} ms"
        + (f" ({lv.errors} errors)" if lv.errors else "")
        for lv in sweep.levels
    )
    best = sweep.ceiling
    ceiling = f"{best.bookings_per_s:.0f}/s" if best else "none"
    state = "" if not sweep.problems else " FAILED: " + "; ".join(sweep.problems)
    return f"ceiling {i + 1} ({sweep.target}): {levels}; ceiling {ceiling}{state}"


def _stampede_line(i: int, s: StampedeResult) -> str:
    state = "ok" if not s.problems else "FAILED: " + "; ".join(s.problems)
    return (
        f"stampede {i + 1}: {s.booked} booked, {s.full} EXAM_FULL of {s.creates};"
        f" all answered in {s.all_answered_s:.2f} s, p95 {s.p95_ms:.0f} ms; {state}"
    )


# ---------------------------------------------------------------- command line


def command_line(plan: Plan) -> str:
    """The command that reproduces this run (URLs left out)."""
    # An experiment's figures never go in the report, so its command has no --report.
    parts = ["./run bench load --report" if plan.api_redis else "./run bench load"]
    default = Plan()
    flags = (
        ("--students", plan.rush_students, default.rush_students),
        ("--arrival", plan.rush_arrival_s, default.rush_arrival_s),
        ("--cancel-fraction", plan.cancel_fraction, default.cancel_fraction),
        ("--scenario", plan.scenario, default.scenario),
        ("--level-seconds", plan.level_s, default.level_s),
        ("--stampede", plan.stampede_creates, default.stampede_creates),
        ("--seats", plan.stampede_seats, default.stampede_seats),
        ("--workers", plan.workers, default.workers),
        ("--threads", plan.threads, default.threads),
        ("--pool", plan.pool_size, default.pool_size),
        ("--repeat", plan.repeat, default.repeat),
        ("--client-cpu", plan.client_cpu, default.client_cpu),
    )
    parts += [f"{flag} {value}" for flag, value, base in flags if value != base]
    if not plan.api_redis:
        parts.append("--api-without-redis")
    if plan.levels != default.levels:
        parts.append("--levels " + ",".join(map(str, plan.levels)))
    return " ".join(parts)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _levels(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(","))
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels are positive integers")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a database on the PostgreSQL server to use ($BENCH_DATABASE_URL, else"
        f" {DEFAULT_DATABASE_URL}); the run works in a scratch database beside it",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="a Redis database the run may empty ($BENCH_REDIS_URL, else %(default)s)",
    )
    parser.add_argument("--students", type=_positive, default=RUSH_STUDENTS, help="rush size")
    parser.add_argument(
        "--arrival", type=_seconds, default=RUSH_ARRIVAL_S, help="rush arrival window, s"
    )
    parser.add_argument("--cancel-fraction", type=_fraction, default=CANCEL_FRACTION)
    parser.add_argument("--scenario", choices=SCENARIOS, default="spread", help="ceiling exams")
    parser.add_argument("--levels", type=_levels, default=LEVELS, help="ceiling concurrency")
    parser.add_argument("--level-seconds", type=_seconds, default=LEVEL_S)
    parser.add_argument("--stampede", type=_positive, default=STAMPEDE_CREATES)
    parser.add_argument("--seats", type=_positive, default=STAMPEDE_SEATS)
    parser.add_argument("--workers", type=_positive, default=DEFAULT_WORKERS)
    parser.add_argument("--threads", type=_positive, default=DEFAULT_THREADS)
    parser.add_argument("--pool", type=_positive, default=DEFAULT_POOL, help="DB_POOL_MAX_SIZE")
    parser.add_argument("--port", type=_positive, default=DEFAULT_PORT)
    parser.add_argument("--repeat", type=_positive, default=DEFAULT_REPEAT)
    parser.add_argument("--client-cpu", type=int, help="pin the load generator to this core")
    parser.add_argument(
        "--quiet-wait", type=float, default=QUIET_WAIT_S, help="seconds to wait for quiet"
    )
    parser.add_argument(
        "--api-without-redis",
        action="store_true",
        help="an experiment: the API server gets no REDIS_URL (no lock, seat counters or"
        " rate limits; the database alone decides), to measure what Redis costs it",
    )
    parser.add_argument("--smoke", action="store_true", help="everything tiny: a harness test")
    parser.add_argument("--report", action="store_true", help="write BENCHMARKS.md and plots")


def plan_from(args: argparse.Namespace) -> Plan:
    plan = Plan(
        admin_url=args.database_url,
        redis_url=args.redis_url,
        rush_students=args.students,
        rush_arrival_s=args.arrival,
        cancel_fraction=args.cancel_fraction,
        scenario=args.scenario,
        levels=args.levels,
        level_s=args.level_seconds,
        stampede_creates=args.stampede,
        stampede_seats=args.seats,
        workers=args.workers,
        threads=args.threads,
        pool_size=args.pool,
        port=args.port,
        repeat=args.repeat,
        client_cpu=args.client_cpu,
        quiet_wait_s=args.quiet_wait,
        api_redis=not args.api_without_redis,
    )
    return smoke(plan) if args.smoke else plan


def describe_machine() -> str:
    return f"{report.machine().describe()}; Python {platform.python_version()}"


def main(args: argparse.Namespace) -> int:
    from bench import load_report

    if args.smoke and args.report:
        raise SystemExit("--smoke figures are not benchmark figures; drop --report")
    if args.api_without_redis and args.report:
        raise SystemExit(
            "--api-without-redis is an experiment, not the production path; drop --report"
        )
    plan = plan_from(args)
    started = time.monotonic()
    outcome = run(plan)
    plots = load_report.plots(outcome, PLOTS_DIR if args.report else LOGS_DIR / "plots")
    section = load_report.render(outcome, command_line(plan), plots)
    print()
    print(section)
    print(f"\n({time.monotonic() - started:.0f} s)")
    if args.report:
        # Only this section: the cold-start one belongs to `./run bench cold-start`.
        report.update_section(report.BENCHMARKS_PATH, SECTION, section)
        print(f"wrote section '{SECTION}' of {report.BENCHMARKS_PATH}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    add_arguments(cli)
    sys.exit(main(cli.parse_args()))
