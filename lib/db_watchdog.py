"""A deadline for database calls that the server cannot enforce.

`statement_timeout` bounds a statement once PostgreSQL runs it. Through a
transaction-mode pooler (Supavisor in production, PgBouncer in the tests) a call can
wait before that: queued in the pooler while it has no server connection to give, for
instance while the database restarts. PgBouncer keeps such a query up to its
`query_wait_timeout` (120 s by default), which is longer than a function's 30 s: the
request would die as Vercel's 504 with a pooled connection pinned (found by the
torture through PgBouncer, tests/reliability/test_torture.py).

One daemon thread per backend watches the calls in flight. A call still running at its
deadline has its socket shut down: the blocked read returns at once, psycopg raises
OperationalError, the pool discards the connection, and the call answers 503. The
pooler drops the queued query when its client goes away; a statement already running
on the server is bounded by statement_timeout, which fires first (the deadline allows a
margin beyond it). Written by hand: psycopg has no client-side query timeout, and a
timer thread per call would cost more than the call's bookkeeping here (a dict entry).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Protocol


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


class Expired:
    """Set when the watchdog cut the call short."""

    def __init__(self) -> None:
        self.fired = False


class Watchdog:
    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Condition()
        self._due: dict[int, tuple[float, _HasFileno, Expired]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf  # when the thread next looks by itself

    @contextlib.contextmanager
    def watch(self, conn: _HasFileno, seconds: float) -> Iterator[Expired]:
        """Bound the block to `seconds`: past them, conn's socket is shut down."""
        expired = Expired()
        key = next(self._ids)
        with self._lock:
            deadline = time.monotonic() + seconds
            self._due[key] = (deadline, conn, expired)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-watchdog", daemon=True
                )
                self._thread.start()
            if deadline < self._wakes_at:
                # Only a new earliest deadline needs the thread now; otherwise it wakes
                # at the one it waits for and looks again. Calls of one backend share
                # one timeout, so this spares a thread switch on almost every call.
                self._lock.notify()
        try:
            yield expired
        finally:
            with self._lock:
                self._due.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._due:
                    self._wakes_at = math.inf
                    self._lock.wait()
                now = time.monotonic()
                key, (deadline, conn, expired) = min(self._due.items(), key=lambda i: i[1][0])
                if deadline > now:
                    self._wakes_at = deadline
                    self._lock.wait(deadline - now)
                    continue
                del self._due[key]
                expired.fired = True
            _shut_down(conn)


def _shut_down(conn: _HasFileno) -> None:
    """Shut the connection's socket down for both directions without closing the
    descriptor, which the connection still owns (closing it here could close a
    descriptor number another thread has since been given)."""
    # The socket object owns the duplicate and closes it; shutdown acts on the
    # connection itself, which both descriptors name.
    with (
        contextlib.suppress(OSError, ValueError),
        socket.socket(fileno=os.dup(conn.fileno())) as duplicate,
    ):
        duplicate.shutdown(socket.SHUT_RDWR)
