"""Whether a benchmark had the machine to itself: the CPU time that processes other than
the benchmark's spent while it ran (Linux /proc; a server on another machine cannot
be watched, and then nothing is claimed).

The benchmark's own processes are this one, its children (pgbench, reaped before the
window closes) and the PostgreSQL server: the postmaster, its live children, and the
children it reaped meanwhile (their time lands in its cutime/cstime). Everything else
busy in /proc/stat is somebody else: a test run, a browser, a busy loop.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

PROC = Path("/proc")
# What still counts as having the machine to itself. A handful of transactions
# elsewhere (a monitoring query, autovacuum) is noise; a test suite on the same server,
# or any process taking CPU, is not: such a run is repeated after a pause, and
# reported as unsound if the machine stays busy.
OTHER_TRANSACTIONS_TOLERATED = 100
# Backends busy in other databases, on average (bench/waits.py samples them): a test
# suite's queries keep one busy most of the time; an occasional query stays below.
OTHER_ACTIVE_BACKENDS_TOLERATED = 0.05
# Idle, this machine's own background (kernel threads, its agent, RabbitMQ, Redis)
# keeps a few hundredths of a CPU busy; a test run or a browser takes whole CPUs.
OTHER_CPU_TOLERATED_CORES = 0.1

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class _Snapshot:
    at: float  # monotonic seconds
    busy_s: float  # all CPUs, user + nice + system + irq + softirq
    own_s: float  # this process and its reaped children
    postmaster_s: float  # the postmaster, with the children it reaped
    server_children_s: dict[int, float]  # live children of the postmaster


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from `state` on (comm may contain spaces and ')')."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _cpu_s(fields: list[str], with_reaped_children: bool) -> float:
    # After the comm: state=0, ppid=1, ..., utime=11, stime=12, cutime=13, cstime=14.
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS_PER_S


def postmaster_of(backend_pid: int) -> int | None:
    """The postmaster of a backend running on this machine, else None."""
    fields = _stat_fields(backend_pid)
    if fields is None:
        return None
    try:
        comm = (PROC / str(backend_pid) / "comm").read_text().strip()
    except OSError:
        return None
    return int(fields[1]) if comm == "postgres" else None


def _snapshot(postmaster: int) -> _Snapshot | None:
    try:
        cpu = (PROC / "stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...
    busy_ticks = sum(int(cpu[i]) for i in (1, 2, 3, 6, 7))
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_s = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    master = _stat_fields(postmaster)
    if master is None:
        return None
    children: dict[int, float] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == postmaster:
                children[int(entry.name)] = _cpu_s(fields, with_reaped_children=False)
    return _Snapshot(
        at=time.monotonic(),
        busy_s=busy_ticks / TICKS_PER_S,
        own_s=own_s,
        postmaster_s=_cpu_s(master, with_reaped_children=True),
        server_children_s=children,
    )


class CpuWitness:
    """Context manager around a measured window. others_cores() is then the average
    number of CPUs other processes kept busy, or None when it cannot be known."""

    def __init__(self, postmaster: int | None) -> None:
        self._postmaster = postmaster
        self._start: _Snapshot | None = None
        self._end: _Snapshot | None = None

    def __enter__(self) -> CpuWitness:
        if self._postmaster is not None:
            self._start = _snapshot(self._postmaster)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._postmaster is not None:
            self._end = _snapshot(self._postmaster)

    def ours_cores(self) -> float | None:
        """The average number of CPUs the benchmark and the server kept busy."""
        start, end = self._start, self._end
        if start is None or end is None or end.at <= start.at:
            return None
        # A child that lived through the window counts its share; one born in it, all
        # of its time. One that ended is in the postmaster's reaped time in full,
        # including time before the window: that errs towards "quiet", never "busy".
        server = end.postmaster_s - start.postmaster_s
        for pid, cpu_s in end.server_children_s.items():
            server += cpu_s - start.server_children_s.get(pid, 0.0)
        return (server + end.own_s - start.own_s) / (end.at - start.at)

    def others_cores(self) -> float | None:
        start, end, ours = self._start, self._end, self.ours_cores()
        if start is None or end is None or ours is None:
            return None
        busy = (end.busy_s - start.busy_s) / (end.at - start.at)
        return max(0.0, busy - ours)
