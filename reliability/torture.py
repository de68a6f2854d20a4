"""Torture: seeded, randomized, concurrent book / cancel / replay / admin adjustment /
admin cancel / sync workloads over HTTP against the local server, with faults
injected while they run, judged by reliability.checker at a checkpoint after every
fault and at the end (after a final sync, HubSpot too).

    ./run reliability torture [--seed N] [--short]

The server is the real one (local/server.py under gunicorn, 2 workers x 8 threads),
over the embedded PostgreSQL and Redis of reliability/stack.py, which the faults stop
and start for real, and the HubSpot stand-in, whose faults are switched at runtime.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import random
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import report
from local import admin_token, hubspot_demo
from local.standins import upstash as upstash_standin
from local.standins.hubspot import Faults, HubSpotStandIn, serve
from reliability import checker, stack, world
from reliability.faults import Fault, schedule
from reliability.history import History, Op, statuses
from reliability.outcome import Outcome, RunSettings
from reliability.sync_driver import SyncDriver
from reliability.workload import REQUEST_TIMEOUT_S, Client, Ledger

NAME = "torture"
ROOT = Path(__file__).resolve().parent.parent
# The server's output of each run (JSON request logs with route, status and code),
# kept for looking into what the report counts.
LOG_DIR = ROOT / ".local" / "reliability-logs"
STUDENT_KINDS = frozenset(
    {"book", "replay", "cancel", "login", "read.capacity", "read.available", "read.list"}
    | {"read.validate"}
)
# How long the final sync may wait for a killed run's lease to expire and retry.
FINAL_SYNC_ATTEMPTS = 20
FINAL_SYNC_PAUSE_S = 2.0


@dataclass(frozen=True)
class Size:
    students: int
    exams: int
    clients: int
    warmup_s: float
    fault_s: float
    recovery_s: float
    rounds: int
    tail_s: float
    sync_interval_s: float
    # How the functions reach Redis: "tcp" (redis-py, REDIS_URL) or "rest" (Upstash's
    # REST API, the serverless default on Vercel, through the Upstash stand-in in front
    # of the same Redis). The long run does both, one after the other.
    redis: str = "tcp"
    # How the functions reach PostgreSQL: "direct", or "pgbouncer": through a real
    # transaction-mode pooler (local/pgbouncer.py), as production reaches Supabase
    # through Supavisor on port 6543. The checker always reads the server directly.
    database: str = "direct"


TRANSPORTS = {
    "tcp": "TCP (redis-py)",
    "rest": "Upstash's REST API (the stand-in, in front of the same embedded Redis)",
}
DATABASE_PATHS = {
    "direct": "directly",
    "pgbouncer": "through PgBouncer in transaction mode (as Supavisor on port 6543)",
}
SHORT = Size(60, 16, 6, 3.0, 3.0, 3.0, 1, 2.0, 1.5)
LONG = Size(200, 24, 12, 10.0, 15.0, 10.0, 2, 10.0, 4.0)
# The stand-in is a Python server in the torture's own process: REST runs carry less
# load, so one round of every fault.
LONG_REST = Size(200, 24, 12, 10.0, 15.0, 10.0, 1, 10.0, 4.0, redis="rest")
SHORT_POOLED = dataclasses.replace(SHORT, database="pgbouncer")


@dataclass
class FaultWindow:
    """One fault as the clients lived it: answers during the fault and its recovery,
    the checker's verdict at the checkpoint after it, and broken promises."""

    fault: Fault
    round: int
    during: Counter[str]
    after: Counter[str]
    sync: Counter[str]
    student_ok: int
    checkpoint: checker.Verdict
    problems: list[str] = field(default_factory=list)


@dataclass
class TortureResult:
    settings: RunSettings
    size: Size
    duration_s: float
    history: History
    windows: list[FaultWindow]
    final: checker.Verdict
    hubspot: checker.Verdict
    final_sync: list[Op]
    kills: Counter[str]
    purchases: int
    server_log: dict[str, int]
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def torture(settings: RunSettings, size: Size | None = None) -> TortureResult:
    size = size or (LONG if settings.long else SHORT)
    with _one_torture_at_a_time():
        return _torture(settings, size)


@contextlib.contextmanager
def _one_torture_at_a_time() -> Iterator[None]:
    """The torture stops and starts the embedded servers and loads both cores: a second
    run beside it (the test command of another checkout, a long run) would have its
    servers restarted under it or its figures skewed. It waits for the first instead
    (an advisory lock in the system's temporary directory, seen by every checkout)."""
    path = Path(tempfile.gettempdir()) / "mock-exam-torture.lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("another torture run holds the embedded servers; waiting for it", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _torture(settings: RunSettings, size: Size) -> TortureResult:
    rng = random.Random(settings.seed)
    services = stack.services(restartable=True)
    stack.flush_redis(services.redis_url)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"torture-server-{settings.seed}-{size.redis}.log"
    started = time.monotonic()
    with (
        stack.fresh_database(services.pg_admin_url) as database_url,
        contextlib.ExitStack() as stack_pooler,
    ):
        the_world = world.create(database_url, rng, students=size.students, exams=size.exams)
        hubspot_token = f"pat-torture-{secrets.token_hex(12)}"
        standin = serve(hubspot_token, per_10s=2000, search_per_s=50)
        upstash = None
        redis_env = {"REDIS_URL": services.redis_url}
        if size.redis == "rest":
            upstash_token = secrets.token_urlsafe(24)
            upstash = upstash_standin.serve(services.redis_url, upstash_token)
            redis_env = {
                "UPSTASH_REDIS_REST_URL": upstash.url,
                "UPSTASH_REDIS_REST_TOKEN": upstash_token,
            }
        try:
            hubspot_demo.mirror(standin, database_url)
            jwt_secret = admin_token.new_secret()
            cron_secret = secrets.token_urlsafe(32)
            pooled = stack_pooler.enter_context(_database_path(size, services.pg_admin_url))
            functions_database_url = pooled(database_url)
            env = {
                "DATABASE_URL": functions_database_url,
                **redis_env,
                "HUBSPOT_ACCESS_TOKEN": hubspot_token,
                "HUBSPOT_BASE_URL": standin.url,
                "HUBSPOT_APP_ID": standin.app_id,
                "CRON_SECRET": cron_secret,
                "SUPABASE_JWT_SECRET": jwt_secret,
                "SYNC_TIME_BUDGET_S": "30",
                # The stand-in's search shows a create at once (no index lag), so a lost
                # create may be made again seconds later; HubSpot's default is 300 s.
                "SYNC_CREATE_RECOVERY_S": "2",
            }
            with log_path.open("wb") as log, stack.api_server(env, output=log) as base:
                result = _run(
                    settings,
                    size,
                    services,
                    standin,
                    the_world,
                    database_url,
                    base=base,
                    cron_secret=cron_secret,
                    admin=admin_token.sign(jwt_secret),
                    child_env={
                        k: env[k]
                        for k in ("DATABASE_URL", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_APP_ID")
                    }
                    | {"HUBSPOT_BASE_URL": standin.url},
                )
        finally:
            standin.stop()
            if upstash is not None:
                upstash.stop()
    result.duration_s = time.monotonic() - started
    result.server_log = _scan_server_log(log_path)
    if result.server_log["tracebacks"] or result.server_log["status_500"]:
        result.problems.append(f"server log: {result.server_log}")
    return result


@contextlib.contextmanager
def _database_path(size: Size, pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """How the functions' DATABASE_URL reaches the server: as is, or through PgBouncer
    in transaction mode (started here, in front of the same server; it survives the
    postgres_restart fault as Supavisor does, by opening new server connections)."""
    if size.database == "direct":
        yield lambda url: url
        return
    from local import pgbouncer

    with pgbouncer.running(pg_admin_url) as pooler:
        yield pooler.url


def _run(
    settings: RunSettings,
    size: Size,
    services: stack.Services,
    standin: HubSpotStandIn,
    the_world: world.World,
    database_url: str,
    *,
    base: str,
    cron_secret: str,
    admin: str,
    child_env: dict[str, str],
) -> TortureResult:
    history = History()
    ledger = Ledger()
    stop = threading.Event()
    clients = [
        Client(n, settings.seed, base, the_world, history, ledger, admin, stop)
        for n in range(size.clients)
    ]
    driver = SyncDriver(
        base=base,
        cron_secret=cron_secret,
        admin_token=admin,
        standin=standin,
        child_env=child_env,
        world=the_world,
        history=history,
        stop=stop,
        seed=settings.seed,
        interval_s=size.sync_interval_s,
    )
    for thread in [*clients, driver]:
        thread.start()
    windows: list[FaultWindow] = []
    problems: list[str] = []
    try:
        time.sleep(size.warmup_s)
        faults = schedule(services, standin, driver)
        for round_number in range(1, size.rounds + 1):
            for fault in faults:
                windows.append(_window(fault, round_number, size, history, database_url, the_world))
        time.sleep(size.tail_s)
    finally:
        stop.set()
        for thread in [*clients, driver]:
            thread.join(timeout=REQUEST_TIMEOUT_S + 130)
    standin.set_faults(Faults())
    final_sync = _final_sync(driver)
    if not final_sync or final_sync[-1].data.get("status") != "succeeded":
        problems.append(f"the final sync did not succeed: {[_describe(op) for op in final_sync]}")
    final = checker.check(database_url, the_world, history, purchases=driver.purchases, final=True)
    hubspot = checker.hubspot_violations(checker.snapshot(database_url), standin)
    for window in windows:
        problems.extend(f"{window.fault.name}: {p}" for p in window.problems)
    problems.extend(final.describe())
    problems.extend(f"HubSpot: {line}" for line in hubspot.describe())
    driver.close()
    return TortureResult(
        settings=settings,
        size=size,
        duration_s=0.0,
        history=history,
        windows=windows,
        final=final,
        hubspot=hubspot,
        final_sync=final_sync,
        kills=driver.kills,
        purchases=sum(sum(c.values()) for c in driver.purchases.values()),
        server_log={},
        problems=problems,
    )


def _window(
    fault: Fault,
    round_number: int,
    size: Size,
    history: History,
    database_url: str,
    the_world: world.World,
) -> FaultWindow:
    start = time.monotonic()
    fault.inject()
    time.sleep(size.fault_s)
    fault.heal()
    healed = time.monotonic()
    time.sleep(size.recovery_s)
    end = time.monotonic()
    during = history.between(start, healed)
    after = history.between(healed, end)
    students = [op for op in during + after if op.kind in STUDENT_KINDS]
    verdict = checker.check(database_url, the_world, history)
    window = FaultWindow(
        fault=fault,
        round=round_number,
        during=statuses([op for op in during if op.kind in STUDENT_KINDS]),
        after=statuses([op for op in after if op.kind in STUDENT_KINDS]),
        sync=Counter(_describe(op) for op in during + after if op.kind.startswith("sync.")),
        student_ok=sum(op.outcome == "ok" for op in students),
        checkpoint=verdict,
    )
    for op in during + after:
        if op.status == 500:
            window.problems.append(f"{op.kind} answered a bare 500")
        if op.status in (429, 503) and not op.retry_after and not op.kind.startswith("sync."):
            window.problems.append(f"{op.kind} answered {op.status} without Retry-After")
    broken = [
        op for op in students if op.outcome == "info" and op.status not in fault.student_5xx_allowed
    ]
    if broken:
        seen = Counter(f"{op.kind} {op.status or 'no answer'} {op.code}" for op in broken)
        window.problems.append(
            f"students saw {_counts(seen)} (allowed: {sorted(fault.student_5xx_allowed)})"
        )
    if not any(op.outcome == "ok" for op in after if op.kind in STUDENT_KINDS):
        window.problems.append("no student operation succeeded after the fault healed")
    window.problems.extend(f"checkpoint: {line}" for line in verdict.describe())
    return window


def _final_sync(driver: SyncDriver) -> list[Op]:
    """Sync until a run succeeds (a killed run's lease expires within seconds)."""
    attempts: list[Op] = []
    for _ in range(FINAL_SYNC_ATTEMPTS):
        op = driver.sync(via="cron")
        attempts.append(op)
        if op.status == 200 and op.data.get("status") == "succeeded":
            break
        time.sleep(FINAL_SYNC_PAUSE_S)
    return attempts


def _describe(op: Op) -> str:
    if op.kind == "sync.killed":
        return f"killed run: {op.data.get('result')}"
    if op.status == 200:
        return f"{op.kind} run {op.data.get('status')}"
    return f"{op.kind} {op.code}"


def _scan_server_log(path: Path) -> dict[str, int]:
    text = path.read_text(errors="replace") if path.exists() else ""
    return {
        "lines": text.count("\n"),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "status_500": text.count('"status": 500'),
    }


# ---------------------------------------------------------------- report


def run(settings: RunSettings) -> Outcome:
    if not settings.long:
        result = torture(settings)
        return Outcome(NAME, result.passed, render(result), summary(result))
    tcp = torture(settings, LONG)
    rest = torture(settings, LONG_REST)
    markdown = render(tcp) + "\n\n" + render(rest, title="### The same over Upstash REST")
    return Outcome(
        NAME,
        tcp.passed and rest.passed,
        markdown,
        f"over TCP: {summary(tcp)}; over Upstash REST: {summary(rest)}",
    )


def summary(result: TortureResult) -> str:
    ops = len(result.history.ops())
    kinds = len({w.fault.name for w in result.windows})
    violations = result.final.count + result.hubspot.count
    violations += sum(w.checkpoint.count for w in result.windows)
    return (
        f"{ops:,} requests in {result.duration_s:.0f} s from {result.size.clients} clients;"
        f" {len(result.windows)} fault windows of {kinds} kinds;"
        f" {len(checker.CHECKS) + len(checker.HUBSPOT_CHECKS)} checks,"
        f" {violations} violations"
    )


def render(result: TortureResult, title: str = "## Torture") -> str:
    size = result.size
    ops = result.history.ops()
    by_kind: dict[str, Counter[str]] = {}
    for op in ops:
        by_kind.setdefault(op.kind, Counter())[op.outcome] += 1
    refusals: dict[str, Counter[str]] = {}
    for op in ops:
        if op.outcome == "fail":
            refusals.setdefault(op.kind, Counter())[op.code] += 1
    kind_rows = [
        [
            kind,
            f"{sum(c.values()):,}",
            f"{c['ok']:,}",
            f"{c['fail']:,}",
            f"{c['info']:,}",
            _counts(refusals.get(kind, Counter())),
        ]
        for kind, c in sorted(by_kind.items())
    ]
    fault_rows = [
        [
            f"{w.fault.name} (round {w.round})",
            w.fault.what,
            _counts(w.during),
            _counts(w.after),
            str(w.checkpoint.count),
            "; ".join(w.problems) or "none",
        ]
        for w in result.windows
    ]
    check_rows = [
        [check, f"{count:,}", str(len(result.final.violations.get(check, [])))]
        for check, count in sorted(result.final.examined.items())
    ] + [
        [check, f"{count:,}", str(len(result.hubspot.violations.get(check, [])))]
        for check, count in sorted(result.hubspot.examined.items())
    ]
    bookings = sum(1 for op in ops if op.kind in ("book", "replay") and op.status == 201)
    seconds = result.duration_s
    lines = [
        title,
        "",
        f"`./run reliability torture --seed {result.settings.seed}"
        f"{'' if result.settings.long else ' --short'}`: measured at"
        f" {report.source_version('lib', 'api', 'supabase', 'reliability')} on"
        f" {report.machine().describe()}.",
        "",
        f"- Verdict: **{'passed' if result.passed else 'FAILED'}**,"
        f" {result.final.count + result.hubspot.count} invariant violations at the end,"
        f" {sum(w.checkpoint.count for w in result.windows)} at the"
        f" {len(result.windows)} checkpoints.",
        f"- Redis reached over {TRANSPORTS[size.redis]}; PostgreSQL"
        f" {DATABASE_PATHS[size.database]}.",
        f"- Load held: {len(ops):,} requests in {seconds:.0f} s from {size.clients} clients"
        f" and the sync driver ({len(ops) / max(seconds, 1):.0f}/s); {bookings:,} bookings"
        f" made; {size.students} students, {size.exams} exams of"
        f" {world.MIN_SEATS}-{world.MAX_SEATS} seats.",
        f"- Sync: {result.kills['killed']} runs SIGKILLed mid-run"
        f" ({result.kills['finished first']} finished before their kill),"
        f" {result.purchases} credits bought in HubSpot and merged; final sync:"
        f" {', '.join(_describe(op) for op in result.final_sync)}.",
        f"- Server log: {result.server_log.get('lines', 0):,} lines,"
        f" {result.server_log.get('tracebacks', 0)} tracebacks,"
        f" {result.server_log.get('status_500', 0)} answers 500.",
        "",
        "Operations (ok: 2xx; fail: 4xx, it did not happen; info: no answer or 5xx,"
        " resolved by the checker from the database):",
        "",
        report.markdown_table(["operation", "sent", "ok", "fail", "info", "refusals"], kind_rows),
        "",
        f"Faults, each for {size.fault_s:.0f} s then {size.recovery_s:.0f} s of recovery"
        " while the clients go on; students' answers during and after, and the checker"
        " at the checkpoint that follows:",
        "",
        report.markdown_table(
            ["fault", "what", "students during", "students after", "violations", "problems"],
            fault_rows,
        ),
        "",
        "Final checks (after the final sync):",
        "",
        report.markdown_table(["check", "examined", "violations"], check_rows),
    ]
    if result.problems:
        lines += ["", "Problems found:", ""] + [f"- {p}" for p in result.problems[:40]]
    return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(counter.items())) or "-"
