"""What a benchmark's backends wait for: pg_stat_activity sampled in a thread while
the load runs. Tells a lock queue (Lock:tuple) from a commit queue (LWLock:WALWrite)
from plain CPU (no wait event), which the throughput figures alone cannot."""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType

import psycopg

# Ten samples a second give about a hundred in a ten-second run, enough to rank the
# wait events; each sample is one catalogue read, negligible next to the load.
SAMPLE_INTERVAL_S = 0.1


class WaitSampler:
    """Context manager: samples, while open, the active backends of `application_name`
    in `database`, and those active in other databases. summary() then gives each wait
    event with the average number of backends waiting on it ('CPU' stands for active
    backends waiting on nothing); elsewhere() the average busy elsewhere."""

    def __init__(self, conninfo: str, database: str, application_name: str = "pgbench") -> None:
        self._conninfo = conninfo
        self._database = database
        self._application_name = application_name
        self._counts: Counter[str] = Counter()
        self._elsewhere = 0  # active backends seen in other databases, summed over samples
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None and exc is None:
            raise self._error

    def _run(self) -> None:
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                while not self._stop.wait(SAMPLE_INTERVAL_S):
                    rows = conn.execute(
                        "select datname = %(db)s,"
                        "       coalesce(wait_event_type || ':' || wait_event, 'CPU')"
                        "  from pg_stat_activity"
                        " where state = 'active' and backend_type = 'client backend'"
                        "   and pid <> pg_backend_pid()"
                        "   and (datname <> %(db)s or application_name = %(app)s)",
                        {"db": self._database, "app": self._application_name},
                    ).fetchall()
                    self._samples += 1
                    self._counts.update(event for ours, event in rows if ours)
                    self._elsewhere += sum(1 for ours, _ in rows if not ours)
        except BaseException as exc:  # surfaced by __exit__ in the caller's thread
            self._error = exc

    def elsewhere(self) -> float:
        """Average number of backends busy in the server's other databases: another
        workload sharing the server, seen at once (its transaction counts reach
        pg_stat_database only seconds later)."""
        return self._elsewhere / self._samples if self._samples else 0.0

    def summary(self) -> list[tuple[str, float]]:
        """(wait event, average backends waiting on it), most waited-on first."""
        if not self._samples:
            return []
        return [(event, n / self._samples) for event, n in self._counts.most_common()]
