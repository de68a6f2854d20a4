"""TcpRedis keeps its own idle connections (lib/redis_client.py, issue 16): what
redis-py's pool did for it must still hold, on a real Redis behind a real proxy.

- a connection the server dropped while idle is retried once, on a new connection;
- a reply that arrives after the timeout is never taken for the next call's reply;
- a forked child never shares the parent's sockets.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from lib.redis_client import TCP_TIMEOUT_S, RedisUnavailable, TcpRedis
from tests.redis.faults import TcpProxy


class LateProxy(TcpProxy):
    """A TcpProxy that holds the server's next answer back for `late_s` seconds, and
    every answer for `every_s`."""

    def __init__(self, target: tuple[str, int], every_s: float = 0.0) -> None:
        self.late_s = 0.0
        self.every_s = every_s
        super().__init__(target)

    def handle(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(self._target, timeout=5)
        upstream.settimeout(None)
        self._track(upstream)

        def requests() -> None:
            with contextlib.suppress(OSError):
                while data := conn.recv(65536):
                    upstream.sendall(data)

        def answers() -> None:
            with contextlib.suppress(OSError):
                while data := upstream.recv(65536):
                    late, self.late_s = self.late_s, 0.0
                    time.sleep(late + self.every_s)
                    conn.sendall(data)

        for pump in (requests, answers):
            threading.Thread(target=pump, daemon=True).start()


@pytest.fixture
def key() -> Iterator[str]:
    name = f"test:redis:tcp:{uuid.uuid4().hex[:12]}"
    yield name


def _client(port: int) -> TcpRedis:
    # A tiny cool-down: these tests look at connections, not at the breaker.
    return TcpRedis(f"redis://127.0.0.1:{port}/0", cooldown_s=0.01)


def test_a_connection_dropped_while_idle_is_retried_once_on_a_new_one(
    redis_address: tuple[str, int], key: str
) -> None:
    with TcpProxy(redis_address) as proxy:
        client = _client(proxy.port)
        try:
            assert client.set(key, "one", ex=60)
            assert proxy.accepted == 1
            proxy.drop_connections()  # the idle connection is gone
            time.sleep(0.05)
            # No RedisUnavailable: the dead connection is found and replaced at once.
            assert client.get(key) == "one"
            assert proxy.accepted == 2
            assert not client.breaker.is_open
            assert client.delete(key) == 1
        finally:
            client.close()


def _idle_connections(client: TcpRedis, proxy: LateProxy, count: int, key: str) -> None:
    """Leave `count` idle connections in `client`: `count` calls at once, each held
    in flight by the proxy's slow answers, so none can reuse another's connection."""
    barrier = threading.Barrier(count)

    def call() -> None:
        barrier.wait()
        client.get(key)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert proxy.accepted == count


def test_a_restart_that_drops_every_idle_connection_fails_no_call(
    redis_address: tuple[str, int], key: str
) -> None:
    with LateProxy(redis_address, every_s=0.05) as proxy:
        client = _client(proxy.port)
        try:
            _idle_connections(client, proxy, 4, key)
            proxy.every_s = 0.0
            proxy.drop_connections()  # all four are gone
            time.sleep(0.05)
            for _ in range(6):
                assert client.get(key) is None
            assert not client.breaker.is_open
        finally:
            client.close()


@pytest.mark.parametrize("idle", [1, 4])
def test_redis_gone_with_idle_connections_is_down_not_an_error(
    redis_address: tuple[str, int], key: str, idle: int
) -> None:
    # Found by the torture with several idle: the retry took a second idle connection,
    # as dead as the first, and the request answered 500.
    proxy = LateProxy(redis_address, every_s=0.05)
    client = _client(proxy.port)
    try:
        _idle_connections(client, proxy, idle, key)
        proxy.stop()  # dropped, and nothing listens any more: the retry fails too
        with pytest.raises(RedisUnavailable) as caught:
            client.get(key)
        assert caught.value.kind == "down"
    finally:
        proxy.stop()
        client.close()


def test_a_late_reply_is_never_read_as_the_next_calls(
    redis_address: tuple[str, int], key: str
) -> None:
    with LateProxy(redis_address) as proxy:
        client = _client(proxy.port)
        try:
            assert client.set(key, "first", ex=60)
            proxy.late_s = TCP_TIMEOUT_S + 0.25
            with pytest.raises(RedisUnavailable) as caught:
                client.get(key)  # its answer, "first", arrives after the timeout
            assert caught.value.kind == "timeout"
            time.sleep(0.4)  # the late answer has now arrived, on the old connection
            assert client.set(key, "second", ex=60)
            assert client.get(key) == "second"
            assert client.delete(key) == 1
        finally:
            client.close()


def _child_reads(client: TcpRedis, key: str, answers: multiprocessing.Queue[object]) -> None:
    try:
        answers.put(client.get(key))
    except RedisUnavailable as exc:
        answers.put(f"unavailable: {exc}")


def test_a_forked_child_opens_connections_of_its_own(
    redis_address: tuple[str, int], key: str
) -> None:
    with TcpProxy(redis_address) as proxy:
        client = _client(proxy.port)
        try:
            assert client.set(key, "parent's", ex=60)
            assert proxy.accepted == 1  # one idle connection, made by the parent
            context = multiprocessing.get_context("fork")
            answers: multiprocessing.Queue[object] = context.Queue()
            child = context.Process(target=_child_reads, args=(client, key, answers))
            child.start()
            child.join(timeout=10)
            assert child.exitcode == 0
            assert answers.get(timeout=5) == "parent's"
            assert proxy.accepted == 2  # the child connected for itself
            assert client.get(key) == "parent's"  # the parent's socket is intact
            assert proxy.accepted == 2
            assert client.delete(key) == 1
        finally:
            client.close()
