"""CPU per booking on one thread, without HTTP or load: where the API's cost goes.

`./run bench load` compares the API's server CPU per booking with the bare endpoint's
under load, where two cores are shared by everything. This takes the load away: it
calls the WSGI apps in-process, one booking after another on one thread, against this
machine's PostgreSQL and Redis, and reads the thread's CPU time (`time.thread_time`:
user + system, so the loopback's kernel work for each exchange counts). Four ways, each
round of each in a fresh interpreter with only its own environment:

- bare endpoint: `bench/bare_endpoint.app` (one database call, nothing else);
- function, no Redis: `api/bookings/create.py`'s `app` with no REDIS_URL (the database
  alone decides);
- function: the same with Redis (the lock, seat counter and rate limit: two EVALSHA
  exchanges);
- function via the local router: what `./run bench load` serves (`local.server`'s
  router in front; in production Vercel's edge routes instead).

Beside them, the floor of the work the API must do beyond the bare call (product.md
section 5: a per-student lock and seat counters in Redis; one structured log line per
request): two Redis exchanges on a bare socket (`bench/redis_calls.py`'s floor) and
one log line written with `os.write`. Bare plus that floor, over bare, is the least
server CPU per booking any API doing that work could show against the bare endpoint.

Every booking is a new student's on one of 500 exams, from freshly loaded data in the
scratch database `bench_path` (with the school's history, as `bench load`); every
answer must be 201 and every booking must be in the database, or the run fails.
It prints the figures; `--report` also writes its section of BENCHMARKS.md.

    ./run bench path-cpu [--calls 1000] [--rounds 3] [--report]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

NAME = "path-cpu"
ROOT = Path(__file__).resolve().parent.parent
SCRATCH_DATABASE = "bench_path"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
EXAMS = 500
WARM_UP = 100  # bookings before the measured ones: imports, the pool, Redis scripts
# A log line of the size lib/http.py writes for a booking (route, status, ids...).
LOG_LINE = (
    json.dumps(
        {
            "level": "INFO",
            "logger": "api",
            "msg": "request",
            "request_id": "0" * 32,
            "route": "bookings.create",
            "method": "POST",
            "status": 201,
            "code": None,
            "duration_ms": 2.41,
            "booking_id": "00000000-0000-0000-0000-000000000000",
            "exam_id": "00000000-0000-0000-0000-000000000000",
            "replayed": False,
        }
    )
    + "\n"
).encode()


@dataclass(frozen=True)
class Way:
    label: str
    app: str  # "bare", "function" or "router": which WSGI callable the child builds
    redis: bool


WAYS = (
    Way("bare endpoint", "bare", redis=False),
    Way("function, no Redis", "function", redis=False),
    Way("function", "function", redis=True),
    Way("function via the local router", "router", redis=True),
)


@dataclass(frozen=True)
class Figure:
    way: Way
    cpu_us: list[float]  # per round
    wall_us: list[float]

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_us)

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_us)


@dataclass(frozen=True)
class Result:
    figures: list[Figure]
    redis_floor_us: float  # one exchange on a bare socket
    log_write_us: float  # one log line, os.write
    bookings: int  # written by the run, as counted in the database

    @property
    def bare(self) -> float:
        return self.figures[0].cpu

    @property
    def floor_us(self) -> float:
        return self.bare + 2 * self.redis_floor_us + self.log_write_us


# ---------------------------------------------------------------- the child


def _build(app: str) -> WSGIApplication:
    if app == "bare":
        from bench import bare_endpoint

        return bare_endpoint.app
    if app == "router":
        from local import server

        return server.make_app(trust_forwarded=True)
    from local import server

    # The function file itself, loaded as Vercel loads it (no router in front).
    route = server.resolve(server.discover_routes(server.API_DIR), "/api/bookings/create")
    assert route is not None
    return server._Function(route[0]).load()  # the router's own loader


def _environ(n: int, exam_id: str) -> dict[str, Any]:
    body = json.dumps(
        {
            "student_id": f"P{n}",
            "email": f"p{n}@load.example",
            "mock_exam_id": exam_id,
            "dominant_hand": "right",
        }
    ).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/bookings/create",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_IDEMPOTENCY_KEY": f"path-{n}",
        # A client of its own per booking, as the load generator's students.
        "HTTP_X_REAL_IP": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
    }


def child(app_name: str, first: int, calls: int, exam_ids: Sequence[str]) -> dict[str, Any]:
    """Book students first..first+WARM_UP+calls-1 through `app_name`; the measured
    bookings' thread CPU and wall time per booking, and every answer's status."""
    app = _build(app_name)
    statuses: Counter[str] = Counter()

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        statuses[status.split(" ", 1)[0]] += 1
        return lambda data: None  # PEP 3333's write(): nothing here calls it

    def book(n: int) -> None:
        b"".join(app(_environ(n, exam_ids[n % len(exam_ids)]), start_response))

    for n in range(first, first + WARM_UP):
        book(n)
    cpu, wall = time.thread_time(), time.perf_counter()
    for n in range(first + WARM_UP, first + WARM_UP + calls):
        book(n)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return {
        "cpu_us": cpu / calls * 1e6,
        "wall_us": wall / calls * 1e6,
        "statuses": dict(statuses),
    }


# ---------------------------------------------------------------- the floors


def _per_call(call: Callable[[], object], calls: int) -> float:
    for _ in range(min(calls, 200)):
        call()
    started = time.thread_time()
    for _ in range(calls):
        call()
    return (time.thread_time() - started) / calls * 1e6


def log_write_us(calls: int, directory: Path) -> float:
    """Thread CPU of writing one booking's log line to a file (as gunicorn's stderr is
    in `bench load`), with os.write: the system call alone, no formatting."""
    with tempfile.TemporaryFile(dir=directory) as log:
        fd = log.fileno()
        return _per_call(lambda: os.write(fd, LOG_LINE), calls)


# ---------------------------------------------------------------- the run


def measure(
    database_url: str,
    redis_url: str,
    calls: int,
    rounds: int,
    log_dir: Path,
    ways: Sequence[Way] = WAYS,
    history: int | None = None,
    database: str = SCRATCH_DATABASE,
) -> Result:
    """Every way, `rounds` rounds of `calls` bookings each, in database `database`
    (created beside database_url's, dropped at the end); `history` past bookings
    loaded first (default: load_data's, as the other benchmarks)."""
    from bench import load_data, redis_calls

    population = load_data.Population(
        students=len(ways) * rounds * (WARM_UP + calls),
        exams=EXAMS,
        capacity=len(ways) * rounds * (WARM_UP + calls),
        prefix="P",
        **({} if history is None else {"history": history}),
    )
    url = load_data.create_database(database_url, database)
    try:
        exams = load_data.reset(url, redis_url, population)
        exam_ids = json.dumps([e.id for e in exams])
        cpu: dict[str, list[float]] = {w.label: [] for w in ways}
        wall: dict[str, list[float]] = {w.label: [] for w in ways}
        first = 1
        for _ in range(rounds):
            for way in ways:  # alternated, so drift over the run spreads evenly
                answer = _run_child(way, first, calls, url, redis_url, exam_ids, log_dir)
                if answer["statuses"] != {"201": WARM_UP + calls}:
                    raise RuntimeError(f"{way.label}: answers {answer['statuses']}, not all 201")
                cpu[way.label].append(answer["cpu_us"])
                wall[way.label].append(answer["wall_us"])
                first += WARM_UP + calls
        bookings = _bookings(url)
        if bookings != first - 1:
            raise RuntimeError(f"{first - 1} bookings answered 201, {bookings} in the database")
        socket_floor = redis_calls.measure(redis_url, calls, 3)["bare socket (floor)"][0]
        return Result(
            figures=[Figure(w, cpu[w.label], wall[w.label]) for w in ways],
            redis_floor_us=socket_floor,
            log_write_us=log_write_us(calls * 5, log_dir),
            bookings=bookings,
        )
    finally:
        load_data.flush_redis(redis_url)
        load_data.drop_database(database_url, database)


def _run_child(
    way: Way,
    first: int,
    calls: int,
    database_url: str,
    redis_url: str,
    exam_ids: str,
    log_dir: Path,
) -> dict[str, Any]:
    from bench import servers

    # The servers' environment for `bench load`: only the bench's own settings reach the
    # function, one pooled connection for the one thread.
    setup = servers.Setup(
        database_url, redis_url, workers=1, threads=1, pool_size=1, redis=way.redis
    )
    env = setup.environment(os.environ)
    env["PATH_CPU_EXAMS"] = exam_ids
    command = [sys.executable, "-m", "bench.path_cpu", "--child", way.app, str(first), str(calls)]
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "path-cpu.log").open("ab") as log:  # the functions' log lines
        done = subprocess.run(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{way.label}: the child failed (rc {done.returncode}); see {log.name}")
    answer: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return answer


def _bookings(database_url: str) -> int:
    import psycopg

    from bench import load_data

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"select count(*) from hubspot_sync.hubspot_bookings where {load_data.RUN_BOOKING}"
        ).fetchone()
    return int(row[0]) if row else 0


def render(result: Result, calls: int) -> str:
    """The figures, and a reading drawn from them (a re-run cannot leave a stale one)."""
    from bench import report

    bare = result.bare
    by_label = {f.way.label: f for f in result.figures}
    rows = [
        [
            f.way.label,
            f"{f.cpu:.0f}",
            f"{min(f.cpu_us):.0f}-{max(f.cpu_us):.0f}",
            f"{f.cpu / bare:.2f}x",
            f"{f.wall:.0f}",
        ]
        for f in result.figures
    ]
    table = report.markdown_table(
        ["way", "CPU us per booking", "range", "/ bare", "wall us per booking"], rows
    )
    floor = result.floor_us
    lines = [
        f"- {len(result.figures[0].cpu_us)} rounds of {calls:,} bookings per way (after"
        f" {WARM_UP} unmeasured), each round in a fresh interpreter; median and range of"
        f" the rounds. {result.bookings:,} bookings written, every answer 201, every one"
        " in the database.",
        "",
        table,
        "",
        f"- The floor of the work the function must do beyond the bare call: two Redis"
        f" exchanges on a bare socket (2 x {result.redis_floor_us:.1f} us) and one log"
        f" line written ({result.log_write_us:.1f} us), {floor - bare:.0f} us. Bare plus"
        f" that floor: {floor:.0f} us, **{floor / bare:.2f}x** the bare endpoint.",
    ]
    plain, full = by_label.get("function, no Redis"), by_label.get("function")
    if plain is not None and full is not None:
        lines.append(
            f"- The function costs {plain.cpu - bare:.0f} us more than the bare endpoint"
            f" without Redis (request parsing and validation, the envelope, the log line"
            f" through `logging`, the statement timeout and call deadline) and"
            f" {full.cpu - plain.cpu:.0f} us more with its two Redis exchanges, whose"
            f" floor is {2 * result.redis_floor_us:.0f} us."
        )
    return "\n".join(lines)


def report_section(result: Result, calls: int) -> str:
    import platform

    from bench import report

    version = report.source_version("bench", "lib", "api", "local")
    return "\n".join(
        [
            "## CPU per booking on one thread (no HTTP, no load)",
            "",
            f"`./run bench {NAME} --report --calls {calls}"
            f" --rounds {len(result.figures[0].cpu_us)}`, measured"
            f" {time.strftime('%Y-%m-%d')} on {version}.",
            "",
            f"- Machine: {report.machine().describe()}; Python"
            f" {platform.python_version()}; PostgreSQL and Redis of this machine, on"
            " loopback.",
            "- What it is: the WSGI apps called in-process on one thread, one booking after"
            " another, thread CPU (user + system) per booking. The load section compares"
            " CPU per booking under load on shared cores; this shows where it goes without"
            " the load.",
            render(result, calls),
        ]
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL server's database to connect to; the run works in the scratch"
        f" database {SCRATCH_DATABASE} beside it ($BENCH_DATABASE_URL, else %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="a Redis database the run may empty ($BENCH_REDIS_URL, else %(default)s)",
    )
    parser.add_argument("--calls", type=int, default=1000, help="measured bookings per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every way")
    parser.add_argument("--report", action="store_true", help="write its BENCHMARKS.md section")


def main(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.rounds < 1:
        raise SystemExit("--calls and --rounds must be at least 1")
    result = measure(
        args.database_url, args.redis_url, args.calls, args.rounds, ROOT / ".local/bench-logs"
    )
    print(render(result, args.calls))
    if args.report:
        from bench import report

        report.update_section(report.BENCHMARKS_PATH, NAME, report_section(result, args.calls))
        print(f"\nwritten to {report.BENCHMARKS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        app_name, first, calls = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        exams = json.loads(os.environ["PATH_CPU_EXAMS"])
        print(json.dumps(child(app_name, first, calls, exams)))
        sys.exit(0)
    sys.exit(f"run it as ./run bench {NAME}")
