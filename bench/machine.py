"""The machine during a benchmark: is it quiet enough to measure, and who used the CPU.

Two cores run the server, PostgreSQL, Redis and the load generator together, so a
throughput figure means little without knowing which of them was using the cores.
`CpuMeter` reads /proc (Linux) before and after a run and attributes CPU time to
groups of processes; `quiet()` says whether other work (a test suite, pgbench) is
running and what the load average is.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# What disturbs a measurement here: other engineers' test suites and benchmarks.
OTHER_WORK = ("pytest", "pgbench")
# `ps` lists a few hundred processes in milliseconds; this bounds a wedged one.
PS_TIMEOUT_S = 10
# Quiet means the 1-minute load average below this (2 cores: a quarter of one busy).
QUIET_LOAD = 0.5
# Monitoring and an idle console or two; a test suite holds dozens.
QUIET_DATABASE_SESSIONS = 5
QUIET_POLL_S = 30.0


# ---------------------------------------------------------------- quiet


@dataclass(frozen=True)
class Quiet:
    load_1m: float
    others: tuple[str, ...]  # command lines of other work running now
    # Sessions of others on the PostgreSQL server (None: not asked). A test suite
    # holds dozens, and the benchmark needs ~50 of the server's max_connections.
    database_sessions: int | None = None

    @property
    def ok(self) -> bool:
        return (
            self.load_1m < QUIET_LOAD
            and not self.others
            and (self.database_sessions or 0) <= QUIET_DATABASE_SESSIONS
        )

    def describe(self) -> str:
        others = f"; also running: {', '.join(self.others)}" if self.others else ""
        sessions = (
            f"; {self.database_sessions} other PostgreSQL sessions"
            if self.database_sessions
            else ""
        )
        return f"load average {self.load_1m:.2f}{others}{sessions}"


def load_average() -> float:
    """The 1-minute load average; NaN where /proc/loadavg is missing."""
    try:
        return float((PROC / "loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def other_work(exclude: Iterable[int] = ()) -> tuple[str, ...]:
    """Command lines of running pytest / pgbench processes not in `exclude` (and not
    this process or its ancestors, so a benchmark run from a test does not see itself)."""
    mine = set(exclude) | _ancestors(os.getpid())
    try:
        listing = subprocess.run(
            ["ps", "-eo", "pid=,args="],
            capture_output=True,
            text=True,
            check=True,
            timeout=PS_TIMEOUT_S,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    found = []
    for line in listing.splitlines():
        pid_text, _, args = line.strip().partition(" ")
        if not pid_text.isdigit() or int(pid_text) in mine:
            continue
        if any(word in args for word in OTHER_WORK) and "ps -eo" not in args:
            found.append(args[:80])
    return tuple(found)


def _ancestors(pid: int) -> set[int]:
    found = {pid}
    while pid > 1:
        try:
            fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            break
        pid = int(fields[1])
        found.add(pid)
    return found


def database_sessions(database_url: str) -> int | None:
    """Client sessions on the server other than this one; None if it cannot say."""
    import psycopg

    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "select count(*) from pg_stat_activity"
                " where backend_type = 'client backend' and pid <> pg_backend_pid()"
            ).fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else None


def quiet(exclude: Iterable[int] = (), database_url: str | None = None) -> Quiet:
    sessions = database_sessions(database_url) if database_url else None
    return Quiet(load_average(), other_work(exclude), sessions)


def wait_for_quiet(
    max_wait_s: float,
    progress: Callable[[str], None] = print,
    poll_s: float = QUIET_POLL_S,
    database_url: str | None = None,
) -> Quiet:
    """Poll until the machine (and the PostgreSQL server at `database_url`) is quiet
    or `max_wait_s` has passed; the last reading."""
    deadline = time.monotonic() + max_wait_s
    state = quiet(database_url=database_url)
    while not state.ok and time.monotonic() < deadline:
        progress(f"machine busy ({state.describe()}); waiting")
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        state = quiet(database_url=database_url)
    return state


# ---------------------------------------------------------------- CPU


def process_ticks(pid: int) -> int:
    """User + system CPU ticks of one process (0 once it is gone)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (gunicorn's master and its workers)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in (PROC / str(current) / "task").glob("*/children"):
            try:
                queue.extend(int(child) for child in task.read_text().split())
            except (OSError, ValueError):
                continue
    return found


def pids_named(*names: str) -> list[int]:
    """Processes whose command name is one of `names` (postgres, redis-server)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in names:
            found.append(int(entry.name))
    return found


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all cores since boot, from /proc/stat."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0, 0
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class CpuUse:
    seconds: float  # wall-clock time measured
    cores_busy: float  # whole machine, in cores (2.0 = both cores busy all along)
    groups: dict[str, float]  # group -> cores used on average

    @property
    def others(self) -> float:
        """Cores busy outside every group: somebody else's work on the machine."""
        return max(0.0, self.cores_busy - sum(self.groups.values()))

    def describe(self) -> str:
        parts = [f"{name} {cores:.2f}" for name, cores in self.groups.items() if cores >= 0.005]
        parts.append(f"other processes {self.others:.2f}")
        return f"{self.cores_busy:.2f} of {os.cpu_count() or 1} cores busy: " + ", ".join(parts)


class CpuMeter:
    """CPU used by groups of processes between start() and stop(). `groups` maps a
    name to a function listing the group's pids (called at both ends; a process that
    ends in between is not counted)."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self._groups = dict(groups)
        self._before: dict[str, dict[int, int]] = {}
        self._machine: tuple[int, int] = (0, 0)
        self._started = 0.0

    def _read(self) -> dict[str, dict[int, int]]:
        return {
            name: {pid: process_ticks(pid) for pid in pids()} for name, pids in self._groups.items()
        }

    def start(self) -> None:
        self._before = self._read()
        self._machine = _machine_ticks()
        self._started = time.monotonic()

    def stop(self) -> CpuUse:
        after = self._read()
        busy, total = _machine_ticks()
        seconds = max(time.monotonic() - self._started, 1e-9)
        cores = os.cpu_count() or 1
        busy_share = (busy - self._machine[0]) / max(total - self._machine[1], 1)
        groups = {}
        for name, ticks in after.items():
            before = self._before.get(name, {})
            used = sum(t - before.get(pid, 0) for pid, t in ticks.items() if pid in before)
            # A process started during the run counts from zero.
            used += sum(t for pid, t in ticks.items() if pid not in before)
            groups[name] = used / TICKS_PER_S / seconds
        return CpuUse(seconds=seconds, cores_busy=busy_share * cores, groups=groups)
