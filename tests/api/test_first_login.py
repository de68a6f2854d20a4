"""A student PostgreSQL does not know yet: one HubSpot search at the first login, then
never again. HubSpot trouble is a clean 503 for such students only."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from lib.hubspot import lookup
from lib.hubspot.client import HubSpotClient, HubSpotError, LocalBudget
from local.standins.hubspot import HubSpotStandIn, serve
from tests.api.conftest import Api
from tests.helpers import Db

TOKEN = "pat-local-test-token"  # a stand-in token, not a secret


@pytest.fixture
def hubspot(api: Api) -> Iterator[HubSpotStandIn]:
    with serve(TOKEN) as standin:
        client = HubSpotClient(TOKEN, standin.url, budget=LocalBudget())
        previous = lookup.use_client(client)
        yield standin
        lookup.use_client(previous)
        client.close()


def _searches(standin: HubSpotStandIn) -> int:
    return sum(1 for r in standin.requests() if r.path.endswith("/search"))


def _hubspot_student(standin: HubSpotStandIn, student_id: str = "HS12345") -> str:
    return standin.put(
        "0-1",
        {
            "student_id": student_id,
            "email": f"{student_id.lower()}@example.com",
            "firstname": "Hub",
            "lastname": "Spot",
            "sj_credits": "2",
            "cs_credits": "1",
            "sjmini_credits": "0",
            "mock_discussion_token": "3",
            "shared_mock_credits": "4",
        },
    )


def test_first_login_fetches_from_hubspot_once_and_stores(
    api: Api, db: Db, hubspot: HubSpotStandIn
) -> None:
    hubspot_id = _hubspot_student(hubspot)
    body = {"student_id": "HS12345", "email": "HS12345@example.com"}

    first = api.post("/api/user/login", body)

    assert first.status_code == 200, first.text
    data = first.json()["data"]
    assert data["_metadata"]["data_source"] == "hubspot"
    assert data["hubspot_id"] == hubspot_id
    assert data["credits"] == {
        "sj_credits": 2,
        "cs_credits": 1,
        "sjmini_credits": 0,
        "mock_discussion_token": 3,
        "shared_mock_credits": 4,
    }
    stored = db.one(
        "select hubspot_id, sj_credits from hubspot_sync.hubspot_contact_credits"
        " where student_id = 'HS12345'"
    )
    assert stored == {"hubspot_id": hubspot_id, "sj_credits": 2}
    assert _searches(hubspot) == 1

    second = api.post("/api/user/login", body)
    check = api.post("/api/mock-exams/validate-credits", {**body, "mock_type": "Mock Discussion"})

    assert second.json()["data"]["_metadata"]["data_source"] == "postgres"
    assert check.json()["data"]["available_credits"] == 3
    assert _searches(hubspot) == 1  # never asked again


def test_validate_credits_can_be_the_first_contact(api: Api, hubspot: HubSpotStandIn) -> None:
    _hubspot_student(hubspot, "HS777")

    check = api.post(
        "/api/mock-exams/validate-credits",
        {"student_id": "HS777", "email": "hs777@example.com", "mock_type": "Clinical Skills"},
    )

    assert check.status_code == 200
    assert check.json()["data"]["credit_breakdown"] == {"specific_credits": 1, "shared_credits": 4}


def test_unknown_everywhere_is_student_not_found(api: Api, hubspot: HubSpotStandIn) -> None:
    response = api.post("/api/user/login", {"student_id": "NOPE1", "email": "nope@example.com"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "STUDENT_NOT_FOUND"


def test_concurrent_first_logins_store_one_row(api: Api, db: Db, hubspot: HubSpotStandIn) -> None:
    _hubspot_student(hubspot, "HS999")
    body = {"student_id": "HS999", "email": "hs999@example.com"}

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(lambda _: api.post("/api/user/login", body).status_code, range(5)))

    assert statuses == [200] * 5
    assert db.one(
        "select count(*) as n from hubspot_sync.hubspot_contact_credits where student_id = 'HS999'"
    ) == {"n": 1}


def test_hubspot_outage_is_a_503_for_new_students_only(
    api: Api, db: Db, hubspot: HubSpotStandIn
) -> None:
    db.contact(student_id="KNOWN1", email="known1@example.com", cs_credits=1)
    _hubspot_student(hubspot, "HSNEW1")
    hubspot.set_faults(error_rate=1.0, error_statuses=(503,))

    started = time.monotonic()
    new = api.post("/api/user/login", {"student_id": "HSNEW1", "email": "hsnew1@example.com"})
    elapsed = time.monotonic() - started
    known = api.post("/api/user/login", {"student_id": "KNOWN1", "email": "known1@example.com"})

    assert new.status_code == 503
    assert new.json()["error"]["code"] == "HUBSPOT_UNAVAILABLE"
    assert int(new.headers["Retry-After"]) > 0
    assert elapsed < 15  # bounded: a couple of short tries, never a hang
    assert known.status_code == 200
    assert db.one(
        "select count(*) as n from hubspot_sync.hubspot_contact_credits where student_id = 'HSNEW1'"
    ) == {"n": 0}

    hubspot.set_faults(None)
    assert (
        api.post(
            "/api/user/login", {"student_id": "HSNEW1", "email": "hsnew1@example.com"}
        ).status_code
        == 200
    )


def test_hubspot_timeouts_do_not_hang_a_login(api: Api, hubspot: HubSpotStandIn) -> None:
    _hubspot_student(hubspot, "HSSLOW")
    hubspot.set_faults(timeout_rate=1.0, hold_s=20.0)

    started = time.monotonic()
    response = api.post("/api/user/login", {"student_id": "HSSLOW", "email": "hsslow@example.com"})

    assert response.status_code == 503
    assert time.monotonic() - started < 15
    hubspot.set_faults(None)


# ------------------------------------------------------------------ abuse


def _made_up(n: int) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8].upper()
    return {"student_id": f"X{tag}{n}", "email": f"x{tag.lower()}{n}@example.com"}


def test_a_flood_of_made_up_logins_from_one_address_costs_a_bounded_number_of_searches(
    api: Api, hubspot: HubSpotStandIn
) -> None:
    flooder = {"X-Real-IP": f"203.0.113.{random.randint(1, 254)}"}
    repeated = _made_up(0)

    answers: Counter[int] = Counter()
    for n in range(150):
        answers[api.post("/api/user/login", _made_up(n), headers=flooder).status_code] += 1
    for _ in range(150):  # one pair over and over: its miss is remembered
        answers[api.post("/api/user/login", repeated, headers=flooder).status_code] += 1
    searches = _searches(hubspot)
    # Another address's first login of a real HubSpot-only student, during the flood.
    _hubspot_student(hubspot, "HSREAL1")
    real = api.post("/api/user/login", {"student_id": "HSREAL1", "email": "hsreal1@example.com"})

    print(f"\n300 made-up logins from one address: {dict(answers)}; {searches} HubSpot searches")
    assert searches <= lookup.LOOKUPS_PER_CLIENT
    assert answers[404] == searches and answers[429] == 300 - searches
    assert real.status_code == 200, real.text
    assert _searches(hubspot) == searches + 1


def test_look_ups_from_many_addresses_leave_the_syncs_share_of_searches(
    api: Api, hubspot: HubSpotStandIn
) -> None:
    # The stand-in allows 5 searches per second, as HubSpot does per account. Look-ups
    # from 40 addresses at once may use 3 of them (HUBSPOT_LOOKUP_SEARCH_PER_S); the
    # sync, searching at its 2 per second meanwhile, keeps getting its searches done.
    sync = HubSpotClient(TOKEN, hubspot.url, budget=LocalBudget(search_limit=2))
    stop = threading.Event()
    sync_answers: list[str] = []

    def sync_searches() -> None:
        while not stop.is_set():
            try:
                sync.search("0-1", [], ["email"], limit=1)
                sync_answers.append("ok")
            except HubSpotError as exc:
                sync_answers.append(type(exc).__name__)

    def flood(n: int) -> int:
        address = {"X-Real-IP": f"198.51.{n}.{random.randint(1, 254)}"}
        return api.post("/api/user/login", _made_up(n), headers=address).status_code

    searcher = threading.Thread(target=sync_searches)
    started = time.monotonic()
    searcher.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = Counter(pool.map(flood, range(40)))
    finally:
        stop.set()
        searcher.join()
        sync.close()
    seconds = time.monotonic() - started
    answered = [r for r in hubspot.requests() if r.path.endswith("/search") and r.status == 200]
    look_ups = len(answered) - sync_answers.count("ok")

    print(
        f"\n40 addresses in {seconds:.1f} s: {dict(statuses)}; look-up searches {look_ups};"
        f" the sync's searches: {dict(Counter(sync_answers))}"
    )
    assert set(statuses) <= {404, 503}  # found nothing, or found no share in time
    assert set(sync_answers) == {"ok"}
    assert sync_answers.count("ok") >= 2 * seconds * 0.7  # its 2 per second, near enough
    assert look_ups <= 3 * seconds + 3  # the look-ups' share, whatever the demand
