"""`./run bench redis-calls` at the smallest scale, on the suite's Redis.

Never asserts timing (figures from a shared test machine mean nothing): it holds the
harness to measuring all three ways, each for real, and to leaving no key behind.
"""

from __future__ import annotations

import argparse

import pytest
import redis as redis_py

from bench import redis_calls


def test_it_measures_three_ways_and_leaves_no_key(redis_url: str) -> None:
    figures = redis_calls.measure(redis_url, calls=20, rounds=2)
    assert list(figures) == [
        "redis.Redis.evalsha",
        "TcpRedis.eval (the application's)",
        "bare socket (floor)",
    ]
    for cpu_us, wall_us in figures.values():
        assert cpu_us > 0 and wall_us > 0
    table = redis_calls.render(figures).splitlines()
    assert table[0] == "| client | CPU us per call | wall us per call |"
    assert len(table) == 2 + len(figures)
    admin = redis_py.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    try:
        assert admin.exists(*redis_calls.KEYS) == 0
    finally:
        admin.close()


def test_it_refuses_an_empty_measurement() -> None:
    args = argparse.Namespace(redis_url="redis://127.0.0.1:1/0", calls=0, rounds=1)
    with pytest.raises(SystemExit, match="at least 1"):
        redis_calls.main(args)
