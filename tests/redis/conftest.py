"""Fixtures for the Redis layer: both clients against one real Redis.

`client` is parametrised over the two implementations, so every test using it runs
twice: redis-py over TCP against `redis_url`, and upstash-redis against the Upstash
stand-in in front of the same Redis. Each test works under a key prefix of its own
and deletes only keys under it: the Redis may be shared with other runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import redis as redis_py

from lib.redis_client import RedisClient, RestRedis, TcpRedis
from local.standins.upstash import StandIn, serve

TOKEN = "tests-only-upstash-token"
KINDS = ("tcp", "rest")
# Functional tests run with generous timeouts: the stand-in is a Python HTTP server
# and a loaded CI machine can take longer than production's 250/500 ms to answer 40
# threads. test_clients.py checks the production defaults on their own.
TEST_TIMEOUT_S = 5.0


@pytest.fixture(scope="session")
def standin(redis_url: str) -> Iterator[StandIn]:
    with serve(redis_url, TOKEN) as running:
        yield running


@pytest.fixture(scope="session")
def admin(redis_url: str) -> Iterator[redis_py.Redis]:
    """A plain redis-py connection for looking behind the clients (TTLs, raw values)."""
    connection = redis_py.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def redis_address(redis_url: str) -> tuple[str, int]:
    parts = urlsplit(redis_url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


@pytest.fixture
def prefix(admin: redis_py.Redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"test:redis:{uuid.uuid4().hex[:12]}:"
    yield value
    keys = list(admin.scan_iter(match=value + "*", count=1000))
    if keys:
        admin.delete(*keys)


@pytest.fixture
def make_client(redis_url: str, standin: StandIn) -> Iterator[Callable[[str], RedisClient]]:
    """Factory: a fresh client of the given kind ("tcp" or "rest"); closed afterwards."""
    made: list[RedisClient] = []

    def make(kind: str) -> RedisClient:
        client: RedisClient
        if kind == "tcp":
            client = TcpRedis(redis_url, timeout_s=TEST_TIMEOUT_S, connect_timeout_s=TEST_TIMEOUT_S)
        else:
            client = RestRedis(
                standin.url, TOKEN, timeout_s=TEST_TIMEOUT_S, connect_timeout_s=TEST_TIMEOUT_S
            )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(params=KINDS)
def client(
    request: pytest.FixtureRequest, make_client: Callable[[str], RedisClient]
) -> RedisClient:
    kind: str = request.param
    return make_client(kind)


@pytest.fixture
def clients(make_client: Callable[[str], RedisClient]) -> dict[str, RedisClient]:
    """One client of each kind, as two function instances would hold them."""
    return {kind: make_client(kind) for kind in KINDS}
