"""The same API with Redis reached over Upstash's REST protocol (upstash-redis, the
serverless default on Vercel) through the local REST stand-in: same answers, same
round-trip budget, same degradation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lib import db as lib_db
from lib import redis_client as lib_redis
from local.standins.upstash import StandIn, serve
from tests.api.conftest import Api
from tests.api.test_resilience import CountingBackend, CountingRedis
from tests.helpers import Db

DEMO = {"student_id": "DEMO001", "email": "demo001@example.com"}
TOKEN = "local-upstash-token"  # a stand-in token, not a secret


@pytest.fixture
def upstash(api: Api, redis_url: str) -> Iterator[StandIn]:
    with serve(redis_url, TOKEN) as standin:
        client = lib_redis.RestRedis(standin.url, TOKEN)
        previous = lib_redis.use_redis(client)
        yield standin
        lib_redis.use_redis(previous)
        client.close()


@pytest.fixture
def demo(db: Db) -> dict[str, Any]:
    return db.contact(**DEMO, cs_credits=3)


def _book(api: Api, exam: dict[str, Any], key: str) -> Any:
    return api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(exam["id"]), "dominant_hand": "right"},
        headers={"Idempotency-Key": key},
    )


def test_booking_over_rest_redis_within_budget(
    api: Api, db: Db, demo: dict[str, Any], upstash: StandIn
) -> None:
    exam = db.exam(capacity=2)
    backend = CountingBackend(lib_db.backend())
    redis = CountingRedis(lib_redis.redis())
    old_backend = lib_db.use_backend(backend)
    old_redis = lib_redis.use_redis(redis)
    try:
        key = str(uuid.uuid4())
        created = _book(api, exam, key)
        trips = list(redis.trips)
        replay = _book(api, exam, key)
    finally:
        lib_db.use_backend(old_backend)
        lib_redis.use_redis(old_redis)

    assert created.status_code == 201 and replay.status_code == 200
    assert backend.calls == ["book", "book"]
    assert trips == ["eval", "eval"]
    seats = api.get(f"/api/mock-exams/{exam['id']}/capacity").json()["data"]
    assert (seats["total_bookings"], seats["available_slots"]) == (1, 1)
    sessions = api.get("/api/mock-exams/available", params={"mock_type": "Clinical Skills"})
    assert sessions.json()["data"][0]["available_slots"] == 1


def test_sold_out_fast_path_over_rest_redis(
    api: Api, db: Db, demo: dict[str, Any], upstash: StandIn
) -> None:
    exam = db.exam(capacity=1)
    db.book(db.contact(cs_credits=1), exam)
    assert _book(api, exam, str(uuid.uuid4())).json()["error"]["code"] == "EXAM_FULL"
    before = db.count("supabase_audit_log")

    response = _book(api, exam, str(uuid.uuid4()))

    assert response.json()["error"]["code"] == "EXAM_FULL"
    assert db.count("supabase_audit_log") == before


def test_upstash_down_bookings_still_work(
    api: Api, db: Db, demo: dict[str, Any], upstash: StandIn
) -> None:
    exam = db.exam(capacity=2)
    upstash.stop()

    response = _book(api, exam, str(uuid.uuid4()))
    health = api.get("/api/health").json()["data"]

    assert response.status_code == 201
    assert health["status"] == "degraded"
    assert db.credits(demo)["cs_credits"] == 2
