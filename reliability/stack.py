"""The services a reliability run works against, and the API server over them.

PostgreSQL and Redis are real. Where they come from:
* `restartable=True` (the torture, which stops and restarts them): the embedded
  PostgreSQL and Redis of local/stack.py, in .local/reliability-* (LOCAL_STACK_DIR
  moves .local), on ports of their own, so a restart never touches anything else on
  the machine;
* otherwise RELIABILITY_DATABASE_URL / RELIABILITY_REDIS_URL, then TEST_DATABASE_URL /
  TEST_REDIS_URL (CI's PostgreSQL 15 and Redis 7), then the same embedded ones.

Every run works in a database of its own, created and migrated here and dropped
afterwards, and in a Redis logical database it flushes first (the embedded Redis is
the suite's alone; on a shared server `redis_db` picks a number nobody else uses).

The embedded servers are started on first use and left to the run that holds their
lease (`embedded_servers()`, local/stack_lease.py): the test session, or `./run
reliability`, stops them at its end if a run started them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO

import psycopg

from lib import migrations
from local import server, stack_lease
from local import stack as local_stack

POSTGRES_DIR = local_stack.LOCAL_DIR / "reliability-postgres"
REDIS_DIR = local_stack.LOCAL_DIR / "reliability-redis"
# Apart from ./run dev (15432/16379) and the test suite's embedded ones (15433/16380).
POSTGRES_PORT = 15434
REDIS_PORT = 16381
# The Redis logical database reliability runs use on a shared server: the test suite
# uses 0.
REDIS_DB = 9


@dataclass(frozen=True)
class Services:
    """Where PostgreSQL (a URL on which CREATE DATABASE works) and Redis are, and
    whether this run may stop and start them (only the embedded ones, on the ports
    they were found or started on)."""

    pg_admin_url: str
    redis_url: str
    restartable: bool
    pg_port: int = POSTGRES_PORT
    redis_port: int = REDIS_PORT

    def stop_postgres(self) -> None:
        """Fast shutdown: every session is cut, committed data is kept."""
        self._require_restartable()
        local_stack.stop_postgres(POSTGRES_DIR)

    def start_postgres(self) -> None:
        self._require_restartable()
        local_stack.ensure_postgres(POSTGRES_DIR, self.pg_port, durable=False)

    def stop_redis(self) -> None:
        self._require_restartable()
        local_stack.stop_redis(REDIS_DIR)

    def start_redis(self) -> None:
        """Start Redis again; it comes back empty (no persistence), as a restarted
        Upstash replica or a flushed cache would."""
        self._require_restartable()
        local_stack.ensure_redis(REDIS_DIR, self.redis_port, durable=False)

    def _require_restartable(self) -> None:
        if not self.restartable:
            raise RuntimeError("only the embedded PostgreSQL and Redis may be restarted")


def embedded_servers() -> list[stack_lease.Server]:
    """The servers services() may start, for the lease of the run around it."""
    return [stack_lease.postgres(POSTGRES_DIR), stack_lease.redis(REDIS_DIR)]


def services(*, restartable: bool = False) -> Services:
    if not restartable:
        pg = os.environ.get("RELIABILITY_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
        redis = os.environ.get("RELIABILITY_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
        if pg and redis:
            return Services(pg, _with_db(redis, REDIS_DB), restartable=False)
    pg_port = _port(local_stack.postgres_port(POSTGRES_DIR), POSTGRES_PORT)
    redis_port = _port(local_stack.redis_port(REDIS_DIR), REDIS_PORT)
    pg_url = local_stack.ensure_postgres(POSTGRES_DIR, pg_port, durable=False)
    # Redis without persistence: a restart loses every lock and counter, the worst case.
    redis_url = local_stack.ensure_redis(REDIS_DIR, redis_port, durable=False)
    return Services(pg_url, redis_url, restartable=True, pg_port=pg_port, redis_port=redis_port)


def _port(running: int | None, preferred: int) -> int:
    """The port this checkout's server already runs on, else the preferred one, else
    (another checkout's server has it) any free port."""
    if running is not None:
        return running
    return free_port() if server.port_in_use("127.0.0.1", preferred) else preferred


def _with_db(redis_url: str, number: int) -> str:
    base = redis_url.split("?", 1)[0]
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{number}"


@contextlib.contextmanager
def fresh_database(pg_admin_url: str) -> Iterator[str]:
    """A new database, fully migrated; dropped (connections and all) afterwards."""
    name = f"reliability_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname=name)
    try:
        migrations.up(url)
        yield url
    finally:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(pg_admin_url, autocommit=True) as conn,
        ):
            conn.execute(f'drop database if exists "{name}" with (force)')


def flush_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


free_port = local_stack.free_port


@contextlib.contextmanager
def api_server(
    env: Mapping[str, str],
    *,
    workers: int = 2,
    threads: int = 8,
    output: IO[bytes] | None = None,
) -> Iterator[str]:
    """The local server (Vercel's routing, gunicorn gthread) as a child process with
    exactly `env` added to a minimal environment; yields its base URL. Client
    addresses come from X-Real-IP (LOCAL_TRUST_FORWARDED=1), so a run can act as many
    clients, as a campus of students does."""
    options = server.Options(port=free_port(), workers=workers, threads=threads)
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LOCAL_TRUST_FORWARDED": "1",
        **env,
    }
    with server.running(options, child_env, output):
        yield f"http://{options.host}:{options.port}"
