"""Every student endpoint over HTTP, the DEMO001 journey end to end, and every error
code an endpoint can answer with."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from lib.models import ATTENDING_LOCATIONS
from tests.api.conftest import Api, document_accepts
from tests.helpers import Db

DEMO = {"student_id": "DEMO001", "email": "demo001@example.com"}


@pytest.fixture
def demo(db: Db) -> dict[str, Any]:
    return db.contact(
        student_id="DEMO001",
        email="demo001@example.com",
        firstname="Demo",
        lastname="Student",
        sj_credits=5,
        cs_credits=5,
        sjmini_credits=5,
        mock_discussion_token=5,
        shared_mock_credits=5,
    )


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    return dict(body["error"])


def test_demo_student_journey(api: Api, db: Db, demo: dict[str, Any]) -> None:
    exam = db.exam(mock_type="Clinical Skills", capacity=8)

    login = api.post("/api/user/login", {"student_id": "demo001", "email": "Demo001@Example.com"})
    assert login.status_code == 200
    assert login.json()["data"]["credits"]["cs_credits"] == 5
    assert login.json()["data"]["id"] == str(demo["id"])

    check = api.post("/api/mock-exams/validate-credits", {**DEMO, "mock_type": "Clinical Skills"})
    assert check.json()["data"]["eligible"] is True
    assert check.json()["data"]["credit_breakdown"] == {"specific_credits": 5, "shared_credits": 5}

    sessions = api.get(
        "/api/mock-exams/available?mock_type=Clinical%20Skills&include_capacity=true"
    )
    assert [s["id"] for s in sessions.json()["data"]] == [str(exam["id"])]
    assert sessions.json()["data"][0]["available_slots"] == 8

    key = str(uuid.uuid4())
    created = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(exam["id"]), "dominant_hand": "right"},
        headers={"Idempotency-Key": key},
    )
    assert created.status_code == 201, created.text
    booking = created.json()["data"]
    assert booking["credits_after"]["cs_credits"] == 4
    assert booking["booking_id"].startswith("BK-")

    replay = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(exam["id"]), "dominant_hand": "right"},
        headers={"Idempotency-Key": key},
    )
    assert replay.status_code == 200
    assert replay.json()["data"]["id"] == booking["id"]
    assert db.credits(demo)["cs_credits"] == 4

    capacity = api.get(f"/api/mock-exams/{exam['id']}/capacity")
    assert capacity.json()["data"]["total_bookings"] == 1
    assert capacity.json()["data"]["available_slots"] == 7

    listed = api.get("/api/bookings/list", params={**DEMO, "filter": "upcoming"})
    assert [b["id"] for b in listed.json()["data"]["bookings"]] == [booking["id"]]
    assert listed.json()["data"]["credits"]["cs_credits"] == 4

    for ref in (booking["id"], booking["booking_id"]):
        one = api.get(f"/api/bookings/{ref}", params=DEMO)
        assert one.status_code == 200 and one.json()["data"]["id"] == booking["id"]

    cancelled = api.delete(f"/api/bookings/{booking['id']}", DEMO)
    assert cancelled.status_code == 200
    assert cancelled.json()["data"]["credits_restored"] == 1
    assert cancelled.json()["data"]["credits"]["cs_credits"] == 5
    again = api.delete(f"/api/bookings/{booking['id']}", DEMO)
    assert again.json()["data"]["already_cancelled"] is True
    assert db.credits(demo)["cs_credits"] == 5

    listed = api.get("/api/bookings/list", params={**DEMO, "filter": "cancelled"})
    assert [b["id"] for b in listed.json()["data"]["bookings"]] == [booking["id"]]

    rebooked = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(exam["id"]), "dominant_hand": "left"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert rebooked.status_code == 201
    assert rebooked.json()["data"]["id"] != booking["id"]
    assert db.credits(demo)["cs_credits"] == 4
    assert db.seats(exam) == 1 == db.held_seats(exam)


def test_available_hides_full_sessions_unless_asked(api: Api, db: Db) -> None:
    full = db.exam(capacity=1, exam_date=date.today() + timedelta(days=5))
    db.booking(db.contact(), full)
    open_one = db.exam(capacity=4, exam_date=date.today() + timedelta(days=6))
    db.booking(db.contact(), open_one)

    default = api.get("/api/mock-exams/available", params={"mock_type": "Clinical Skills"})
    everything = api.get(
        "/api/mock-exams/available",
        params={"mock_type": "Clinical Skills", "include_capacity": "true"},
    )

    assert [s["id"] for s in default.json()["data"]] == [str(open_one["id"])]
    statuses = {s["id"]: s["status"] for s in everything.json()["data"]}
    assert statuses == {str(full["id"]): "full", str(open_one["id"]): "limited"}


def test_login_unknown_student_without_hubspot_is_not_found(api: Api) -> None:
    response = api.post("/api/user/login", {"student_id": "NOBODY1", "email": "no@example.com"})

    assert response.status_code == 404
    assert _error(response)["code"] == "STUDENT_NOT_FOUND"


# ------------------------------------------------------------------ every rejection code


def test_booking_rejections_over_http(api: Api, db: Db, demo: dict[str, Any]) -> None:
    day = date.today() + timedelta(days=12)
    cases: list[tuple[dict[str, Any], int, str]] = []
    full = db.exam(capacity=1, exam_date=day - timedelta(days=1))
    db.booking(db.contact(), full)
    cases.append(({"mock_exam_id": str(full["id"]), "dominant_hand": "right"}, 409, "EXAM_FULL"))
    inactive = db.exam(is_active="false")
    cases.append(
        ({"mock_exam_id": str(inactive["id"]), "dominant_hand": "right"}, 409, "EXAM_NOT_ACTIVE")
    )
    cases.append(
        ({"mock_exam_id": str(uuid.uuid4()), "dominant_hand": "right"}, 404, "EXAM_NOT_FOUND")
    )
    cs = db.exam(exam_date=day)
    cases.append(({"mock_exam_id": str(cs["id"])}, 400, "INVALID_INPUT"))
    discussion = db.exam(mock_type="Mock Discussion", prerequisite_exam_ids=["999999"])
    cases.append(({"mock_exam_id": str(discussion["id"])}, 403, "PREREQUISITE_NOT_MET"))
    for body, status, code in cases:
        response = api.post("/api/bookings/create", {**DEMO, **body})
        assert (response.status_code, _error(response)["code"]) == (status, code), body

    first = api.post(
        "/api/bookings/create", {**DEMO, "mock_exam_id": str(cs["id"]), "dominant_hand": "right"}
    )
    assert first.status_code == 201
    twin = db.exam(exam_date=day, location="Calgary")
    duplicate = api.post(
        "/api/bookings/create", {**DEMO, "mock_exam_id": str(twin["id"]), "dominant_hand": "right"}
    )
    assert (duplicate.status_code, _error(duplicate)["code"]) == (409, "DUPLICATE_BOOKING")

    broke = db.contact()
    poor = api.post(
        "/api/bookings/create",
        {
            "student_id": broke["student_id"],
            "email": broke["email"],
            "mock_exam_id": str(twin["id"]),
            "dominant_hand": "right",
        },
    )
    assert (poor.status_code, _error(poor)["code"]) == (402, "INSUFFICIENT_CREDITS")

    stranger = api.post(
        "/api/bookings/create",
        {
            "student_id": "GHOST1",
            "email": "ghost@example.com",
            "mock_exam_id": str(twin["id"]),
            "dominant_hand": "right",
        },
    )
    assert (stranger.status_code, _error(stranger)["code"]) == (404, "CONTACT_NOT_FOUND")

    key = str(uuid.uuid4())
    keyed = db.exam(exam_date=day + timedelta(days=1))
    first_use = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(keyed["id"]), "dominant_hand": "right"},
        headers={"Idempotency-Key": key},
    )
    assert first_use.status_code == 201
    other = db.exam(exam_date=day + timedelta(days=3))
    reused = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(other["id"]), "dominant_hand": "right"},
        headers={"Idempotency-Key": key},
    )
    assert (reused.status_code, _error(reused)["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    # Same exam, one other value: a different request, not a replay of the first.
    other_hand = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(keyed["id"]), "dominant_hand": "left"},
        headers={"Idempotency-Key": key},
    )
    assert (other_hand.status_code, _error(other_hand)["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    # The history booking on the full exam, and DEMO001's two: every rejection wrote nothing.
    assert db.count("hubspot_bookings") == 3


def test_cancel_rejections_over_http(api: Api, db: Db, demo: dict[str, Any]) -> None:
    done = db.booking(demo, db.exam(), is_active="Completed")
    response = api.delete(f"/api/bookings/{done['id']}", DEMO)
    assert (response.status_code, _error(response)["code"]) == (409, "BOOKING_NOT_CANCELLABLE")

    missing = api.delete(f"/api/bookings/{uuid.uuid4()}", DEMO)
    assert (missing.status_code, _error(missing)["code"]) == (404, "BOOKING_NOT_FOUND")


def test_another_students_booking_is_indistinguishable_from_a_missing_one(
    api: Api, db: Db, demo: dict[str, Any]
) -> None:
    owner = db.contact(cs_credits=1)
    exam = db.exam()
    booking = db.book(owner, exam)["booking"]
    db.conn.execute(
        "update hubspot_sync.hubspot_bookings set hubspot_id = '777001' where id = %s",
        (booking["id"],),
    )
    nowhere = api.get(f"/api/bookings/{uuid.uuid4()}", params=DEMO)

    for ref in (booking["id"], "777001", booking["booking_id"]):
        peek = api.get(f"/api/bookings/{ref}", params=DEMO)
        steal = api.delete(f"/api/bookings/{ref}", DEMO)
        for response in (peek, steal):
            assert response.status_code == nowhere.status_code == 404
            error = _error(response)
            error.pop("request_id")
            expected = _error(nowhere)
            expected.pop("request_id")
            assert error == expected
    assert db.one(
        "select is_active from hubspot_sync.hubspot_bookings where id = %s", booking["id"]
    ) == {"is_active": "Active"}
    assert db.credits(owner)["cs_credits"] == 0


@pytest.mark.parametrize(
    ("stored", "answered"),
    [("true", "right"), ("Right", "right"), ("false", "left"), ("Left", "left"), ("?", None)],
)
def test_a_legacy_bookings_dominant_hand_is_answered_as_right_or_left(
    api: Api, db: Db, demo: dict[str, Any], stored: str, answered: str | None
) -> None:
    """The replaced system stored the hand as HubSpot's boolean or capitalised; the API
    documents right / left / null (found by the fuzzer, reliability/fuzz.py)."""
    booking = db.booking(demo, db.exam(), dominant_hand=stored)

    one = api.get(f"/api/bookings/{booking['id']}", params=DEMO)
    listed = api.get("/api/bookings/list", params=DEMO)
    cancelled = api.delete(f"/api/bookings/{booking['id']}", DEMO)

    assert one.json()["data"]["dominant_hand"] == answered
    assert [b["dominant_hand"] for b in listed.json()["data"]["bookings"]] == [answered]
    assert cancelled.json()["data"]["dominant_hand"] == answered


# ------------------------------------------------------------------ bad input everywhere

ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/user/login", {}),
    ("POST", "/api/mock-exams/validate-credits", {"mock_type": "Clinical Skills"}),
    ("POST", "/api/bookings/create", {"mock_exam_id": "123"}),
]


@pytest.mark.parametrize(("method", "path", "extra"), ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "student_id"),
        ({"student_id": 12345, "email": "demo001@example.com"}, "student_id"),
        ({"student_id": "DEMO-001", "email": "demo001@example.com"}, "student_id"),
        ({"student_id": "DEMO001", "email": "not-an-email"}, "email"),
        ({"student_id": "DEMO001", "email": ["demo001@example.com"]}, "email"),
        ({"student_id": "D" * 5000, "email": "demo001@example.com"}, "student_id"),
    ],
)
def test_bad_bodies_are_400_with_the_field(
    api: Api,
    db: Db,
    demo: dict[str, Any],
    method: str,
    path: str,
    extra: dict[str, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    before = db.count("supabase_audit_log"), db.credits(demo)

    response = api.call(method, path, json={**extra, **body})

    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["field"] == field
    assert "Traceback" not in response.text and "psycopg" not in response.text
    assert (db.count("supabase_audit_log"), db.credits(demo)) == before


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"student_id": "DEMO-001"}, "student_id", "must be letters and digits only, like DEMO001"),
        ({"email": "not-an-email"}, "email", "must be an email address: a name, an @ and a domain"),
        (
            {"mock_exam_id": "exam_1"},
            "mock_exam_id",
            "must be a session id: letters, digits and dashes",
        ),
        ({"dominant_hand": "up"}, "dominant_hand", "must be right or left"),
    ],
)
def test_a_refused_value_is_explained_in_words_not_a_regular_expression(
    api: Api, demo: dict[str, Any], change: dict[str, str], field: str, says: str
) -> None:
    """Both frontends show an error's message as it comes: pydantic's own said
    "String should match pattern '^[^@\\s\\x00-\\x1f...'" for a mistyped email."""
    body = {**DEMO, "mock_exam_id": str(uuid.uuid4()), "dominant_hand": "right", **change}

    response = api.post("/api/bookings/create", body)

    assert response.status_code == 400, response.text
    error = _error(response)
    assert (error["field"], error["message"]) == (field, f"{field}: {says}")
    assert error["details"] == [{"field": field, "message": says}]
    assert "pattern" not in response.text and "Value error" not in response.text


@pytest.mark.parametrize(
    "path", ["/api/user/login", "/api/mock-exams/validate-credits", "/api/bookings/create"]
)
def test_malformed_json_and_wrong_media_type(api: Api, path: str) -> None:
    broken = api.post(path, data="{not json", headers={"Content-Type": "application/json"})
    assert (broken.status_code, _error(broken)["code"]) == (400, "INVALID_JSON")
    array = api.post(path, data="[1, 2]", headers={"Content-Type": "application/json"})
    assert (array.status_code, _error(array)["code"]) == (400, "INVALID_JSON")
    form = api.post(
        path, data="student_id=X", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (form.status_code, _error(form)["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


def _nested(depth: int, opening: str, closing: str, inner: str = "1") -> str:
    return opening * depth + inner + closing * depth


@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"a":', "}")])
def test_a_body_nested_1500_deep_is_invalid_json_not_a_500(
    api: Api, demo: dict[str, Any], opening: str, closing: str
) -> None:
    """json.loads raised RecursionError near 1,000 levels: a 500 on every JSON endpoint
    (issue 15 item 4; each endpoint in tests/security/test_limits.py). Bodies deeper
    than lib.http.MAX_JSON_DEPTH are refused before json.loads sees them."""
    response = api.post(
        "/api/user/login",
        data=_nested(1500, opening, closing),
        headers={"Content-Type": "application/json"},
    )

    error = _error(response)
    assert (response.status_code, error["code"]) == (400, "INVALID_JSON")
    assert "64 levels" in error["message"]


def test_a_body_nested_64_deep_is_parsed_and_65_is_not(api: Api, demo: dict[str, Any]) -> None:
    """The limit counts the body's own object: 63 more levels inside a field are fine."""
    fields = ", ".join(f'"{k}": "{v}"' for k, v in DEMO.items())
    for depth, status in ((63, 200), (64, 400)):
        body = "{" + fields + ', "extra": ' + _nested(depth, "[", "]") + "}"
        response = api.post(
            "/api/user/login", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == status, (depth, response.text)
    too_deep = _error(response)
    assert too_deep["code"] == "INVALID_JSON"


def test_brackets_inside_strings_do_not_count_as_nesting(api: Api, demo: dict[str, Any]) -> None:
    text = "[" * 2000 + '"{' * 500 + "\\" + "{" * 500
    response = api.post("/api/user/login", {**DEMO, "extra": text, "more": [text, {"x": text}]})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/api/user/login", "/api/bookings/create"])
def test_huge_body_is_413(api: Api, path: str) -> None:
    response = api.post(path, {"student_id": "DEMO001", "email": "a@b.co", "pad": "x" * 100_000})

    assert (response.status_code, _error(response)["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_unknown_mock_type_and_bad_query_values(api: Api, demo: dict[str, Any]) -> None:
    assert (
        _error(api.get("/api/mock-exams/available", params={"mock_type": "Dentistry"}))["field"]
        == "mock_type"
    )
    assert _error(api.get("/api/mock-exams/available"))["field"] == "mock_type"
    bad_flag = api.get(
        "/api/mock-exams/available", params={"mock_type": "Mini-mock", "include_capacity": "maybe"}
    )
    assert _error(bad_flag)["field"] == "include_capacity"
    for params, field in (
        ({**DEMO, "filter": "everything"}, "filter"),
        ({**DEMO, "page": "0"}, "page"),
        ({**DEMO, "limit": "1000"}, "limit"),
        ({**DEMO, "page": "two"}, "page"),
        ({"email": DEMO["email"]}, "student_id"),
    ):
        response = api.get("/api/bookings/list", params=params)
        assert (response.status_code, _error(response)["field"]) == (400, field), params


@pytest.mark.parametrize(
    "email",
    [
        "demo001@example.com",
        " Demo001@Example.com ",
        "a@b.c",
        "ab",
        "",
        "demo001",
        "demo001@example",
        "@example.com",
        "demo 001@example.com",
        "x@y.z" + "z" * 250,
        # Control characters (issue 15 item 8): the document allowed them and the API
        # refused a NUL; now neither takes any. White space around is trimmed by both
        # alike, whichever regex engine reads the document.
        "demo\x00001@example.com",
        "demo001\x01@example.com",
        "demo001@example.com\x7f",
        "demo\x9f001@example.com",
        "\x1cdemo001@example.com",
        "demo001@example.com\x85",
        "\u3000demo001@example.com",
        "\ufeffdemo001@example.com",
    ],
)
def test_the_document_and_the_api_agree_on_an_email(
    api: Api, demo: dict[str, Any], email: str
) -> None:
    """The document once allowed any email up to 254 characters, and control
    characters, so the fuzzer's valid requests were refused (reliability/fuzz.py); what
    it accepts, the API must."""
    from tests.api.conftest import SPEC

    schema = SPEC["paths"]["/api/bookings/list"]["get"]["parameters"][1]["schema"]
    response = api.get("/api/bookings/list", params={**DEMO, "email": email})

    refused = response.status_code == 400 and _error(response)["field"] == "email"
    assert refused is not document_accepts(schema, email), response.text


@pytest.mark.parametrize(
    "student_id",
    ["DEMO001", " demo001 ", "\x85DEMO001\u3000", "\ufeffDEMO001", "\x1cDEMO001", "DEMO 001", ""],
)
def test_the_document_and_the_api_agree_on_a_student_id(
    api: Api, demo: dict[str, Any], student_id: str
) -> None:
    """White space around is trimmed by the API (Unicode's White_Space); the document's
    `\\s` was another set (U+FEFF in ECMA-262, U+001C-U+001F in Python), so the fuzzer
    sent ids the document allowed and the API refused. The document now spells the
    set out."""
    from tests.api.conftest import SPEC

    schema = SPEC["components"]["schemas"]["StudentId"]
    response = api.get("/api/bookings/list", params={**DEMO, "student_id": student_id})

    refused = response.status_code == 400 and _error(response)["field"] == "student_id"
    assert refused is not document_accepts(schema, student_id), response.text


@pytest.mark.parametrize(
    "exam_id",
    [
        "1f0e8c9a-0d3b-4c62-9a53-3f1a4a8b2f10",
        "35123456789",
        "a-b",
        "a_b",
        "é",
        "x" * 65,
        "x" * 64,
        " 35123456789\u2028",
        "\ufeff35123456789",
    ],
)
def test_the_document_and_the_api_agree_on_an_exam_id(
    api: Api, demo: dict[str, Any], exam_id: str
) -> None:
    """The document allowed any id up to 64 characters; the API takes letters, digits
    and hyphens (found by the fuzzer, reliability/fuzz.py)."""
    from urllib.parse import quote

    from tests.api.conftest import SPEC

    in_path = SPEC["paths"]["/api/mock-exams/{id}/capacity"]["get"]["parameters"][0]["schema"]
    capacity = api.get(f"/api/mock-exams/{quote(exam_id)}/capacity")
    in_body = SPEC["paths"]["/api/bookings/create"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["mock_exam_id"]
    create = api.post("/api/bookings/create", {**DEMO, "mock_exam_id": exam_id})

    refused = capacity.status_code == 400 and _error(capacity)["field"] == "id"
    assert refused is not document_accepts(in_path, exam_id), capacity.text
    refused = create.status_code == 400 and _error(create)["field"] == "mock_exam_id"
    assert refused is not document_accepts(in_body, exam_id), create.text


@pytest.mark.parametrize("key", ["k-1", "a b", "é", "~" * 255, "x" * 256, "{x}"])
def test_the_document_and_the_api_agree_on_an_idempotency_key(
    api: Api, db: Db, demo: dict[str, Any], key: str
) -> None:
    """The document allowed any key of 1-255 characters; the API takes printable
    ASCII without spaces (found by the fuzzer, reliability/fuzz.py)."""
    from tests.api.conftest import SPEC

    parameters = SPEC["paths"]["/api/bookings/create"]["post"]["parameters"]
    schema = next(p for p in parameters if p["name"] == "Idempotency-Key")["schema"]
    exam = db.exam(mock_type="Clinical Skills")
    response = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(exam["id"]), "dominant_hand": "right"},
        headers={"Idempotency-Key": key.encode().decode("latin-1")},
    )

    refused = response.status_code == 400 and _error(response)["field"] == "idempotency_key"
    assert refused is not document_accepts(schema, key), response.text


@pytest.mark.parametrize(
    "location",
    [
        *ATTENDING_LOCATIONS,
        None,
        "RICHMOND HILL",
        "richmond-hill",
        " calgary",
        "Mississauga - B9",
        "toronto",
        "",
    ],
)
def test_the_document_and_the_api_agree_on_an_attending_location(
    api: Api, db: Db, demo: dict[str, Any], location: str | None
) -> None:
    """The document took any string and the API only some (issue 15 item 8): it is now
    an enum of the spellings the API takes, exactly as spelt, and nothing else. (A
    Clinical Skills booking: the location is optional there, so only its spelling
    decides.)"""
    from tests.api.conftest import SPEC

    schema = SPEC["paths"]["/api/bookings/create"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["attending_location"]
    exam = db.exam(mock_type="Clinical Skills")
    response = api.post(
        "/api/bookings/create",
        {
            **DEMO,
            "mock_exam_id": str(exam["id"]),
            "dominant_hand": "right",
            "attending_location": location,
        },
    )

    refused = response.status_code == 400 and _error(response)["field"] == "attending_location"
    assert refused is not document_accepts(schema, location), response.text
    assert refused or response.status_code == 201, response.text


def test_the_locations_are_the_documents_and_hubspots() -> None:
    """One list: the model's, the document's enum, and the slugs and names the sync
    maps between (lib/hubspot/mapping.py)."""
    from lib.hubspot.mapping import LOCATION_NAMES
    from tests.api.conftest import SPEC

    schema = SPEC["paths"]["/api/bookings/create"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["attending_location"]
    assert schema["enum"] == [*ATTENDING_LOCATIONS, None]
    assert set(ATTENDING_LOCATIONS) == set(LOCATION_NAMES) | set(LOCATION_NAMES.values())


def test_a_nul_in_a_booking_id_is_a_400_naming_the_id(api: Api, demo: dict[str, Any]) -> None:
    """PostgreSQL text cannot hold NUL; the 400 named the database's parameter
    (`ref`, `booking_ref`) rather than the path's id (reliability/fuzz.py). The
    document says so too (issue 15 item 8)."""
    from tests.api.conftest import SPEC

    for response in (
        api.get("/api/bookings/BK%00X", params=DEMO),
        api.delete("/api/bookings/BK%00X", DEMO),
    ):
        assert (response.status_code, _error(response)["field"]) == (400, "id")
    schema = SPEC["paths"]["/api/bookings/{id}"]["parameters"][0]["schema"]
    assert not document_accepts(schema, "BK\x00X")
    assert document_accepts(schema, "BK-20990101-ZZZZZZ")


@pytest.mark.parametrize("reason", ["changed plans", "", "changed\x00plans"])
def test_the_document_and_the_api_agree_on_a_cancellation_reason(
    api: Api, demo: dict[str, Any], reason: str
) -> None:
    """A NUL in the reason was valid to the document and a 400 (issue 15 item 8)."""
    from tests.api.conftest import SPEC

    schema = SPEC["paths"]["/api/bookings/{id}"]["delete"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["reason"]
    response = api.delete("/api/bookings/BK-20990101-ZZZZZZ", {**DEMO, "reason": reason})

    refused = response.status_code == 400 and _error(response)["field"] == "reason"
    assert refused is not document_accepts(schema, reason), response.text
    assert refused or response.status_code == 404, response.text


@pytest.mark.parametrize("exam_id", ["not a uuid!", "x" * 65, "../../etc/passwd"])
def test_bad_ids_in_the_path(api: Api, exam_id: str) -> None:
    response = api.get(f"/api/mock-exams/{exam_id}/capacity", check=False)

    assert response.status_code in (400, 404)
    if response.headers["Content-Type"].startswith("application/json"):
        assert response.json()["success"] is False


def test_unknown_ids_are_404(api: Api, demo: dict[str, Any]) -> None:
    capacity = api.get(f"/api/mock-exams/{uuid.uuid4()}/capacity")
    assert (capacity.status_code, _error(capacity)["code"]) == (404, "EXAM_NOT_FOUND")
    booking = api.get("/api/bookings/BK-20990101-ZZZZZZ", params=DEMO)
    assert (booking.status_code, _error(booking)["code"]) == (404, "BOOKING_NOT_FOUND")


def test_bad_idempotency_key_is_400(api: Api, db: Db, demo: dict[str, Any]) -> None:
    exam = db.exam()
    response = api.post(
        "/api/bookings/create",
        {**DEMO, "mock_exam_id": str(exam["id"]), "dominant_hand": "right"},
        headers={"Idempotency-Key": "x" * 300},
    )
    assert (response.status_code, _error(response)["field"]) == (400, "idempotency_key")
    assert db.count("hubspot_bookings") == 0


# ------------------------------------------------------------------ protocol


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    response = api.call("GET", "/api/bookings/create", check=False)

    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert _error(response)["code"] == "METHOD_NOT_ALLOWED"


def test_cors_preflight(api: Api) -> None:
    response = api.call(
        "OPTIONS",
        "/api/bookings/create",
        check=False,
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]


def test_unknown_api_path_is_a_json_404(api: Api) -> None:
    response = api.call("GET", "/api/nothing/here", check=False)

    assert response.status_code == 404
    assert response.json()["success"] is False


def test_request_id_is_echoed_when_sane(api: Api) -> None:
    mine = api.get("/api/health", headers={"X-Request-Id": "trace-12345678"})
    assert mine.headers["X-Request-Id"] == "trace-12345678"
    hostile = api.get("/api/health", headers={"X-Request-Id": "<script>"})
    assert hostile.headers["X-Request-Id"] != "<script>"


def test_health_when_everything_is_up(api: Api) -> None:
    response = api.get("/api/health")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "ok"
    assert response.json()["data"]["dependencies"]["database"]["status"] == "ok"


def test_openapi_document_is_served(api: Api) -> None:
    response = api.call("GET", "/openapi.yaml", check=False)

    assert response.status_code == 200
    assert "openapi: 3.1.0" in response.text


def test_a_flood_from_one_client_is_limited_without_hurting_others(
    api: Api, api_server: str, demo: dict[str, Any]
) -> None:
    from lib.limits import LOGIN

    statuses = [api.post("/api/user/login", DEMO).status_code for _ in range(LOGIN.limit + 1)]
    limited = api.post("/api/user/login", DEMO)
    neighbour = Api(api_server)
    try:
        other = neighbour.post("/api/user/login", DEMO)
    finally:
        neighbour.session.close()

    assert statuses == [200] * LOGIN.limit + [429]
    assert limited.status_code == 429
    assert _error(limited)["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert other.status_code == 200


def test_booking_lookups_and_cancels_need_the_owner_fields(api: Api, demo: dict[str, Any]) -> None:
    some_id = str(uuid.uuid4())
    no_identity = api.get(f"/api/bookings/{some_id}")
    assert (no_identity.status_code, _error(no_identity)["field"]) == (400, "student_id")
    bad_email = api.get(f"/api/bookings/{some_id}", params={"student_id": "DEMO001", "email": "x"})
    assert _error(bad_email)["field"] == "email"
    broken = api.delete(
        f"/api/bookings/{some_id}", data="{oops", headers={"Content-Type": "application/json"}
    )
    assert (broken.status_code, _error(broken)["code"]) == (400, "INVALID_JSON")
    long_reason = api.delete(f"/api/bookings/{some_id}", {**DEMO, "reason": "r" * 501})
    assert (long_reason.status_code, _error(long_reason)["field"]) == (400, "reason")
    too_long = api.get("/api/bookings/" + "b" * 201, params=DEMO)
    assert (too_long.status_code, _error(too_long)["field"]) == (400, "id")
