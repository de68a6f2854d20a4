"""What the benchmarks' smoke tests share: the Redis database they may empty."""

from __future__ import annotations

# The benchmarks empty their Redis database (FLUSHDB), so a smoke run gets one of its
# own, never the one the rest of the suite uses.
SMOKE_REDIS_DB = 13


def redis_db(redis_url: str, db: int = SMOKE_REDIS_DB) -> str:
    """redis_url on database `db`."""
    base, _, _ = redis_url.rstrip("/").rpartition("/")
    return f"{base}/{db}" if base.startswith("redis") and "://" in base else f"{redis_url}/{db}"
