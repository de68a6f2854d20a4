"""Fixtures shared by the whole suite: real PostgreSQL and Redis, never mocks.

Where they come from:
* TEST_DATABASE_URL / TEST_REDIS_URL when set (CI points them at the PostgreSQL 15 and
  Redis 7 this machine runs);
* otherwise the embedded stack (local/stack.py) in .local/test-*, on ports apart from
  `./run dev`'s, started by the first session that needs it and stopped at that
  session's end (tests/suite_servers.py, which also stops the reliability part's
  servers).

Each test session (each xdist worker) works in its own freshly migrated database,
dropped at the end, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from lib import migrations
from lib.config import Settings
from lib.db import PsycopgBackend
from local.pgbouncer import Pooler
from tests.helpers import Db

# The log scan (tests/security/logscan.py): every log record, every captured output
# and every API error body of the session is scanned at its end for the secrets the
# suite used, tokens and full email addresses; a finding fails the run. Its hooks are
# imported here so that they watch the whole suite.
from tests.security.logscan import (  # noqa: F401 - pytest finds hooks by name
    pytest_runtest_call,
    pytest_runtest_logreport,
    pytest_runtest_setup,
    pytest_runtest_teardown,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

# Stops the embedded servers the session started, at its end.
pytest_plugins = ("tests.suite_servers",)

TEST_PG_PORT = 15433  # apart from ./run dev (15432), below the ephemeral port range
TEST_REDIS_PORT = 16380


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """A URL to a database on a server where we may CREATE DATABASE."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from local.stack import ensure_postgres
    from tests.suite_servers import TEST_POSTGRES_DIR

    # Not durable: a crash loses a throwaway test cluster, and fsync-free is faster.
    return ensure_postgres(TEST_POSTGRES_DIR, TEST_PG_PORT, durable=False)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    from local.stack import ensure_redis
    from tests.suite_servers import TEST_REDIS_DIR

    return ensure_redis(TEST_REDIS_DIR, TEST_REDIS_PORT, durable=False)


def _with_database(admin_url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


@pytest.fixture(scope="session")
def new_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Factory: an empty database of its own; all are dropped at session end."""
    created: list[str] = []

    def make() -> str:
        name = f"booking_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        created.append(name)
        return _with_database(pg_admin_url, name)

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def pooler(pg_admin_url: str) -> Iterator[Pooler]:
    """A real transaction-mode pooler (Debian's pgbouncer) in front of the test server,
    as Supabase's Supavisor (port 6543) is in front of production (local/pgbouncer.py).
    `pooler.url(database_url)` reaches the same database through it."""
    from local import pgbouncer

    with pgbouncer.running(pg_admin_url) as running:
        yield running


@pytest.fixture(scope="session")
def database_url(new_database: Callable[[], str]) -> str:
    """This session's database, fully migrated."""
    url = new_database()
    migrations.up(url)
    return url


@pytest.fixture(scope="session")
def backend(database_url: str) -> Iterator[PsycopgBackend]:
    instance = PsycopgBackend(
        Settings(
            database_url=database_url,
            supabase_url=None,
            supabase_service_role_key=None,
            redis_url=None,
            upstash_redis_rest_url=None,
            upstash_redis_rest_token=None,
            db_pool_max_size=32,
            db_pool_timeout_s=10,
            db_statement_timeout_ms=20_000,
        ),
        # All connections open before any test: a race test must race inside
        # PostgreSQL, not in the pool's connection setup.
        min_size=32,
    )
    instance.warm_up()
    yield instance
    instance.close()


@pytest.fixture
def db(database_url: str, backend: PsycopgBackend) -> Iterator[Db]:
    """The migrated database, emptied before the test, with row factories."""
    helper = Db(database_url, backend)
    helper.truncate()
    yield helper
    helper.close()
