"""The two clients behind lib/redis_client.py: same values, same failures.

Failures are provoked for real: a closed port, a stopped stand-in, a server that
accepts and never answers, a proxy that goes away and comes back. The timeout tests
use the production defaults, since those are what a request pays.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis as redis_py

from lib import redis_client
from lib.config import ConfigError, Settings
from lib.redis_client import (
    COOLDOWN_S,
    REST_TIMEOUT_S,
    TCP_TIMEOUT_S,
    CountingRedis,
    RedisClient,
    RedisUnavailable,
    RestRedis,
    Script,
    TcpRedis,
    from_settings,
    use_redis,
)
from local.standins.upstash import StandIn, serve
from tests.redis.conftest import KINDS, TOKEN
from tests.redis.faults import Blackhole, TcpProxy, closed_port

# Bounds for "fails fast": the timeout itself plus scheduling slack on a busy machine.
SLACK_S = 0.5
# A cool-down short enough to wait out in a test.
TEST_COOLDOWN_S = 0.3

# ------------------------------------------------------------------ same values


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("return 42", 42),
        ("return -7", -7),
        ("return 'text'", "text"),
        ("return 'OK'", "OK"),
        ("return ''", ""),
        ("return 'é ✓'", "é ✓"),
        ("return nil", None),
        ("return false", None),
        ("return true", 1),
        ("return 3.99", 3),  # Lua numbers become integers, truncated
        ("return {}", []),
        ("return {1, 'a', {2, 'b'}}", [1, "a", [2, "b"]]),
        ("return {1, nil, 3}", [1]),  # a Lua array ends at its first nil
        ("return {1, false, 3}", [1, None, 3]),
        ("return redis.status_reply('PONG')", "PONG"),
        ("return {KEYS[1], ARGV[1], ARGV[2]}", ["k", "7", "x"]),
    ],
)
def test_eval_answers_the_same_in_both(
    clients: dict[str, RedisClient], source: str, expected: object
) -> None:
    script = Script("probe", source)
    answers = {kind: c.eval(script, ["k"], [7, "x"]) for kind, c in clients.items()}
    assert answers == {kind: expected for kind in KINDS}


def test_commands_answer_the_same_in_both(clients: dict[str, RedisClient], prefix: str) -> None:
    for kind, c in clients.items():
        key, missing = f"{prefix}{kind}:k", f"{prefix}{kind}:missing"
        assert c.set(key, "v1", ex=30) is True
        assert c.set(key, "v2", ex=30, nx=True) is False
        assert c.get(key) == "v1"
        assert c.get(missing) is None
        assert c.mget([key, missing, key]) == ["v1", None, "v1"]
        assert c.mget([]) == []
        assert c.delete(key, missing) == 1
        assert c.delete() == 0
        assert c.set(key, "v3", ex=30, nx=True) is True
        assert c.get(key) == "v3"
        assert c.ping() is True


def test_set_requires_a_ttl(client: RedisClient, prefix: str) -> None:
    for ttl in (0, -1):
        with pytest.raises(ValueError, match="TTL"):
            client.set(prefix + "k", "v", ex=ttl)


def test_script_arguments_are_str_or_int(client: RedisClient) -> None:
    with pytest.raises(TypeError):
        client.eval(Script("x", "return 1"), [], [True])


def test_an_error_reply_is_unavailable_and_leaves_the_breaker_closed(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    admin.set(prefix + "text", "not a number", ex=30)
    incr = Script("incr", "return redis.call('INCR', KEYS[1])")
    with pytest.raises(RedisUnavailable) as caught:
        client.eval(incr, [prefix + "text"], [])
    assert caught.value.kind == "reply"
    assert "not an integer" in caught.value.detail
    assert isinstance(client, TcpRedis | RestRedis)
    assert not client.breaker.is_open
    assert client.get(prefix + "text") == "not a number"


def test_a_reply_that_is_not_utf8_is_unavailable(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    admin.set(prefix + "bin", b"\xff\xfe", ex=30)
    with pytest.raises(RedisUnavailable) as caught:
        client.get(prefix + "bin")
    assert caught.value.kind == "reply"


def test_noscript_falls_back_to_eval_and_caches_the_script(
    client: RedisClient, admin: redis_py.Redis
) -> None:
    # A script this server has never seen gets NOSCRIPT, exactly as every script
    # does after a restart, a failover or SCRIPT FLUSH; a unique one tests that path
    # without flushing the cache of a Redis other runs share.
    script = Script("fresh", f"return '{uuid.uuid4().hex}'")
    assert admin.script_exists(script.sha) == [False]
    counting = CountingRedis(client)
    first = counting.eval(script, [], [])
    assert admin.script_exists(script.sha) == [True]
    assert counting.eval(script, [], []) == first
    assert counting.calls == {"eval": 2}


def test_clients_are_safe_to_share_between_threads(
    clients: dict[str, RedisClient], prefix: str, admin: redis_py.Redis
) -> None:
    key = prefix + "counter"
    incr = Script(
        "incr_ttl",
        "local n = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 60) return n",
    )
    seen: list[int] = []
    lock = threading.Lock()

    def work(c: RedisClient) -> None:
        for _ in range(25):
            value = c.eval(incr, [key], [])
            assert isinstance(value, int)
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients.values() for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 2 * 8 * 25 + 1))


# ------------------------------------------------------------------ failing fast


def make_down(kind: str, url_port: int) -> RedisClient:
    if kind == "tcp":
        return TcpRedis(f"redis://127.0.0.1:{url_port}/0", cooldown_s=TEST_COOLDOWN_S)
    return RestRedis(f"http://127.0.0.1:{url_port}", TOKEN, cooldown_s=TEST_COOLDOWN_S)


def timed(call: Callable[[], object]) -> tuple[RedisUnavailable, float]:
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as caught:
        call()
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("kind", KINDS)
def test_closed_port_is_unavailable_at_once(kind: str) -> None:
    c = make_down(kind, closed_port())
    try:
        error, elapsed = timed(lambda: c.get("k"))
        assert error.kind == "down"
        assert elapsed < SLACK_S
        assert c.ping() is False  # health checks answer, never raise
    finally:
        c.close()


def test_stopped_standin_is_unavailable_at_once(redis_url: str) -> None:
    with serve(redis_url, TOKEN) as standin:
        c = RestRedis(standin.url, TOKEN)
        assert c.ping() is True  # a kept-alive connection now exists
    try:
        error, elapsed = timed(lambda: c.get("k"))
        assert error.kind == "down"
        assert elapsed < SLACK_S
    finally:
        c.close()


@pytest.mark.parametrize(("kind", "timeout_s"), [("tcp", TCP_TIMEOUT_S), ("rest", REST_TIMEOUT_S)])
def test_a_hung_server_times_out_with_the_production_timeout(kind: str, timeout_s: float) -> None:
    with Blackhole() as hung:
        c = make_down(kind, hung.port)
        try:
            script = Script("x", "return 1")
            error, elapsed = timed(lambda: c.eval(script, [], []))
            assert error.kind == "timeout"
            assert timeout_s * 0.8 <= elapsed < timeout_s + SLACK_S
        finally:
            c.close()


@pytest.mark.parametrize("kind", KINDS)
def test_breaker_skips_redis_during_the_cooldown(kind: str) -> None:
    with Blackhole() as hung:
        c = make_down(kind, hung.port)
        try:
            assert timed(lambda: c.get("k"))[0].kind == "timeout"
            connections = hung.accepted
            for _ in range(20):
                error, elapsed = timed(lambda: c.get("k"))
                assert error.kind == "breaker_open"
                assert elapsed < 0.05
            assert c.ping() is False
            assert hung.accepted == connections  # nothing touched the network
        finally:
            c.close()


@pytest.mark.parametrize("kind", KINDS)
def test_one_probe_per_cooldown_under_concurrency(kind: str) -> None:
    with Blackhole() as hung:
        c = make_down(kind, hung.port)
        try:
            timed(lambda: c.get("k"))
            before = hung.accepted
            time.sleep(TEST_COOLDOWN_S + 0.05)
            kinds: list[str] = []
            barrier = threading.Barrier(16)

            def call() -> None:
                barrier.wait()
                try:
                    c.get("k")
                except RedisUnavailable as exc:
                    kinds.append(exc.kind)

            threads = [threading.Thread(target=call) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(kinds) == ["breaker_open"] * 15 + ["timeout"]
            assert hung.accepted - before <= 1
        finally:
            c.close()


@pytest.mark.parametrize("kind", KINDS)
def test_breaker_recovers_when_redis_comes_back(
    kind: str, redis_address: tuple[str, int], standin: StandIn
) -> None:
    target = redis_address if kind == "tcp" else ("127.0.0.1", standin.port)
    proxy = TcpProxy(target)
    port = proxy.port
    c = make_down(kind, port)
    try:
        assert c.ping() is True
        proxy.stop()  # Redis goes away
        error, _ = timed(lambda: c.get("k"))
        assert error.kind == "down"
        assert timed(lambda: c.get("k"))[0].kind == "breaker_open"
        proxy = TcpProxy(target, port=port)  # and comes back on the same port
        try:
            assert timed(lambda: c.get("k"))[0].kind == "breaker_open"  # still cooling
            time.sleep(TEST_COOLDOWN_S + 0.05)
            assert c.get("k") is None  # the probe succeeds and closes the breaker
            assert isinstance(c, TcpRedis | RestRedis)
            assert not c.breaker.is_open
            assert c.ping() is True
        finally:
            proxy.stop()
    finally:
        proxy.stop()
        c.close()


def test_production_cooldown_is_a_few_seconds() -> None:
    # Long enough that an outage costs one timeout per cool-down, short enough that
    # a blip does not keep the fast path off for long.
    assert 1.0 <= COOLDOWN_S <= 30.0
    assert TCP_TIMEOUT_S <= 0.5 and REST_TIMEOUT_S <= 1.0


def test_wrong_token_is_unavailable(standin: StandIn) -> None:
    c = RestRedis(standin.url, "not-the-token")
    try:
        error, _ = timed(lambda: c.get("k"))
        assert error.kind == "reply"
        assert "Unauthorized" in error.detail
    finally:
        c.close()


# ------------------------------------------------------------------ configuration


def settings_with(**values: str | None) -> Settings:
    base: dict[str, object] = {
        "database_url": None,
        "supabase_url": None,
        "supabase_service_role_key": None,
        "redis_url": None,
        "upstash_redis_rest_url": None,
        "upstash_redis_rest_token": None,
        "db_pool_max_size": 4,
        "db_pool_timeout_s": 5,
        "db_statement_timeout_ms": 8000,
    }
    base.update(values)
    return Settings(**base)  # type: ignore[arg-type]


def test_configuration_picks_the_client() -> None:
    assert from_settings(settings_with()) is None
    tcp = from_settings(settings_with(redis_url="redis://127.0.0.1:1/0"))
    rest = from_settings(
        settings_with(upstash_redis_rest_url="https://x.upstash.io", upstash_redis_rest_token="t")
    )
    both = from_settings(
        settings_with(
            redis_url="redis://127.0.0.1:1/0",
            upstash_redis_rest_url="https://x.upstash.io",
            upstash_redis_rest_token="t",
        )
    )
    try:
        assert isinstance(tcp, TcpRedis)
        assert isinstance(rest, RestRedis)
        assert isinstance(both, TcpRedis)  # REDIS_URL wins
    finally:
        for c in (tcp, rest, both):
            assert c is not None
            c.close()


def test_half_a_configuration_fails_loudly() -> None:
    with pytest.raises(ConfigError, match="UPSTASH_REDIS_REST_TOKEN"):
        from_settings(settings_with(upstash_redis_rest_url="https://x.upstash.io"))
    with pytest.raises(ConfigError, match="UPSTASH_REDIS_REST_URL"):
        from_settings(settings_with(upstash_redis_rest_token="t"))
    with pytest.raises(ConfigError, match="REDIS_URL"):
        from_settings(settings_with(redis_url="http://not-redis"))
    with pytest.raises(ConfigError, match="UPSTASH_REDIS_REST_URL"):
        from_settings(
            settings_with(upstash_redis_rest_url="x.upstash.io", upstash_redis_rest_token="t")
        )


@pytest.fixture
def restore_client() -> Iterator[None]:
    previous = use_redis(None)
    resolved = redis_client._resolved
    yield
    use_redis(previous)
    redis_client._resolved = resolved


@pytest.mark.usefixtures("restore_client")
def test_accessor_builds_one_client_for_all_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[RedisClient] = []

    def slow_build(config: Settings) -> RedisClient:
        time.sleep(0.05)  # wide open for a race
        made = CountingRedis(TcpRedis("redis://127.0.0.1:1/0"))
        built.append(made)
        return made

    monkeypatch.setattr(redis_client, "from_settings", slow_build)
    redis_client._resolved = False
    seen: list[RedisClient | None] = []
    threads = [
        threading.Thread(target=lambda: seen.append(redis_client.redis())) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert seen == [built[0]] * 16
    built[0].close()


@pytest.mark.usefixtures("restore_client")
def test_use_redis_swaps_and_none_means_absent(client: RedisClient) -> None:
    use_redis(client)
    assert redis_client.redis() is client
    assert use_redis(None) is client
    assert redis_client.redis() is None


def test_counting_counts_every_call_even_failed_ones(client: RedisClient, prefix: str) -> None:
    counting = CountingRedis(client)
    counting.set(prefix + "k", "v", ex=10)
    counting.get(prefix + "k")
    counting.mget([prefix + "k"])
    counting.eval(Script("one", "return 1"), [], [])
    counting.delete(prefix + "k")
    counting.ping()
    counting.mget([])  # sends nothing, counts nothing
    counting.delete()
    with pytest.raises(RedisUnavailable):
        counting.eval(Script("boom", "return redis.error_reply('ERR boom')"), [], [])
    assert counting.round_trips == 7
    assert counting.calls == {"set": 1, "get": 1, "mget": 1, "eval": 2, "delete": 1, "ping": 1}
