"""A student cannot read or cancel another student's booking, nor learn that it exists.

Beyond tests/api/test_student_flow.py (one active booking by UUID, HubSpot id and
code): bookings in every state (active, cancelled, completed), new and legacy codes
(a legacy code two other students share, which must not answer "matches several"),
the UUID in capitals, and every identity a student could try (their own, the owner's
student id with their own email, their own id with the owner's email). Each answer
is compared with the answer for a booking that does not exist, referenced the same
way: same status, same headers, same body but for the request id. Afterwards every
table of the schema and every Redis key the app wrote (rate counters aside) are as
they were. Identities are not enumerable either: the owner's student id with the
wrong email answers exactly as a student id nobody has, on every student endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import redis as redis_py
import requests

from lib.redis_scripts import PREFIX
from tests.api.conftest import Api
from tests.helpers import TABLES, Db

LEGACY_CODE = "Clinical Skills-1599999-March 1, 2026"
NOWHERE = {
    "uuid": str(uuid.uuid4()),
    "UUID": str(uuid.uuid4()).upper(),
    "hubspot_id": "880999",
    "code": "BK-20990101-ZZZZZZ",
    "legacy": "Mini-mock-0000000-January 9, 2026",
}
# Headers that differ between any two answers.
PER_REQUEST = {"x-request-id", "date"}


def _identity(contact: dict[str, Any]) -> dict[str, str]:
    return {"student_id": contact["student_id"], "email": contact["email"]}


@pytest.fixture
def owner(db: Db) -> dict[str, Any]:
    """A student (the owner) with a booking in each state, all with HubSpot ids; a
    third student shares the legacy code of the completed one."""
    owner = db.contact(cs_credits=3)
    soon = date.today() + timedelta(days=14)
    active = db.book(owner, db.exam(exam_date=soon))["booking"]
    cancelled = db.book(owner, db.exam(exam_date=soon + timedelta(days=1)))["booking"]
    db.call(
        "cancel_booking",
        p_booking_ref=cancelled["id"],
        p_student_id=owner["student_id"],
        p_email=owner["email"],
    )
    past = db.exam(exam_date=date.today() - timedelta(days=30))
    completed = db.booking(owner, past, is_active="Completed", booking_id=LEGACY_CODE)
    db.booking(db.contact(), past, booking_id=LEGACY_CODE)  # another student, same code
    for n, booking in enumerate((active, cancelled), start=1):
        db.conn.execute(
            "update hubspot_sync.hubspot_bookings set hubspot_id = %s where id = %s",
            (f"88000{n}", booking["id"]),
        )
    return {
        "contact": owner,
        "bookings": {
            "active": {
                "uuid": active["id"],
                "UUID": active["id"].upper(),
                "hubspot_id": "880001",
                "code": active["booking_id"],
            },
            "cancelled": {
                "uuid": cancelled["id"],
                "hubspot_id": "880002",
                "code": cancelled["booking_id"],
            },
            "completed": {
                "uuid": str(completed["id"]),
                "hubspot_id": completed["hubspot_id"],
                "legacy": LEGACY_CODE,
            },
        },
    }


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis_py.Redis]:
    client = redis_py.Redis.from_url(redis_url)
    yield client
    client.close()


def _database(db: Db) -> dict[str, str]:
    """Every table of the schema, as one digest each."""
    return {
        table: db.one(
            f"select count(*) as n, md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
            f" as digest from {table} t"
        )["digest"]
        for table in TABLES
    }


def _redis(client: redis_py.Redis) -> dict[bytes, bytes | None]:
    keys = [k for k in client.scan_iter(match=f"{PREFIX}*") if b":rate:" not in k]
    return {key: client.dump(key) for key in sorted(keys)}


def _answer(response: requests.Response) -> tuple[int, dict[str, str], dict[str, Any]]:
    body: dict[str, Any] = response.json()
    body.get("error", {}).pop("request_id", None)
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in PER_REQUEST}
    return response.status_code, headers, body


def _path(ref: str) -> str:
    return "/api/bookings/" + quote(ref, safe="")


def test_another_students_booking_answers_exactly_like_one_that_does_not_exist(
    api: Api, db: Db, owner: dict[str, Any], redis_client: redis_py.Redis
) -> None:
    me = db.contact(cs_credits=1)
    theirs = owner["contact"]
    identities = {
        "mine": _identity(me),
        "their id, my email": {"student_id": theirs["student_id"], "email": me["email"]},
        "my id, their email": {"student_id": me["student_id"], "email": theirs["email"]},
    }
    database, keys = _database(db), _redis(redis_client)
    cases = 0
    for who, identity in identities.items():
        for state, refs in owner["bookings"].items():
            for kind, ref in refs.items():
                for method in ("GET", "DELETE"):
                    if method == "GET":
                        tried = api.get(_path(ref), params=identity)
                        missing = api.get(_path(NOWHERE[kind]), params=identity)
                    else:
                        tried = api.delete(_path(ref), identity)
                        missing = api.delete(_path(NOWHERE[kind]), identity)
                    assert _answer(tried) == _answer(missing), (who, state, kind, method)
                    assert tried.status_code == 404, (who, state, kind, method, tried.text)
                    cases += 1
    assert cases == 3 * 10 * 2
    assert _database(db) == database
    # Nothing written to Redis: no key added or changed. (A cache key an earlier test
    # left may expire meanwhile: that is its TTL, not a write.)
    after = _redis(redis_client)
    assert {k: v for k, v in after.items() if keys.get(k) != v} == {}
    # The owner still reaches each of them (the references are right).
    for refs in owner["bookings"].values():
        for ref in refs.values():
            if ref != LEGACY_CODE:  # two students share it: the owner must use the UUID
                assert api.get(_path(ref), params=_identity(theirs)).status_code == 200, ref


def test_a_students_list_holds_only_their_own_bookings(
    api: Api, db: Db, owner: dict[str, Any]
) -> None:
    me = db.contact(cs_credits=1)
    mine = db.book(me, db.exam(exam_date=date.today() + timedelta(days=20)))["booking"]

    listed = api.get("/api/bookings/list", params={**_identity(me), "filter": "all"})

    assert listed.status_code == 200
    assert [b["id"] for b in listed.json()["data"]["bookings"]] == [mine["id"]]


STUDENT_ENDPOINTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/user/login", {}),
    ("POST", "/api/mock-exams/validate-credits", {"mock_type": "Clinical Skills"}),
    ("GET", "/api/bookings/list", {}),
    ("POST", "/api/bookings/create", {"dominant_hand": "right"}),
]


@pytest.mark.parametrize(("method", "path", "extra"), STUDENT_ENDPOINTS)
def test_a_student_id_with_the_wrong_email_answers_like_an_unknown_one(
    api: Api, db: Db, method: str, path: str, extra: dict[str, Any]
) -> None:
    """Whether a student id (or an email) is someone's cannot be found out: the right
    id with another email answers exactly as an id nobody has, and the right email
    with another id as an email nobody has. Nothing is written."""
    someone = db.contact(cs_credits=2)
    exam = db.exam()
    extra = {**extra, "mock_exam_id": str(exam["id"])} if "create" in path else extra
    before = _database(db)

    def ask(student_id: str, email: str) -> requests.Response:
        fields = {"student_id": student_id, "email": email, **extra}
        if method == "GET":
            return api.get(path, params=fields)
        return api.post(path, fields)

    for real, unknown in (
        (
            ask(someone["student_id"], "not.them@example.com"),
            ask("NOBODY1", "not.them@example.com"),
        ),
        (ask("NOTTHEIRS1", someone["email"]), ask("NOTTHEIRS1", "nobody@example.com")),
    ):
        assert real.status_code in (404,), real.text
        assert _answer(real) == _answer(unknown)
    assert _database(db) == before
