"""Reachability of each dependency, for /api/health and the admin dashboard.

ok: everything answers. degraded: Redis is down or absent (bookings still work
through PostgreSQL, slower). down: PostgreSQL is down (nothing can be booked).

HubSpot is reported too, but never changes the overall status: it is not on the
booking path. Its state comes from the sync's last run as recorded in PostgreSQL,
never from a call to HubSpot (a health check polled every minute must not spend
HubSpot's budget): absent (no HUBSPOT_ACCESS_TOKEN), unknown (no run has finished, or
the database cannot say), failing (the last run failed: see the admin dashboard), ok.
"""

from __future__ import annotations

import time
from typing import Any

from lib import db
from lib.config import settings
from lib.errors import AppError

# Last-run statuses that mean the sync is not doing its work (lib/admin_sync.py's
# LAST_RUN_FAILED alert uses the same list).
SYNC_FAILED = frozenset({"failed", "abandoned", "lease_lost", "rate_limited", "daily_limit"})


def _timed(probe: Any) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        ok = bool(probe())
    except AppError:
        ok = False
    return ok, round((time.perf_counter() - started) * 1000, 1)


def hubspot_state(database_ok: bool) -> dict[str, Any]:
    """HubSpot as the sync last found it (see the module docstring)."""
    if not settings().hubspot_access_token:
        return {"status": "absent"}
    if not database_ok:
        return {"status": "unknown"}
    try:
        sync = db.rpc("sync_health", {})
    except AppError:
        return {"status": "unknown"}
    last = sync.get("last_run")
    if last is None:
        status = "unknown"
    elif last["status"] in SYNC_FAILED:
        status = "failing"
    else:
        status = "ok"
    return {
        "status": status,
        "last_run": last,
        "last_success_at": sync.get("last_success_at"),
        "sync_running": sync.get("running", False),
    }


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
            "hubspot": hubspot_state(database_ok),
        },
    }
