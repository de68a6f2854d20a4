"""Fixtures for the Supabase (PostgREST) path: the PostgREST stand-in in front of this
session's database, and lib.db.SupabaseBackend talking to it through supabase-py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from lib.config import Settings
from lib.db import SupabaseBackend
from local.standins.postgrest import StandIn, make_api_key, serve

# The project's JWT secret, as Supabase would hold it; the API keys are signed with it.
JWT_SECRET = "tests-only-jwt-secret-0123456789abcdef"
# Upper bound for one call as the app configures it; the HTTP timeout derives from it.
STATEMENT_TIMEOUT_MS = 8000


def supabase_settings(url: str, key: str) -> Settings:
    return Settings(
        database_url=None,
        supabase_url=url,
        supabase_service_role_key=key,
        redis_url=None,
        upstash_redis_rest_url=None,
        upstash_redis_rest_token=None,
        db_pool_max_size=4,
        db_pool_timeout_s=5,
        db_statement_timeout_ms=STATEMENT_TIMEOUT_MS,
    )


@pytest.fixture(scope="session")
def service_key() -> str:
    return make_api_key(JWT_SECRET, "service_role")


@pytest.fixture(scope="session")
def anon_key() -> str:
    return make_api_key(JWT_SECRET, "anon")


@pytest.fixture(scope="session")
def standin(database_url: str) -> Iterator[StandIn]:
    """The stand-in in front of this session's migrated database."""
    with serve(database_url, JWT_SECRET) as running:
        yield running


@pytest.fixture
def supabase_for(standin: StandIn) -> Iterator[Callable[[str], SupabaseBackend]]:
    """Factory: a SupabaseBackend using the given API key; closed after the test."""
    made: list[SupabaseBackend] = []

    def make(key: str) -> SupabaseBackend:
        backend = SupabaseBackend(supabase_settings(standin.url, key))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def supabase(supabase_for: Callable[[str], SupabaseBackend], service_key: str) -> SupabaseBackend:
    """The backend as production configures it: the service-role key."""
    return supabase_for(service_key)
