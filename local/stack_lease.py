"""A run's lease on the embedded servers it may start: at its end the servers that
runs started are stopped, and only those.

A run (a pytest session with all its xdist workers, `./run reliability`) names the data
directories (local/stack.py) where it may start PostgreSQL or Redis, and holds a shared
lease on each for its whole length (an advisory lock on `.runs.lock` in the
directory). When a run begins and no server runs in a directory, it marks the
directory (`.run-started`): a server started there from then on is a run's. When a
run ends, for each directory:

* if no other run holds the lease, it stops the server of a marked directory (if one
  runs) and removes the mark;
* otherwise it leaves both as they are: the last run out stops the server. A run never
  stops a server under another run that is still using it.

A server that already ran, unmarked, when a run began (a developer's own, or one left
by a run before this lease existed) is never stopped, even when a torture stopped and
restarted it meanwhile. A run that was killed leaves its servers running and marked;
the next run to end stops them.

    lease = Lease([postgres(dir_a), redis(dir_b)])
    lease.begin()
    ...                     # start servers in dir_a, dir_b (any process)
    stopped = lease.end()   # ["PostgreSQL on port ... (data in ...)", ...]
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from local import stack

LEASE_FILE = ".runs.lock"
MARK_FILE = ".run-started"


@dataclass(frozen=True)
class Server:
    """An embedded server, named by its data directory."""

    name: str
    data_dir: Path
    running_port: Callable[[Path], int | None]
    stop: Callable[[Path], None]

    @property
    def mark(self) -> Path:
        return self.data_dir / MARK_FILE


def postgres(data_dir: Path) -> Server:
    return Server("PostgreSQL", data_dir.resolve(), stack.postgres_port, stack.stop_postgres)


def redis(data_dir: Path) -> Server:
    return Server("Redis", data_dir.resolve(), stack.redis_port, stack.stop_redis)


class Lease:
    """One run's lease on `servers`: begin() at the start of the run, end() at its end
    (also after a failure: that is when a started server must still be stopped)."""

    def __init__(self, servers: Sequence[Server]) -> None:
        self._servers = list(servers)
        self._held: list[tuple[Server, IO[str]]] = []

    def begin(self) -> None:
        """Take the shared lease on every directory and mark those where no server
        runs. Blocks while a run that is ending stops a server there (at most a
        server's stop timeout, local/stack.py)."""
        for server in self._servers:
            server.data_dir.mkdir(parents=True, exist_ok=True)
            handle = (server.data_dir / LEASE_FILE).open("a")
            fcntl.flock(handle, fcntl.LOCK_SH)
            self._held.append((server, handle))
            if server.running_port(server.data_dir) is None:
                server.mark.touch()

    def end(self) -> list[str]:
        """Give the lease back, stopping the marked servers no other run holds.
        Returns one line per server stopped. Raises StackError, after trying every
        directory, if a server could not be stopped (its mark is kept, so the next run
        tries again)."""
        stopped: list[str] = []
        errors: list[str] = []
        while self._held:
            server, handle = self._held.pop(0)
            with handle:
                # Shared to exclusive in two steps: of two runs ending at once, one
                # then always gets it (converting in place could fail them both).
                fcntl.flock(handle, fcntl.LOCK_UN)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another run still uses the server; the last one out stops it
                if not server.mark.exists():
                    continue
                port = server.running_port(server.data_dir)
                try:
                    if port is not None:
                        server.stop(server.data_dir)
                        stopped.append(f"{server.name} on port {port} (data in {server.data_dir})")
                except stack.StackError as exc:
                    errors.append(str(exc))
                    continue
                server.mark.unlink(missing_ok=True)
        if errors:
            raise stack.StackError("\n".join(errors))
        return stopped
