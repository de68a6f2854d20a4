"""CPU per Redis call on the booking path: lib/redis_client.TcpRedis against redis-py's
own client and a bare socket.

A booking makes two Redis calls (admit_booking, finish_booking: one EVALSHA each).
This times the finish script, run back to back on one thread, three ways:

- `redis.Redis.evalsha`: redis-py's client and connection pool;
- `TcpRedis.eval`: what the application uses (redis-py's connections, sent directly);
- bare socket: the same packed bytes with `sendall` + one `recv`, the floor any
  Python client pays (the loopback's kernel work, which shows up as process CPU).

Figures are thread CPU (`time.thread_time`, user + system) and wall time per call,
the median of `--rounds` rounds of `--calls` calls. It writes nothing but keys of its
own (a lock and a seat counter under `mockexam:bench:`, deleted at the end).

    ./run bench redis-calls [--redis-url redis://127.0.0.1:6379/12]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from collections.abc import Callable
from urllib.parse import urlsplit

NAME = "redis-calls"
# Apart from the databases the other benchmarks and the test suite empty (13, 14).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
KEYS = ("mockexam:bench:lock", "mockexam:bench:seats")


def _per_call(call: Callable[[], object], calls: int, rounds: int) -> tuple[float, float]:
    """Median (CPU us, wall us) per call over `rounds` rounds, after a warm-up."""
    for _ in range(min(calls, 200)):
        call()
    cpu, wall = [], []
    for _ in range(rounds):
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        for _ in range(calls):
            call()
        cpu.append((time.thread_time() - cpu_start) / calls * 1e6)
        wall.append((time.perf_counter() - wall_start) / calls * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def _resp(words: list[str]) -> bytes:
    return (
        f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
    ).encode()


def measure(redis_url: str, calls: int, rounds: int) -> dict[str, tuple[float, float]]:
    import redis

    from lib.redis_client import TcpRedis
    from lib.redis_scripts import FINISH_BOOKING

    args = ["bench-token", "5:3:10", "60"]
    words = ["EVALSHA", FINISH_BOOKING.sha, str(len(KEYS)), *KEYS, *args]
    ours = TcpRedis(redis_url)
    theirs = redis.Redis.from_url(redis_url, protocol=2, decode_responses=True, driver_info=None)
    parts = urlsplit(redis_url)
    bare = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
    bare.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bare.settimeout(1.0)
    try:
        ours.eval(FINISH_BOOKING, KEYS, args)  # loads the script (EVAL on NOSCRIPT)
        database = parts.path.lstrip("/") or "0"
        bare.sendall(_resp(["SELECT", database]))
        bare.recv(64)
        packed = _resp(words)

        def on_socket() -> None:
            bare.sendall(packed)
            reply = bare.recv(65536)
            if not reply.startswith(b"*2"):
                raise RuntimeError(f"unexpected reply {reply[:40]!r}")

        return {
            "redis.Redis.evalsha": _per_call(
                lambda: theirs.evalsha(FINISH_BOOKING.sha, len(KEYS), *KEYS, *args), calls, rounds
            ),
            "TcpRedis.eval (the application's)": _per_call(
                lambda: ours.eval(FINISH_BOOKING, KEYS, args), calls, rounds
            ),
            "bare socket (floor)": _per_call(on_socket, calls, rounds),
        }
    finally:
        ours.delete(*KEYS)
        ours.close()
        theirs.close()
        bare.close()


def render(figures: dict[str, tuple[float, float]]) -> str:
    lines = ["| client | CPU us per call | wall us per call |", "|---|---:|---:|"]
    lines += [f"| {name} | {cpu:.1f} | {wall:.1f} |" for name, (cpu, wall) in figures.items()]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="a Redis to call ($BENCH_REDIS_URL, else %(default)s)",
    )
    parser.add_argument("--calls", type=int, default=5000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)


def main(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.rounds < 1:
        raise SystemExit("--calls and --rounds must be at least 1")
    print(render(measure(args.redis_url, args.calls, args.rounds)))
    return 0
