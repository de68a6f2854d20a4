"""The database is the arbiter; Redis only helps. Redis down, PostgreSQL down, both
back: what students see, what is written, and that recovery needs nobody. Plus the
round-trip budget of a booking, and seat counters that converge to the database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from lib import db as lib_db
from lib import redis_client as lib_redis
from lib.config import Settings
from lib.db import PsycopgBackend
from lib.redis_scripts import read_seats, seats_key
from tests.api.conftest import Api
from tests.faults import Proxy
from tests.helpers import Db

DEMO = {"student_id": "DEMO001", "email": "demo001@example.com"}


def _settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        supabase_url=None,
        supabase_service_role_key=None,
        redis_url=None,
        upstash_redis_rest_url=None,
        upstash_redis_rest_token=None,
        db_pool_max_size=4,
        # Short, so a test of an outage does not wait the production 5 s per request.
        db_pool_timeout_s=1,
        db_statement_timeout_ms=5000,
    )


@dataclass
class Outages:
    postgres: Proxy
    redis: Proxy


@pytest.fixture
def outages(api: Api, database_url: str, redis_url: str) -> Iterator[Outages]:
    """The running API re-pointed at PostgreSQL and Redis through proxies we can cut."""
    import psycopg

    target = psycopg.conninfo.conninfo_to_dict(database_url)
    pg_proxy = Proxy(str(target.get("host") or "127.0.0.1"), int(target.get("port") or 5432))
    pg_url = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=pg_proxy.port)
    redis_proxy, proxied_redis = Proxy.in_front_of(redis_url)
    backend = PsycopgBackend(_settings(pg_url))
    old_backend = lib_db.use_backend(backend)
    old_redis = lib_redis.use_redis(lib_redis.TcpRedis(proxied_redis))
    yield Outages(pg_proxy, redis_proxy)
    lib_db.use_backend(old_backend)
    new_redis = lib_redis.use_redis(old_redis)
    if new_redis is not None:
        new_redis.close()
    backend.close()
    pg_proxy.close()
    redis_proxy.close()


@pytest.fixture
def demo(db: Db) -> dict[str, Any]:
    return db.contact(**DEMO, cs_credits=5, sj_credits=5)


def _book(api: Api, exam: Mapping[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(exam["id"]), "dominant_hand": "right"},
        headers=headers,
    )


def _wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_redis_down_bookings_and_reads_still_work(
    api: Api, db: Db, demo: dict[str, Any], outages: Outages
) -> None:
    exam = db.exam(capacity=3)
    assert api.get("/api/health").json()["data"]["status"] == "ok"

    outages.redis.cut()

    health = api.get("/api/health")
    assert health.status_code == 200
    assert health.json()["data"]["status"] == "degraded"
    assert health.json()["data"]["dependencies"]["redis"]["status"] == "down"
    assert api.post("/api/user/login", DEMO).status_code == 200
    available = api.get("/api/mock-exams/available", params={"mock_type": "Clinical Skills"})
    assert [s["id"] for s in available.json()["data"]] == [str(exam["id"])]
    booked = _book(api, exam)
    assert booked.status_code == 201, booked.text
    assert api.get(f"/api/mock-exams/{exam['id']}/capacity").json()["data"]["total_bookings"] == 1
    cancelled = api.delete(f"/api/bookings/{booked.json()['data']['id']}", DEMO)
    assert cancelled.status_code == 200
    assert db.seats(exam) == 0 == db.held_seats(exam)
    assert db.credits(demo)["cs_credits"] == 5

    outages.redis.restore()

    assert _wait_for(lambda: api.get("/api/health").json()["data"]["status"] == "ok", 15)
    assert _book(api, exam).status_code == 201


def test_postgres_down_is_a_clean_503_and_recovery_is_automatic(
    api: Api, db: Db, demo: dict[str, Any], outages: Outages
) -> None:
    exam = db.exam(capacity=3)
    assert api.post("/api/user/login", DEMO).status_code == 200  # pool warm

    outages.postgres.cut()

    for response in (
        api.post("/api/user/login", DEMO),
        _book(api, exam, key="during-outage"),
        api.get("/api/bookings/list", params=DEMO),
    ):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
        assert int(response.headers["Retry-After"]) >= 1
    health = api.get("/api/health")
    assert health.status_code == 503
    assert health.json()["data"]["status"] == "down"

    outages.postgres.restore()

    assert _wait_for(lambda: api.post("/api/user/login", DEMO).status_code == 200, 15)
    # Nothing half-written during the outage; the same booking goes through now.
    assert db.count("hubspot_bookings") == 0
    assert db.credits(demo)["cs_credits"] == 5
    assert _book(api, exam, key="during-outage").status_code == 201
    assert db.credits(demo)["cs_credits"] == 4
    assert api.get("/api/health").json()["data"]["status"] == "ok"


# An outage long enough for psycopg_pool's reconnection backoff to grow past it.
LONG_OUTAGE_S = 10.0
# From the database's return to the first request it serves again.
RECOVERY_BOUND_S = 3.0


@pytest.mark.slow
def test_after_a_long_outage_the_database_serves_again_within_seconds(
    api: Api, demo: dict[str, Any], outages: Outages
) -> None:
    """Found by the torture: after PostgreSQL was down 15 s, one worker answered 503
    for 10 s more with the database back, waiting out the pool's backoff."""
    assert api.post("/api/user/login", DEMO).status_code == 200  # pool warm

    outages.postgres.cut()
    until = time.monotonic() + LONG_OUTAGE_S
    while time.monotonic() < until:  # students keep trying through the outage
        assert api.post("/api/user/login", DEMO).status_code == 503
    outages.postgres.restore()
    restored = time.monotonic()

    assert _wait_for(lambda: api.post("/api/user/login", DEMO).status_code == 200, 30)
    assert time.monotonic() - restored < RECOVERY_BOUND_S


# ------------------------------------------------------------------ round-trip budget


class CountingBackend:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def call(
        self, name: str, params: Mapping[str, Any], repeat_safe: bool = True
    ) -> dict[str, Any]:
        self.calls.append(name)
        result: dict[str, Any] = self.inner.call(name, params, repeat_safe)
        return result

    def close(self) -> None:
        return None


class CountingRedis:
    """Counts round trips: every method of the client interface is one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.trips: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name in ("eval", "mget", "get", "set", "delete", "ping"):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.trips.append(name)
                return attribute(*args, **kwargs)

            return counted
        return attribute


@pytest.fixture
def counting(api: Api) -> Iterator[tuple[CountingBackend, CountingRedis]]:
    backend = CountingBackend(lib_db.backend())
    redis = CountingRedis(lib_redis.redis())
    old_backend = lib_db.use_backend(backend)
    old_redis = lib_redis.use_redis(redis)
    yield backend, redis
    lib_db.use_backend(old_backend)
    lib_redis.use_redis(old_redis)


def test_a_booking_costs_one_database_call_two_redis_trips_and_no_hubspot(
    api: Api, db: Db, demo: dict[str, Any], counting: tuple[CountingBackend, CountingRedis]
) -> None:
    from lib.hubspot import lookup

    exam = db.exam()
    backend, redis = counting

    response = _book(api, exam, key=str(uuid.uuid4()))

    assert response.status_code == 201
    assert backend.calls == ["book"]
    assert len(redis.trips) <= 2, redis.trips
    assert redis.trips == ["eval", "eval"]
    assert lookup.client() is None  # no HubSpot client was ever needed, let alone called


def test_a_sold_out_exam_is_refused_by_redis_without_the_database(
    api: Api, db: Db, demo: dict[str, Any], counting: tuple[CountingBackend, CountingRedis]
) -> None:
    exam = db.exam(capacity=1)
    other = db.contact(cs_credits=1)
    db.book(other, exam)
    backend, redis = counting
    first = _book(api, exam)  # the database says full, and the counter learns it
    assert first.json()["error"]["code"] == "EXAM_FULL"
    backend.calls.clear()
    redis.trips.clear()

    again = _book(api, exam)

    assert again.json()["error"]["code"] == "EXAM_FULL"
    assert backend.calls == []
    assert redis.trips == ["eval"]


# ------------------------------------------------------------------ counters converge


def _counter(exam: Mapping[str, Any]) -> Any:
    client = lib_redis.redis()
    assert client is not None
    return read_seats(client, [seats_key(str(exam["id"]))]).get(seats_key(str(exam["id"])))


def _corrupt(exam: Mapping[str, Any], value: str) -> None:
    client = lib_redis.redis()
    assert client is not None
    client.set(seats_key(str(exam["id"])), value, ex=600)


def test_a_corrupted_count_is_fixed_by_the_next_booking(
    api: Api, db: Db, demo: dict[str, Any]
) -> None:
    exam = db.exam(capacity=5)
    api.get(f"/api/mock-exams/{exam['id']}/capacity")  # the counter exists, version 0
    _corrupt(exam, "0:4:5")  # claims 4 booked; the database has none

    assert _book(api, exam).status_code == 201

    count = _counter(exam)
    assert (count.booked, count.capacity) == (1, 5) == (db.seats(exam), 5)


def test_a_counter_falsely_claiming_full_does_not_block_for_good(
    api: Api, db: Db, demo: dict[str, Any]
) -> None:
    exam = db.exam(capacity=5)
    _corrupt(exam, "0:5:5")  # "full", and as old as the database's own version

    assert _wait_for(lambda: _book(api, exam).status_code == 201, 15)
    assert _counter(exam).booked == 1


def test_a_garbled_counter_is_fixed_by_the_next_read(api: Api, db: Db) -> None:
    exam = db.exam(capacity=5)
    _corrupt(exam, "not a seat count")

    capacity = api.get(f"/api/mock-exams/{exam['id']}/capacity")

    assert capacity.json()["data"]["available_slots"] == 5
    assert (_counter(exam).booked, _counter(exam).capacity) == (0, 5)


def test_reconcile_fixes_a_counter_from_the_future(api: Api, db: Db) -> None:
    from lib.exams import reconcile_seats

    exam = db.exam(capacity=5)
    _corrupt(exam, "999999:5:5")

    fixed = reconcile_seats()

    assert fixed >= 1
    assert (_counter(exam).booked, _counter(exam).capacity) == (0, 5)
