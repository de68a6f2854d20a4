"""HubSpot misbehaving: 429 storms, 5xx, timeouts, lost responses, the daily limit.
Whatever a faulty run manages, one clean run afterwards leaves both sides consistent:
no duplicate, no lost booking, no lost or doubled credit change. And the configured
rate budget holds, read from the stand-in's own request log."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import requests

from lib.hubspot.client import LocalBudget, RedisBudget
from lib.hubspot.sync_run import SyncOptions
from local.standins.hubspot import CONTACTS
from tests.sync.conftest import TOKEN, World

OPTIONS = SyncOptions(batch_size=5, association_group=10)


def _busy_world(world: World) -> None:
    """Work for every phase: new and changed bookings, credit changes on both sides, a
    contact HubSpot does not have yet."""
    contacts = [world.contact(sj_credits=12, cs_credits=12, sjmini_credits=12) for _ in range(5)]
    contacts.append(world.contact(in_hubspot=False, cs_credits=6))
    exams = [
        world.exam(mock_type="Clinical Skills"),
        world.exam(mock_type="Situational Judgment"),
        world.exam(mock_type="Mini-mock"),
        world.exam(mock_type="Clinical Skills"),
    ]
    for contact in contacts[:5]:
        for exam in exams:
            world.book(contact, exam)
    world.book(contacts[5], exams[0])
    world.sync(options=OPTIONS)  # a first, clean pass
    for n, contact in enumerate(contacts[:5]):
        world.purchase(contact, "sj_credits", n + 1)
        extra = world.exam(mock_type="Mini-mock")
        world.book(contact, extra)
    first = world.db.one(
        "select id from hubspot_sync.hubspot_bookings where student_id = %s limit 1",
        contacts[0]["student_id"],
    )
    world.cancel(first)
    world.book(world.contact(in_hubspot=False), exams[1])


def _storm(url: str, stop: threading.Event) -> None:
    """Another integration on the same app, using up the ten-second budget."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        while not stop.is_set():
            session.get(f"{url}/crm/v3/objects/{CONTACTS}/1", timeout=5)


FAULTS: dict[str, dict[str, Any]] = {
    "5xx": {"error_rate": 0.3, "seed": 3},
    "timeouts": {"timeout_rate": 0.25, "hold_s": 0.3, "seed": 4},
    "lost responses": {"lost_rate": 0.3, "seed": 5},
    "all at once": {"error_rate": 0.1, "timeout_rate": 0.1, "lost_rate": 0.1, "hold_s": 0.3},
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_faults_then_one_clean_run_leave_everything_consistent(world: World, fault: str) -> None:
    _busy_world(world)
    world.standin.set_faults(**FAULTS[fault])
    # Timeouts: give up on a held request quickly (it is still applied, late).
    client = world.client(read_timeout_s=0.15, max_attempts=3)

    faulty = world.sync(client=client, options=OPTIONS)

    assert faulty.status in ("succeeded", "partial", "failed"), faulty
    assert faulty.retries > 0
    world.standin.set_faults()
    time.sleep(0.4)  # held requests land before the clean run reads
    clean = world.sync(options=OPTIONS)
    assert clean.status == "succeeded", (clean.status, clean.message, clean.errors)
    world.assert_consistent()


def test_a_429_storm_is_waited_out(world: World) -> None:
    _busy_world(world)
    world.standin.set_limits(per_interval=15, interval_ms=1000)
    stop = threading.Event()
    storm = threading.Thread(target=_storm, args=(world.standin.url, stop), daemon=True)
    storm.start()
    try:
        time.sleep(0.2)
        stormy = world.sync(
            client=world.client(
                budget=LocalBudget(general_limit=15, general_window_ms=1000),
                max_rate_limit_waits=2,
            ),
            options=OPTIONS,
        )
    finally:
        stop.set()
        storm.join()

    assert stormy.rate_limited > 0
    assert stormy.status in ("succeeded", "rate_limited"), stormy
    clean = world.sync(options=OPTIONS)
    assert clean.status == "succeeded"
    world.assert_consistent()


def _under_budget(world: World, general: int, associations: int, search: int) -> None:
    assert world.standin.peak("general", 1000) <= general
    assert world.standin.peak("associations", 1000) <= associations
    assert world.standin.peak("search", 1000) <= search
    assert all(r.status != 429 for r in world.standin.requests())


def test_the_configured_rate_budget_holds(world: World) -> None:
    _busy_world(world)
    world.standin.reset(objects=False)  # the log from here on
    started = time.time()
    budget = LocalBudget(
        general_limit=6,
        general_window_ms=1000,
        association_limit=2,
        association_window_ms=1000,
        search_limit=1,
        search_window_ms=1000,
    )

    result = world.sync(client=world.client(budget=budget), options=OPTIONS)

    assert result.status == "succeeded"
    assert result.api_calls >= 12 and result.budget_wait_ms > 0  # the budget did the pacing
    _under_budget(world, 6, 2, 1)
    assert time.time() - started < 30
    world.assert_consistent()


def test_a_budget_shared_through_redis_holds_for_every_instance(
    world: World, redis_url: str
) -> None:
    """The sync and another function instance (first logins reading contacts) share
    one budget through Redis: together they stay under it."""
    from lib.hubspot.client import HubSpotClient
    from lib.redis_client import TcpRedis

    _busy_world(world)
    world.standin.reset(objects=False)
    redis = TcpRedis(redis_url)
    name = f"test-sync-{uuid.uuid4().hex[:12]}"

    def shared() -> RedisBudget:
        return RedisBudget(redis, name=name, general_limit=6, general_window_ms=1000)

    stop = threading.Event()

    def other_instance() -> None:
        other = HubSpotClient(TOKEN, world.standin.url, budget=shared())
        while not stop.is_set():
            other.get(CONTACTS, "1")
        other.close()

    thread = threading.Thread(target=other_instance, daemon=True)
    thread.start()
    try:
        result = world.sync(client=world.client(budget=shared()), options=OPTIONS)
    finally:
        stop.set()
        thread.join()
        redis.close()

    assert result.status == "succeeded"
    assert world.standin.peak("general", 1000) <= 6
    world.assert_consistent()


def test_the_daily_limit_stops_the_run_cleanly_and_the_next_day_resumes(world: World) -> None:
    _busy_world(world)
    world.standin.set_limits(daily=6)

    stopped = world.sync(options=OPTIONS)

    assert stopped.status == "daily_limit"
    assert "daily" in (stopped.message or "")
    run = world.db.one("select * from hubspot_sync.sync_runs where id = %s", stopped.run_id)
    assert run["status"] == "daily_limit" and run["finished_at"] is not None
    assert world.db.one("select count(*) as n from hubspot_sync.sync_lease")["n"] == 0
    world.standin.set_limits(daily=1_000_000)  # midnight, account time

    assert world.sync(options=OPTIONS).status == "succeeded"
    world.assert_consistent()
