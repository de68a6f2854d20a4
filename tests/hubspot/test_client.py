"""lib/hubspot/client.py against the stand-in: chunking, de-duplication, 207 and 409
handling, rate limits, retries that are safe and the one that is not, and a budget
that holds — checked from the stand-in's request log, not from timings.

Windows are shrunk to one second (and backoffs to milliseconds) so that waits stay
short; the logic under test does not depend on the window's length."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lib.config import ConfigError, Settings
from lib.hubspot.client import (
    Budget,
    HubSpotClient,
    HubSpotDailyLimit,
    HubSpotError,
    HubSpotRateLimited,
    HubSpotUnavailable,
    LocalBudget,
    RedisBudget,
)
from local.standins.hubspot import BOOKINGS, CONTACTS, MOCK_EXAMS, HubSpotStandIn
from tests.hubspot.conftest import TOKEN

UPSERT = f"/crm/v3/objects/{BOOKINGS}/batch/upsert"
CREATE = f"/crm/v3/objects/{BOOKINGS}/batch/create"
UPDATE = f"/crm/v3/objects/{BOOKINGS}/batch/update"


def _client(standin: HubSpotStandIn, budget: Budget | None = None, **kwargs: Any) -> HubSpotClient:
    kwargs.setdefault("backoff_base_s", 0.01)
    kwargs.setdefault("backoff_cap_s", 0.05)
    return HubSpotClient(
        TOKEN,
        standin.url,
        budget=budget or LocalBudget(general_limit=10_000, search_limit=10_000),
        seed=1,
        **kwargs,
    )


@pytest.fixture
def client(standin: HubSpotStandIn) -> Iterator[HubSpotClient]:
    instance = _client(standin)
    yield instance
    instance.close()


def _bookings(count: int, start: int = 0, **properties: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"BK-{n}", "properties": {"name": f"Student {n}", **properties}}
        for n in range(start, start + count)
    ]


def _posts(standin: HubSpotStandIn, path: str) -> list[Any]:
    return [r for r in standin.requests() if r.path == path]


# ------------------------------------------------------------------ batches


def test_upsert_chunks_at_100(client: HubSpotClient, standin: HubSpotStandIn) -> None:
    result = client.batch_upsert(BOOKINGS, _bookings(250), "booking_id")
    assert result.errors == []
    assert len(result.results) == 250
    assert all(r["new"] for r in result.results)
    assert [r.inputs for r in _posts(standin, UPSERT)] == [100, 100, 50]
    assert len(standin.objects(BOOKINGS)) == 250
    assert client.stats.calls == 3


def test_duplicate_inputs_are_dropped_and_the_last_wins(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    inputs = [
        {"id": "BK-1", "properties": {"attendance": "No"}},
        {"id": "BK-2", "properties": {"attendance": "Yes"}},
        {"id": "BK-1", "properties": {"attendance": "Yes", "is_active": False}},
    ]
    result = client.batch_upsert(BOOKINGS, inputs, "booking_id")
    assert result.errors == []
    (call,) = _posts(standin, UPSERT)
    assert call.inputs == 2
    stored = {o["properties"]["booking_id"]: o["properties"] for o in standin.objects(BOOKINGS)}
    assert stored["BK-1"]["attendance"] == "Yes"
    assert stored["BK-1"]["is_active"] == "false"  # values are sent as strings
    # Emails are one record whatever their case.
    client.batch_upsert(
        CONTACTS,
        [{"id": "Ann@Example.com", "properties": {}}, {"id": "ann@example.com", "properties": {}}],
        "email",
    )
    assert len(standin.objects(CONTACTS)) == 1


def test_207_is_split_into_results_and_record_errors(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    inputs: list[dict[str, Any]] = [
        {"properties": {"booking_id": "BK-1"}},
        {"properties": {"booking_id": "BK-2", "start_time": "1767225600000"}},  # read-only
        {"properties": {"booking_id": "BK-3"}, "objectWriteTraceId": "row-3"},
    ]
    result = client.batch_create(BOOKINGS, inputs)
    assert sorted(r["properties"]["booking_id"] for r in result.results) == ["BK-1", "BK-3"]
    (error,) = result.errors
    assert error.id == "1"  # its position, as the trace id the client gave it
    assert error.status == 207
    assert error.category == "VALIDATION_ERROR"
    assert error.code == "READ_ONLY_VALUE"
    assert "start_time" in error.message
    assert error.correlation_id
    # An upsert with a bad input is refused whole (400: HubSpot answers per input only
    # for create); the client splits it until the bad input stands alone.
    upserted = client.batch_upsert(
        BOOKINGS,
        [*_bookings(2, 10), {"id": "BK-12", "properties": {"colour": "red"}}],
        "booking_id",
    )
    assert len(upserted.results) == 2
    assert [(e.id, e.code) for e in upserted.errors] == [("BK-12", "PROPERTY_DOESNT_EXIST")]


def test_whole_batch_409_is_bisected_to_the_bad_record(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    standin.set_faults(conflict_ids=frozenset({"BK-7"}))
    result = client.batch_upsert(BOOKINGS, _bookings(16), "booking_id")
    (error,) = result.errors
    assert (error.id, error.status, error.category) == ("BK-7", 409, "CONFLICT")
    assert error.correlation_id
    assert len(result.results) == 15
    assert len(standin.objects(BOOKINGS)) == 15
    # 16 -> 8 -> 4 -> 2 -> 1: one failing call per level plus the good halves.
    calls = _posts(standin, UPSERT)
    assert [c.status for c in calls].count(409) == 5
    assert len(calls) == 9
    assert client.stats.splits == 4


def test_whole_batch_400_for_one_refused_value_is_bisected_to_that_record(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    client.batch_upsert(BOOKINGS, _bookings(16), "booking_id")
    updates: list[dict[str, Any]] = [
        {
            "id": f"BK-{n}",
            # BK-5's is not one of the portal's options.
            "properties": {"attending_location": "Mississauga - Lab D" if n == 5 else "Calgary"},
        }
        for n in range(16)
    ]

    result = client.batch_update(BOOKINGS, updates, "booking_id")

    (error,) = result.errors
    assert (error.id, error.status, error.code) == ("BK-5", 400, "INVALID_OPTION")
    assert error.correlation_id and "Mississauga - Lab D" in error.message
    assert len(result.results) == 15
    locations = [r["properties"].get("attending_location") for r in standin.objects(BOOKINGS)]
    assert locations.count("Calgary") == 15 and "Mississauga - Lab D" not in locations
    calls = _posts(standin, UPDATE)
    assert [c.status for c in calls].count(400) == 5 and len(calls) == 9


def test_a_400_that_names_no_property_is_not_split(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    """A request-shape refusal would only repeat in every half: it is raised."""
    with pytest.raises(HubSpotError) as raised:
        client.batch_upsert(BOOKINGS, _bookings(4), "name")  # not a unique property
    assert raised.value.status == 400
    assert len(_posts(standin, UPSERT)) == 1


def test_batch_read_update_and_not_found(client: HubSpotClient, standin: HubSpotStandIn) -> None:
    client.batch_upsert(BOOKINGS, _bookings(3), "booking_id")
    read = client.batch_read(BOOKINGS, ["BK-0", "BK-2", "BK-9", "BK-0"], ["name"], "booking_id")
    assert sorted(r["properties"]["name"] for r in read.results) == ["Student 0", "Student 2"]
    assert [(e.id, e.category) for e in read.errors] == [("BK-9", "OBJECT_NOT_FOUND")]
    assert _posts(standin, f"/crm/v3/objects/{BOOKINGS}/batch/read")[0].inputs == 3
    updated = client.batch_update(
        BOOKINGS, [{"id": "BK-1", "properties": {"attendance": "Yes"}}], "booking_id"
    )
    assert updated.errors == []
    record_id = updated.results[0]["id"]
    assert client.get(BOOKINGS, record_id, ["attendance"])["properties"]["attendance"] == "Yes"  # type: ignore[index]
    assert client.get(BOOKINGS, "BK-404", ["name"], "booking_id") is None


def test_batch_create_with_inline_associations(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    exam = standin.put(MOCK_EXAMS, {"exam_date": "2026-04-01", "location": "Calgary"})
    type_id = next(
        label["typeId"]
        for label in client.association_labels(BOOKINGS, MOCK_EXAMS)
        if label["label"] is None
    )
    result = client.batch_create(
        BOOKINGS,
        [
            {
                "properties": {"booking_id": "BK-1"},
                "associations": [
                    {
                        "to": {"id": exam},
                        "types": [
                            {"associationCategory": "USER_DEFINED", "associationTypeId": type_id}
                        ],
                    }
                ],
            }
        ],
    )
    assert result.errors == []
    (booking,) = standin.objects(BOOKINGS)
    assert booking["properties"]["location"] == "Calgary"
    assert [a.to_id for a in standin.associations(BOOKINGS, MOCK_EXAMS)] == [exam]


def test_associations_chunk_at_2000_and_are_idempotent(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    contact = standin.put(CONTACTS, {"email": "a@example.com"})
    bookings = [standin.put(BOOKINGS, {"booking_id": f"BK-{n}"}) for n in range(2100)]
    pairs = [(b, contact) for b in bookings]
    result = client.associate_default(BOOKINGS, CONTACTS, pairs + pairs[:10])
    assert result.errors == []
    assert len(result.results) == 2100
    path = f"/crm/v4/associations/{BOOKINGS}/{CONTACTS}/batch/associate/default"
    assert [r.inputs for r in _posts(standin, path)] == [2000, 100]
    type_id = standin.define_association(BOOKINGS, CONTACTS, label="Attendee")
    labelled = client.create_associations(
        BOOKINGS, CONTACTS, [(bookings[0], contact, type_id), ("999", contact, type_id)]
    )
    assert len(labelled.results) == 1
    assert [(e.id, e.category) for e in labelled.errors] == [(f"999:{contact}", "OBJECT_NOT_FOUND")]
    assert len(standin.associations(BOOKINGS, CONTACTS)) == 2101


def test_a_400_raises_hubspot_error(client: HubSpotClient) -> None:
    with pytest.raises(HubSpotError) as refused:
        client.batch_upsert("2-999", _bookings(1), "booking_id")
    assert refused.value.status == 400
    assert refused.value.category == "VALIDATION_ERROR"
    assert refused.value.correlation_id
    with pytest.raises(HubSpotError):
        client.batch_upsert(BOOKINGS, _bookings(1), "name")  # not a unique property


# ------------------------------------------------------------------ search


def test_search_pages_and_find_contact(client: HubSpotClient, standin: HubSpotStandIn) -> None:
    for n in range(7):
        standin.put(CONTACTS, {"student_id": f"S{n}", "email": f"s{n}@x.io", "cs_credits": "1"})
    standin.put(CONTACTS, {"student_id": "S1", "email": "other@x.io"})
    seen: list[str] = []
    after: str | None = None
    while True:
        page = client.search(
            CONTACTS,
            [{"filters": [{"propertyName": "cs_credits", "operator": "EQ", "value": "1"}]}],
            ["student_id"],
            limit=3,
            after=after,
        )
        assert page.total == 7
        seen += [r["properties"]["student_id"] for r in page.results]
        if page.after is None:
            break
        after = page.after
    assert sorted(seen) == [f"S{n}" for n in range(7)]
    found = client.find_contact("S1", " S1@X.io ")
    assert found is not None
    assert found["properties"]["email"] == "s1@x.io"
    assert found["properties"]["cs_credits"] == "1"
    assert "sj_credits" in found["properties"]  # every credit property is asked for
    assert client.find_contact("S1", "nobody@x.io") is None


def test_find_contact_gives_up_quickly_when_hubspot_is_down(standin: HubSpotStandIn) -> None:
    standin.set_faults(error_next=10)
    client = _client(standin)
    started = time.monotonic()
    with pytest.raises(HubSpotUnavailable) as down:
        client.find_contact("S1", "s1@x.io")
    assert time.monotonic() - started < 2
    assert down.value.status in (502, 503, 504)
    assert down.value.retry_after_s > 0
    assert len(standin.requests()) == 2  # FIND_CONTACT_ATTEMPTS


# ------------------------------------------------------------------ rate limits


def test_429_ten_secondly_waits_for_the_window_then_succeeds(standin: HubSpotStandIn) -> None:
    standin.set_limits(per_interval=3, interval_ms=1000)
    client = _client(standin)
    # Another integration on the same app spends the window first.
    other = _client(standin)
    for n in range(3):
        other.batch_upsert(BOOKINGS, _bookings(1, n), "booking_id")
    started = time.monotonic()
    result = client.batch_upsert(BOOKINGS, _bookings(1, 10), "booking_id")
    assert result.errors == []
    assert time.monotonic() - started >= 0.9
    assert [r.status for r in standin.requests()] == [200, 200, 200, 429, 200]
    assert (client.stats.rate_limited, client.stats.retries) == (1, 1)


def test_429_daily_raises_daily_limit_without_retrying(standin: HubSpotStandIn) -> None:
    standin.set_limits(daily=1)
    client = _client(standin)
    client.batch_upsert(BOOKINGS, _bookings(1), "booking_id")
    with pytest.raises(HubSpotDailyLimit) as stopped:
        client.batch_upsert(BOOKINGS, _bookings(1, 1), "booking_id")
    assert stopped.value.status == 429
    assert stopped.value.correlation_id
    assert [r.status for r in standin.requests()] == [200, 429]
    assert client.stats.daily_remaining == 0


def test_persistent_429_raises_rate_limited(standin: HubSpotStandIn) -> None:
    standin.set_limits(search_per_s=1)
    client = _client(standin, max_rate_limit_waits=1)
    standin.set_limits(search_per_s=0)  # an account whose search budget never frees up
    with pytest.raises(HubSpotRateLimited):
        client.search(CONTACTS, [], ["email"])
    assert client.stats.rate_limited == 2


def test_headers_lower_the_budget_so_429s_stop(standin: HubSpotStandIn) -> None:
    standin.set_limits(per_interval=4, interval_ms=1000)
    budget = LocalBudget(general_limit=100, general_window_ms=1000)
    client = _client(standin, budget=budget)
    for n in range(9):
        client.batch_upsert(BOOKINGS, _bookings(1, n), "booking_id")
    assert budget.limit("general") == (4, 1000)
    # The first answer told the client HubSpot's real budget; no 429 ever came.
    assert client.stats.rate_limited == 0
    assert standin.peak("general", 1000) <= 4


def test_budget_keeps_every_window_under_the_limit(standin: HubSpotStandIn) -> None:
    # The stand-in would allow far more: only the client's budget holds the pace.
    client = _client(standin, budget=LocalBudget(general_limit=5, general_window_ms=1000))
    for n in range(16):
        client.batch_upsert(BOOKINGS, _bookings(1, n), "booking_id")
    assert standin.peak("general", 1000) <= 5
    assert standin.peak("general", 1000) == 5  # and it used what it had
    assert all(r.status == 200 for r in standin.requests())
    assert client.stats.budget_wait_ms > 0


def test_association_calls_have_a_budget_of_their_own(standin: HubSpotStandIn) -> None:
    # HubSpot counts v4 association calls apart from the general ten-second window.
    standin.set_limits(associations_per_interval=10_000)
    budget = LocalBudget(
        general_limit=3, general_window_ms=1000, association_limit=2, association_window_ms=1000
    )
    client = _client(standin, budget=budget)
    contact = standin.put(CONTACTS, {"email": "a@example.com"})
    for n in range(3):
        client.batch_upsert(BOOKINGS, _bookings(1, n), "booking_id")
    ids = [b["id"] for b in standin.objects(BOOKINGS)]
    for booking in ids[:2]:
        client.associate_default(BOOKINGS, CONTACTS, [(booking, contact)])
    assert client.stats.budget_wait_ms == 0  # the general window was full, these did not wait
    client.associate_default(BOOKINGS, CONTACTS, [(ids[2], contact)])
    assert client.stats.budget_wait_ms > 0
    assert standin.peak("associations", 1000) <= 2
    assert standin.peak("general", 1000) <= 3
    assert budget.limit("associations") == (2, 1000)


def _two_instances(standin: HubSpotStandIn, budgets: list[Budget]) -> None:
    """Two "function instances", each with its own client and budget object, each
    sending 9 calls as fast as its budget lets it."""
    errors: list[BaseException] = []

    def run(client: HubSpotClient, offset: int) -> None:
        try:
            for n in range(9):
                client.batch_upsert(BOOKINGS, _bookings(1, offset + n), "booking_id")
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    clients = [_client(standin, budget=b) for b in budgets]
    threads = [threading.Thread(target=run, args=(c, 100 * i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []


def test_redis_budget_is_shared_by_instances(standin: HubSpotStandIn, redis_url: str) -> None:
    from lib.redis_client import TcpRedis

    # Negative control: budgets per instance each keep 6 per second, so together the
    # instances exceed it; the check below can see the difference.
    _two_instances(standin, [LocalBudget(general_limit=6, general_window_ms=1000) for _ in "ab"])
    assert standin.peak("general", 1000) > 6
    standin.reset()

    redis = TcpRedis(redis_url)
    name = f"test-hubspot-{uuid.uuid4().hex[:12]}"  # a key of our own on a shared Redis
    _two_instances(
        standin,
        [RedisBudget(redis, name=name, general_limit=6, general_window_ms=1000) for _ in "ab"],
    )
    redis.close()
    assert len(standin.objects(BOOKINGS)) == 18
    assert standin.peak("general", 1000) <= 6


def test_redis_budget_falls_back_to_a_local_one_when_redis_is_down() -> None:
    from lib.redis_client import RedisUnavailable

    calls: list[str] = []

    def take(redis: object, *, key: str, limit: int, window_ms: int) -> int:
        calls.append(key)
        raise RedisUnavailable("down", "refused")

    budget = RedisBudget(object(), general_limit=2, general_window_ms=1000, take=take)  # type: ignore[arg-type]
    assert [budget.reserve("general") for _ in range(2)] == [0, 0]
    assert budget.reserve("general") > 0  # the local fallback keeps the same limit
    assert calls == ["mockexam:budget:hubspot:general"] * 3


def test_local_budget_waits_for_the_oldest_call() -> None:
    now = [0.0]
    budget = LocalBudget(general_limit=2, general_window_ms=1000, clock=lambda: now[0])
    assert [budget.reserve("general"), budget.reserve("general")] == [0, 0]
    wait = budget.reserve("general")
    assert 1000 <= wait <= 1100  # the window, padded for network delay
    now[0] = wait / 1000
    assert budget.reserve("general") == 0
    assert budget.reserve("search") == 0  # kinds are separate budgets
    budget.lower("general", 50, 100)  # a higher rate: ignored
    assert budget.limit("general") == (2, 1000)


# ------------------------------------------------------------------ failures and retries


def test_5xx_is_retried_with_backoff_then_succeeds(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    standin.set_faults(error_next=2)
    result = client.batch_upsert(BOOKINGS, _bookings(3), "booking_id")
    assert len(result.results) == 3
    assert [r.fault for r in standin.requests()] == ["error", "error", None]
    assert (client.stats.calls, client.stats.retries) == (3, 2)


def test_5xx_that_outlasts_the_retries_raises_unavailable(standin: HubSpotStandIn) -> None:
    standin.set_faults(error_next=10)
    client = _client(standin, max_attempts=3)
    with pytest.raises(HubSpotUnavailable) as down:
        client.batch_upsert(BOOKINGS, _bookings(1), "booking_id")
    assert down.value.write_may_have_applied is False  # an upsert can simply be sent again
    assert len(standin.requests()) == 3


def test_timeouts_raise_unavailable_within_a_bounded_time(standin: HubSpotStandIn) -> None:
    standin.set_faults(timeout_next=10, hold_s=3)
    client = _client(standin, read_timeout_s=0.2, max_attempts=3)
    started = time.monotonic()
    with pytest.raises(HubSpotUnavailable) as down:
        client.batch_read(BOOKINGS, ["1"], ["name"])
    assert time.monotonic() - started < 1.5  # 3 x 0.2 s plus millisecond backoffs
    assert down.value.status == 0
    assert client.stats.calls == 3


def test_a_lost_upsert_response_is_retried_without_a_duplicate(
    client: HubSpotClient, standin: HubSpotStandIn
) -> None:
    standin.set_faults(lost_next=1, paths=r"/batch/upsert$")
    result = client.batch_upsert(BOOKINGS, _bookings(5), "booking_id")
    assert result.errors == []
    # The first attempt was applied and its answer lost; the retry found the records.
    assert [r["new"] for r in result.results] == [False] * 5
    assert sorted(r["properties"]["booking_id"] for r in result.results) == [
        f"BK-{n}" for n in range(5)
    ]
    assert len(standin.objects(BOOKINGS)) == 5
    assert [r.fault for r in _posts(standin, UPSERT)] == ["lost", None]


def test_batch_create_is_not_retried(client: HubSpotClient, standin: HubSpotStandIn) -> None:
    standin.set_faults(lost_next=1)
    with pytest.raises(HubSpotUnavailable) as lost:
        client.batch_create(BOOKINGS, [{"properties": {"booking_id": "BK-1"}}])
    assert lost.value.write_may_have_applied is True
    assert len(_posts(standin, CREATE)) == 1
    # Why: HubSpot did create it. A second send would have made a duplicate.
    assert len(standin.objects(BOOKINGS)) == 1
    standin.set_faults(error_next=1)
    with pytest.raises(HubSpotUnavailable) as failed:
        client.batch_create(BOOKINGS, [{"properties": {"booking_id": "BK-2"}}])
    assert failed.value.write_may_have_applied is True
    assert len(_posts(standin, CREATE)) == 2
    standin.set_faults(timeout_next=1, hold_s=0.5)
    impatient = _client(standin, read_timeout_s=0.1)
    with pytest.raises(HubSpotUnavailable) as timed_out:
        impatient.batch_create(BOOKINGS, [{"properties": {"booking_id": "BK-3"}}])
    assert timed_out.value.write_may_have_applied is True
    assert len(_posts(standin, CREATE)) == 3


def test_a_create_that_never_connected_is_retried(standin: HubSpotStandIn) -> None:
    # Nothing listens on this port: the request cannot have reached HubSpot.
    client = HubSpotClient(
        TOKEN, "http://127.0.0.1:9", max_attempts=2, backoff_base_s=0.01, backoff_cap_s=0.01
    )
    with pytest.raises(HubSpotUnavailable) as down:
        client.batch_create(BOOKINGS, [{"properties": {"booking_id": "BK-1"}}])
    assert down.value.write_may_have_applied is False
    assert client.stats.calls == 2


# ------------------------------------------------------------------ configuration


def _settings(**hubspot: Any) -> Settings:
    return Settings(
        database_url=None,
        supabase_url=None,
        supabase_service_role_key=None,
        redis_url=None,
        upstash_redis_rest_url=None,
        upstash_redis_rest_token=None,
        db_pool_max_size=1,
        db_pool_timeout_s=1,
        db_statement_timeout_ms=1000,
        **hubspot,
    )


def test_from_settings(standin: HubSpotStandIn) -> None:
    with pytest.raises(ConfigError):
        HubSpotClient.from_settings(_settings())
    client = HubSpotClient.from_settings(
        _settings(hubspot_access_token=TOKEN, hubspot_base_url=standin.url)
    )
    assert client.batch_upsert(BOOKINGS, _bookings(1), "booking_id").errors == []
    client.close()


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from lib import config

    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-x")
    monkeypatch.setenv("HUBSPOT_BASE_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("HUBSPOT_RATE_LIMIT_PER_10S", "100")
    config.settings.cache_clear()
    try:
        loaded = config.settings()
        assert loaded.hubspot_access_token == "pat-x"
        assert loaded.hubspot_base_url == "http://127.0.0.1:1"
        assert loaded.hubspot_rate_limit_per_10s == 100
        assert loaded.hubspot_search_per_s == 5
        assert loaded.hubspot_bookings_object == "2-50158943"
        assert loaded.hubspot_mock_exams_object == "2-50158913"
        monkeypatch.setenv("HUBSPOT_BASE_URL", "api.hubapi.com")
        config.settings.cache_clear()
        with pytest.raises(ConfigError):
            config.settings()
    finally:
        config.settings.cache_clear()


def test_import_is_light() -> None:
    # Cold start is import time: the client must not pull in requests (or the SDK).
    code = (
        "import sys, lib.hubspot.client; "
        "print(sorted(m for m in ('requests', 'urllib3', 'hubspot', 'redis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "[]"
