"""Reachability of each dependency, for /api/health and the admin dashboard.

ok: everything answers. degraded: Redis is down or absent (bookings still work
through PostgreSQL, slower). down: PostgreSQL is down (nothing can be booked).
"""

from __future__ import annotations

import time
from typing import Any

from lib import db
from lib.errors import AppError


def _timed(probe: Any) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        ok = bool(probe())
    except AppError:
        ok = False
    return ok, round((time.perf_counter() - started) * 1000, 1)


def check() -> dict[str, Any]:
    from lib.redis_client import RedisUnavailable, redis

    database_ok, database_ms = _timed(lambda: db.rpc("health", {})["ok"])
    client = redis()
    redis_state = "absent"
    redis_ms = None
    if client is not None:

        def ping() -> bool:
            try:
                return client.ping()
            except RedisUnavailable:
                return False

        redis_ok, redis_ms = _timed(ping)
        redis_state = "ok" if redis_ok else "down"
    if not database_ok:
        status = "down"
    elif redis_state != "ok":
        status = "degraded"
    else:
        status = "ok"
    return {
        "status": status,
        "service": "mock-exam-booking",
        "dependencies": {
            "database": {"status": "ok" if database_ok else "down", "latency_ms": database_ms},
            "redis": {"status": redis_state, "latency_ms": redis_ms},
        },
    }
