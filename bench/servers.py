"""The servers under load, as child processes with their output in a log file.

The API is `python -m local.server` (gunicorn, gthread) with LOCAL_TRUST_FORWARDED=1
so that the load generator's X-Real-IP headers stand for distinct students; the
bare-bones endpoint is `python -m bench.bare_endpoint` under the same gunicorn
settings. Both point at the benchmark's scratch database and Redis database.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import bare_endpoint
from local import server

ROOT = Path(__file__).resolve().parent.parent
# gunicorn boots in well under a second; this bounds a child that hangs while starting.
START_TIMEOUT_S = 30.0
POLL_S = 0.05
LOG_TAIL_CHARS = 2000


class ServerError(RuntimeError):
    """A server did not start; carries the tail of its log."""


@dataclass(frozen=True)
class Setup:
    """How the servers run: the same for the API and the bare endpoint."""

    database_url: str
    redis_url: str
    workers: int
    threads: int
    pool_size: int  # DB_POOL_MAX_SIZE per worker process
    # False: the servers get no REDIS_URL, so the API books through the database alone
    # (no lock, seat counters or rate limits): what the Redis round trips cost.
    redis: bool = True

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        env = {
            key: value
            for key, value in base.items()
            # The stack's own settings only: nothing of the caller's may reach the
            # functions (a developer's SUPABASE_URL would change the backend).
            if not key.startswith(("SUPABASE_", "UPSTASH_", "HUBSPOT_", "DB_", "DATABASE_"))
            and key not in ("REDIS_URL", "CRON_SECRET")
        }
        env.update(
            DATABASE_URL=self.database_url,
            DB_POOL_MAX_SIZE=str(self.pool_size),
            LOCAL_TRUST_FORWARDED="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        if self.redis:
            env["REDIS_URL"] = self.redis_url
        return env


def api_command(setup: Setup, port: int) -> list[str]:
    return server.command(server.Options(port=port, workers=setup.workers, threads=setup.threads))


def bare_command(setup: Setup, port: int) -> list[str]:
    return bare_endpoint.command(port, setup.workers, setup.threads)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def running(
    command: Sequence[str], setup: Setup, port: int, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` (a gunicorn server on `port`), yield once it listens, stop it."""
    if server.port_in_use("127.0.0.1", port):
        raise ServerError(f"port {port} is taken; choose others with --port")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=setup.environment(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ServerError(f"{' '.join(command[:3])} did not start:\n{tail(log_path)}")
                time.sleep(POLL_S)
            yield process
        finally:
            server.stop(process)


def tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""
