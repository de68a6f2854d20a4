"""The psycopg backend holds its promises straight to PostgreSQL and through a real
transaction-mode pooler (PgBouncer, as Supavisor on port 6543 in production): the
statement timeout bounds every call, and nothing a call sets outlives it on the
server connection, which the pooler hands to other clients next."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from lib.config import Settings
from lib.db import CALL_DEADLINE_MARGIN_S, PsycopgBackend
from lib.errors import DatabaseBusy, DatabaseUnavailable
from local.pgbouncer import Pooler

TIMEOUT_MS = 300

PROBES = """
create schema if not exists hubspot_sync;
create function hubspot_sync.probe_settings() returns jsonb language sql as $$
  select jsonb_build_object('statement_timeout', current_setting('statement_timeout'))
$$;
create function hubspot_sync.probe_sleep(p_seconds float8) returns jsonb language sql as $$
  select jsonb_build_object('slept', true) from (select pg_sleep(p_seconds)) as slept
$$;
"""


@pytest.fixture(scope="module")
def probe_url(new_database: Callable[[], str]) -> str:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PROBES)
    return url


@pytest.fixture(params=["direct", "pgbouncer"])
def url(request: pytest.FixtureRequest, probe_url: str) -> str:
    if request.param == "pgbouncer":
        pooler: Pooler = request.getfixturevalue("pooler")
        return pooler.url(probe_url)
    return probe_url


def _backend(url: str, pool_size: int = 2) -> PsycopgBackend:
    return PsycopgBackend(
        Settings(
            database_url=url,
            supabase_url=None,
            supabase_service_role_key=None,
            redis_url=None,
            upstash_redis_rest_url=None,
            upstash_redis_rest_token=None,
            db_pool_max_size=pool_size,
            db_pool_timeout_s=5,
            db_statement_timeout_ms=TIMEOUT_MS,
        )
    )


@pytest.fixture
def backend(url: str) -> Iterator[PsycopgBackend]:
    instance = _backend(url)
    yield instance
    instance.close()


def test_every_call_runs_under_the_statement_timeout(backend: PsycopgBackend) -> None:
    assert backend.call("probe_settings", {}) == {"statement_timeout": f"{TIMEOUT_MS}ms"}
    assert backend.call("probe_sleep", {"p_seconds": 0.01}) == {"slept": True}
    with pytest.raises(DatabaseBusy):
        backend.call("probe_sleep", {"p_seconds": 2.0})


def test_the_timeout_does_not_outlive_the_call(backend: PsycopgBackend, url: str) -> None:
    for _ in range(5):
        backend.call("probe_settings", {})
    # Whatever server connection the pooler gives a client next holds the default.
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        for _ in range(5):
            row = conn.execute("show statement_timeout").fetchone()
            assert row == ("0",)


def test_a_call_queued_in_the_pooler_gives_up_at_its_deadline(probe_url: str) -> None:
    # PgBouncer with one server connection, held by another client's open transaction:
    # our call waits in the pooler's queue, where statement_timeout cannot reach it
    # (PgBouncer would keep it 120 s). The client-side deadline answers 503 instead.
    from local import pgbouncer

    with pgbouncer.running(probe_url, pool_size=1) as single:
        url = single.url(probe_url)
        with psycopg.connect(url, prepare_threshold=None) as holder:
            holder.execute("select 1")  # BEGIN + select: the server connection is held
            instance = _backend(url, pool_size=1)
            try:
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailable, match="in time"):
                    instance.call("probe_settings", {})
                waited = time.monotonic() - started
                # The deadline: the statement timeout plus the margin, once (no retry).
                assert TIMEOUT_MS / 1000 + CALL_DEADLINE_MARGIN_S <= waited < 5.0
                holder.rollback()
                # The cut connection was discarded; the next call gets a good one.
                assert instance.call("probe_settings", {}) == {"statement_timeout": "300ms"}
            finally:
                instance.close()
