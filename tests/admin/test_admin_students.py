"""The admin's look-ups and actions on students and bookings, over HTTP against the
real functions: search, a student with bookings and credit history, credit
adjustments (all or nothing, never below zero, audited, seen by the student at once),
a booking by any of its ids, and cancelling on a student's behalf with or without
refund."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lib.log import _JsonFormatter
from tests.admin.conftest import ADMIN_EMAIL, AdminApi, admin_token
from tests.helpers import CREDIT_KINDS, Db


def data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    return dict(body["error"])


def login(admin: AdminApi, contact: dict[str, Any]) -> dict[str, int]:
    """The student's own login response: what the student sees."""
    response = admin.post(
        "/api/user/login", {"student_id": contact["student_id"], "email": contact["email"]}
    )
    credits: dict[str, int] = data(response)["credits"]
    return credits


def another_day(db: Db, days: int = 30) -> dict[str, Any]:
    """An exam on a date of its own (one booking per student, date and type)."""
    return db.exam(mock_type="Clinical Skills", exam_date=date.today() + timedelta(days=days))


@pytest.fixture
def student(db: Db) -> dict[str, Any]:
    return db.contact(
        student_id="DEMO001",
        email="demo001@example.com",
        firstname="Demo",
        lastname="Student",
        **dict.fromkeys(CREDIT_KINDS, 5),
    )


# ---------------------------------------------------------------- who am I


def test_me_names_the_signed_in_admin(admin: AdminApi) -> None:
    me = data(admin.get("/api/admin/me"))
    assert me == {
        "user_id": "00000000-0000-4000-8000-00000000ad01",
        "email": ADMIN_EMAIL,
        "role": "admin",
    }


# ---------------------------------------------------------------- search


def test_search_finds_a_student_by_student_id_or_email(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    db.contact(student_id="DEMO002", email="demo002@example.com")
    by_id = data(admin.get("/api/admin/search", params={"q": "demo001"}))
    assert [s["id"] for s in by_id["students"]] == [str(student["id"])]
    assert by_id["students"][0]["credits"]["sj_credits"] == 5
    by_email = data(admin.get("/api/admin/search", params={"q": " Demo001@Example.com "}))
    assert [s["student_id"] for s in by_email["students"]] == ["DEMO001"]
    by_prefix = data(admin.get("/api/admin/search", params={"q": "demo00"}))
    assert [s["student_id"] for s in by_prefix["students"]] == ["DEMO001", "DEMO002"]
    assert by_id["bookings"] == []


def test_search_finds_a_booking_by_uuid_hubspot_id_or_code(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    exam = db.exam(mock_type="Clinical Skills")
    made = db.book(student, exam)["booking"]
    legacy = db.booking(student, another_day(db), hubspot_id="777001")
    for query, expected in (
        (made["id"], made["id"]),
        (made["booking_id"], made["id"]),
        ("777001", str(legacy["id"])),
        (legacy["booking_id"], str(legacy["id"])),
    ):
        found = data(admin.get("/api/admin/search", params={"q": query}))
        assert [b["id"] for b in found["bookings"]] == [expected], query


def test_search_finds_nothing_or_refuses_a_too_short_query(admin: AdminApi, db: Db) -> None:
    assert data(admin.get("/api/admin/search", params={"q": "NOBODY9"})) == {
        "students": [],
        "bookings": [],
    }
    assert error(admin.get("/api/admin/search", params={"q": "x"}), 400)["field"] == "q"
    assert error(admin.get("/api/admin/search"), 400)["field"] == "q"


def test_a_search_matches_percent_underscore_and_backslash_as_themselves(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    """`%%` passed the length check and find_students dropped the `%`s: the empty
    prefix, every student (issue 15 item 8). They are matched literally now
    (supabase/migrations/20251212000200_find_students_literal_prefix.sql)."""
    for student_id, email in (
        ("PCT1", "pct%1@example.com"),
        ("UND1", "a_b@example.com"),
        ("AXB1", "axb@example.com"),
        ("BSL1", "back\\slash@example.com"),
    ):
        db.contact(student_id=student_id, email=email)
    for query, found in (
        ("%%", []),
        ("__", []),
        ("pct%", ["PCT1"]),
        ("a_", ["UND1"]),
        ("ax", ["AXB1"]),
        ("back\\", ["BSL1"]),
    ):
        answer = data(admin.get("/api/admin/search", params={"q": query}))
        assert [s["student_id"] for s in answer["students"]] == found, query


@pytest.mark.parametrize(
    "q", ["ab", " a", "a ", " a ", "\u3000a\u3000", "\x85a", "a\x85b", "%%", "x" * 255, "ab\x00c"]
)
def test_the_document_and_the_api_agree_on_a_search(admin: AdminApi, db: Db, q: str) -> None:
    """The document's minimum length counted white space the API trims first (issue 15
    item 8): it now asks for two characters that are not white space."""
    from tests.api.conftest import SPEC, document_accepts

    schema = SPEC["paths"]["/api/admin/search"]["get"]["parameters"][0]["schema"]
    response = admin.get("/api/admin/search", params={"q": q})

    refused = response.status_code == 400 and error(response, 400)["field"] == "q"
    assert refused is not document_accepts(schema, q), response.text
    assert refused or response.status_code == 200, response.text


def test_a_nul_in_a_search_or_a_booking_id_is_a_400_naming_the_clients_field(
    admin: AdminApi, db: Db
) -> None:
    """PostgreSQL text cannot hold NUL; the 400 named the database's parameter
    (`query`, `ref`) rather than what the client sent (found by the fuzzer,
    reliability/fuzz.py)."""
    search = admin.get("/api/admin/search", params={"q": "ab\x00c"})
    assert (error(search, 400)["code"], error(search, 400)["field"]) == ("INVALID_INPUT", "q")
    for method in ("GET", "DELETE"):
        response = admin.call(method, "/api/admin/bookings/BK%00X", json={"reason": "typo"})
        assert error(response, 400)["field"] == "id", method


@pytest.mark.parametrize("ref", ["BK-1", "\x1f", "\x1c ", " \t", "\ufeff", "BK\x00X"])
def test_the_document_and_the_api_agree_on_a_booking_id(admin: AdminApi, db: Db, ref: str) -> None:
    """The id is trimmed by Python's str.strip, whose white space has U+001C-U+001F, and
    cannot hold a NUL: the document took an id of those alone, which the API refused
    (found by the fuzzer, issue 15 item 8)."""
    from urllib.parse import quote

    from tests.api.conftest import SPEC, document_accepts

    schema = SPEC["paths"]["/api/admin/bookings/{id}"]["parameters"][0]["schema"]
    response = admin.get(f"/api/admin/bookings/{quote(ref)}")

    refused = response.status_code == 400 and error(response, 400)["field"] == "id"
    assert refused is not document_accepts(schema, ref), response.text
    assert refused or response.status_code == 404, response.text


# ---------------------------------------------------------------- one student


def test_a_student_with_bookings_and_credit_history(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    exam = db.exam(mock_type="Clinical Skills")
    booked = db.book(student, exam)["booking"]

    detail = data(admin.get(f"/api/admin/students/{student['id']}"))

    assert detail["contact"]["student_id"] == "DEMO001"
    assert detail["contact"]["credits"]["cs_credits"] == 4
    assert [b["id"] for b in detail["bookings"]] == [booked["id"]]
    debit = detail["credit_history"][0]
    assert debit["by"] == "student:DEMO001"
    assert debit["before"] == {"cs_credits": 5}
    assert debit["after"] == {"cs_credits": 4}


def test_an_unknown_student_is_404_and_a_malformed_id_400(admin: AdminApi, db: Db) -> None:
    missing = admin.get("/api/admin/students/00000000-0000-4000-8000-000000000999")
    assert error(missing, 404)["code"] == "CONTACT_NOT_FOUND"
    assert error(admin.get("/api/admin/students/DEMO001"), 400)["field"] == "id"


# ---------------------------------------------------------------- credits


def test_an_adjustment_shows_in_the_login_at_once_and_the_audit_log_says_who_when_why(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    assert login(admin, student)["sj_credits"] == 5

    changed = data(
        admin.post(
            f"/api/admin/students/{student['id']}/credits",
            {
                "deltas": {"sj_credits": 3, "shared_mock_credits": -2, "cs_credits": 0},
                "reason": "Refund for the 3 Dec outage",
            },
        )
    )

    assert changed["applied"] == {"sj_credits": 3, "shared_mock_credits": -2}
    assert changed["contact"]["credits"] == {
        "sj_credits": 8,
        "cs_credits": 5,
        "sjmini_credits": 5,
        "mock_discussion_token": 5,
        "shared_mock_credits": 3,
    }
    assert login(admin, student) == changed["contact"]["credits"]
    history = data(admin.get(f"/api/admin/students/{student['id']}"))["credit_history"]
    entry = history[0]
    assert entry["by"] == f"admin:{ADMIN_EMAIL}"
    assert entry["reason"] == "Refund for the 3 Dec outage"
    assert (
        before - timedelta(seconds=5)
        <= datetime.fromisoformat(entry["at"])
        <= (datetime.now(UTC) + timedelta(seconds=5))
    )
    assert entry["before"] == {"sj_credits": 5, "shared_mock_credits": 5}
    assert entry["after"] == {"sj_credits": 8, "shared_mock_credits": 3}


def test_an_adjustment_never_takes_a_balance_below_zero(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    refused = admin.post(
        f"/api/admin/students/{student['id']}/credits",
        {"deltas": {"sj_credits": 10, "cs_credits": -6}, "reason": "typo"},
    )
    assert error(refused, 409)["code"] == "CREDITS_WOULD_BE_NEGATIVE"
    # All or nothing: the +10 did not happen either, and nothing was audited.
    assert db.credits(student) == dict.fromkeys(CREDIT_KINDS, 5)
    history = data(admin.get(f"/api/admin/students/{student['id']}"))["credit_history"]
    assert [h["operation"] for h in history] == ["INSERT"]
    # Down to exactly zero is fine.
    zero = admin.post(
        f"/api/admin/students/{student['id']}/credits",
        {"deltas": {"cs_credits": -5}, "reason": "expired package"},
    )
    assert data(zero)["contact"]["credits"]["cs_credits"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deltas": {"sj_credits": 1}}, "reason"),
        ({"deltas": {"sj_credits": 1}, "reason": "  "}, "reason"),
        ({"deltas": {"sj_credits": 1}, "reason": "x" * 501}, "reason"),
        ({"deltas": {}, "reason": "nothing"}, "deltas"),
        ({"deltas": {"sj_credits": 0}, "reason": "nothing"}, "deltas"),
        ({"deltas": {"gold_credits": 1}, "reason": "unknown kind"}, "deltas"),
        ({"deltas": {"sj_credits": 1.5}, "reason": "fraction"}, "deltas.sj_credits"),
        ({"deltas": {"sj_credits": "2"}, "reason": "a string"}, "deltas.sj_credits"),
        ({"deltas": {"sj_credits": 10000}, "reason": "too many"}, "deltas.sj_credits"),
        ({"deltas": {"sj_credits": 1}, "reason": "extra", "admin": "me"}, "admin"),
    ],
)
def test_a_malformed_adjustment_is_400_naming_the_field(
    admin: AdminApi, db: Db, student: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = admin.post(f"/api/admin/students/{student['id']}/credits", body)
    assert error(response, 400)["field"] == field
    assert db.credits(student) == dict.fromkeys(CREDIT_KINDS, 5)


@pytest.mark.parametrize(
    "deltas",
    [
        {"sj_credits": 2},
        {"sj_credits": 2.0},
        {"sj_credits": -1.0, "cs_credits": 0},
        {"sj_credits": 0},
        {"sj_credits": 0.0, "cs_credits": 0},
        {},
        {"sj_credits": 2.5},
        {"sj_credits": True},
        {"sj_credits": "2"},
    ],
)
def test_the_document_and_the_api_agree_on_credit_deltas(
    admin: AdminApi, db: Db, student: dict[str, Any], deltas: dict[str, Any]
) -> None:
    """The document took an adjustment of zeros, which the API refuses, and 2.0, an
    integer to JSON Schema, which the API took strictly as not one (issue 15 item 8):
    the document now asks for a non-zero delta, and the API takes 2.0 as 2."""
    from tests.api.conftest import SPEC, document_accepts

    path = f"/api/admin/students/{student['id']}/credits"
    schema = SPEC["paths"]["/api/admin/students/{id}/credits"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    body = {"deltas": deltas, "reason": "agreement"}
    response = admin.post(path, body)

    refused = response.status_code == 400 and error(response, 400)["field"].startswith("deltas")
    assert refused is not document_accepts(schema, body), response.text
    assert refused or response.status_code == 200, response.text


@pytest.mark.parametrize(
    "reason", ["abc", "a b", "   ", "  ab  ", "\u3000ab\u3000", "\x85ab", "ab\x00c"]
)
def test_the_document_and_the_api_agree_on_a_reason(
    admin: AdminApi, db: Db, student: dict[str, Any], reason: str
) -> None:
    """The document's minimum length counted white space the API trims first."""
    from tests.api.conftest import SPEC, document_accepts

    path = f"/api/admin/students/{student['id']}/credits"
    schema = SPEC["components"]["schemas"]["AdminReason"]
    response = admin.post(path, {"deltas": {"sj_credits": 1}, "reason": reason})

    refused = response.status_code == 400 and error(response, 400)["field"] == "reason"
    assert refused is not document_accepts(schema, reason), response.text
    assert refused or response.status_code == 200, response.text


@pytest.mark.parametrize("reason", ["refund \\ud800", "refund \\u0000 ok"])
def test_text_postgresql_cannot_hold_is_400_not_500(
    admin: AdminApi, db: Db, student: dict[str, Any], reason: str
) -> None:
    """JSON's escapes can spell a lone surrogate or a NUL; neither is text PostgreSQL
    can store, so the answer is a 400 naming the field, and nothing changes."""
    # Written by hand: json.dumps would refuse, or escape the backslash.
    body = '{"deltas": {"sj_credits": 1}, "reason": "' + reason + '"}'
    response = admin.post(
        f"/api/admin/students/{student['id']}/credits",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert error(response, 400)["field"] == "reason"
    assert db.credits(student) == dict.fromkeys(CREDIT_KINDS, 5)


def test_an_adjustment_retried_with_its_idempotency_key_applies_once(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    path = f"/api/admin/students/{student['id']}/credits"
    body = {"deltas": {"sj_credits": 2}, "reason": "makeup exam"}
    key = {"Idempotency-Key": "adjust-7f3c"}

    first = admin.post(path, body, headers=key)
    again = admin.post(path, body, headers=key)  # the browser retrying a lost answer
    other = admin.post(path, {**body, "deltas": {"sj_credits": 3}}, headers=key)
    bad_key = admin.post(path, body, headers={"Idempotency-Key": "tab\there"})

    assert data(first) == data(again)
    assert db.credits(student)["sj_credits"] == 7  # 5 + 2, once
    assert error(other, 409)["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert error(bad_key, 400)["field"] == "idempotency_key"
    history = data(admin.get(f"/api/admin/students/{student['id']}"))["credit_history"]
    assert [h["operation"] for h in history] == ["UPDATE", "INSERT"]


def test_an_adjustment_for_an_unknown_student_is_404(admin: AdminApi, db: Db) -> None:
    response = admin.post(
        "/api/admin/students/00000000-0000-4000-8000-000000000999/credits",
        {"deltas": {"sj_credits": 1}, "reason": "ghost"},
    )
    assert error(response, 404)["code"] == "CONTACT_NOT_FOUND"


# ---------------------------------------------------------------- bookings


def test_a_booking_by_uuid_hubspot_id_or_code_with_owner_and_history(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    exam = db.exam(mock_type="Clinical Skills")
    booked = db.book(student, exam)["booking"]
    db.conn.execute(
        "update hubspot_sync.hubspot_bookings set hubspot_id = '880001' where id = %s",
        (booked["id"],),
    )
    for ref in (booked["id"], "880001", booked["booking_id"]):
        found = data(admin.get(f"/api/admin/bookings/{ref}"))
        assert found["booking"]["id"] == booked["id"], ref
        assert found["contact"]["id"] == str(student["id"])
        assert found["sync"] == {
            "hubspot_id": "880001",
            "hubspot_last_sync_at": None,
            "in_step": False,
        }
        assert [h["operation"] for h in found["history"]] == ["UPDATE", "INSERT"]
        assert found["history"][-1]["by"] == "student:DEMO001"
    assert error(admin.get("/api/admin/bookings/BK-20990101-ZZZZZZ"), 404)["code"] == (
        "BOOKING_NOT_FOUND"
    )


def test_cancel_on_the_students_behalf_with_refund(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    exam = db.exam(mock_type="Clinical Skills", capacity=3)
    booked = db.book(student, exam)["booking"]
    assert db.credits(student)["cs_credits"] == 4

    cancelled = data(
        admin.delete(
            f"/api/admin/bookings/{booked['booking_id']}", {"reason": "Student phoned in sick"}
        )
    )

    assert cancelled["booking"]["is_active"] == "Cancelled"
    assert cancelled["credits_restored"] == 1
    assert cancelled["already_cancelled"] is False
    assert cancelled["credits"]["cs_credits"] == 5
    assert db.seats(exam) == 0
    row = db.one("select * from hubspot_sync.hubspot_bookings where id = %s", booked["id"])
    assert row["token_refund_admin"] == ADMIN_EMAIL
    history = data(admin.get(f"/api/admin/bookings/{booked['id']}"))["history"]
    assert history[0]["by"] == f"admin:{ADMIN_EMAIL}"
    assert history[0]["reason"] == "Student phoned in sick"
    # Twice: nothing more happens.
    again = data(admin.delete(f"/api/admin/bookings/{booked['id']}", {"reason": "double click"}))
    assert again["already_cancelled"] is True
    assert again["credits_restored"] == 0
    assert db.credits(student)["cs_credits"] == 5


def test_cancel_without_refund_keeps_the_credit_spent(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    exam = db.exam(mock_type="Clinical Skills")
    booked = db.book(student, exam)["booking"]

    cancelled = data(
        admin.delete(
            f"/api/admin/bookings/{booked['id']}",
            {"refund": False, "reason": "Late cancellation, credit kept"},
        )
    )

    assert cancelled["credits_restored"] == 0
    assert cancelled["credits"]["cs_credits"] == 4
    assert db.credits(student)["cs_credits"] == 4
    assert db.seats(exam) == 0


def test_an_admin_may_cancel_after_the_exam_started(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    exam = db.exam(mock_type="Clinical Skills")
    booked = db.book(student, exam)["booking"]
    db.conn.execute(
        "update hubspot_sync.hubspot_mock_exams set start_time = now() - interval '1 hour'"
        " where id = %s",
        (exam["id"],),
    )
    cancelled = admin.delete(f"/api/admin/bookings/{booked['id']}", {"reason": "no-show"})
    assert data(cancelled)["booking"]["is_active"] == "Cancelled"


def test_cancel_refuses_bad_input_and_unknown_bookings(
    admin: AdminApi, db: Db, student: dict[str, Any]
) -> None:
    exam = db.exam(mock_type="Clinical Skills")
    booked = db.book(student, exam)["booking"]
    path = f"/api/admin/bookings/{booked['id']}"
    assert error(admin.delete(path, {}), 400)["field"] == "reason"
    assert error(admin.delete(path, {"reason": "ok", "refund": "maybe"}), 400)["field"] == (
        "refund"
    )
    assert error(admin.delete(path), 400)["field"] == "reason"
    missing = admin.delete("/api/admin/bookings/BK-20990101-ZZZZZZ", {"reason": "none"})
    assert error(missing, 404)["code"] == "BOOKING_NOT_FOUND"
    completed = db.booking(student, another_day(db), is_active="Completed")
    refused = admin.delete(f"/api/admin/bookings/{completed['id']}", {"reason": "too late"})
    assert error(refused, 409)["code"] == "BOOKING_NOT_CANCELLABLE"
    assert db.credits(student)["cs_credits"] == 4


# ---------------------------------------------------------------- logs


def test_logs_carry_no_token_and_no_full_email(
    admin: AdminApi, db: Db, student: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Every line an admin request logs is JSON with the request id, route, status and
    duration, and never the token, the admin's email or a student's email."""
    caplog.set_level(logging.INFO)
    token = admin_token(email=ADMIN_EMAIL)
    admin.token = token
    exam = db.exam(mock_type="Clinical Skills")
    booked = db.book(student, exam)["booking"]
    admin.get("/api/admin/search", params={"q": student["email"]})
    admin.post(
        f"/api/admin/students/{student['id']}/credits",
        {"deltas": {"sj_credits": 1}, "reason": f"asked by {student['email']}"},
    )
    admin.delete(f"/api/admin/bookings/{booked['id']}", {"reason": "moved"})
    admin.get("/api/admin/me", headers={"Authorization": f"Bearer {token}x"})

    formatter = _JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    requests = [line for line in lines if '"msg":"request"' in line]
    assert len(requests) >= 4
    assert all('"request_id"' in line and '"duration_ms"' in line for line in requests)
    assert any('"route":"admin.students.credits"' in line for line in requests)
    actions = [line for line in lines if '"msg":"credits adjusted"' in line]
    assert actions and '"admin_email":"o***@school.example"' in actions[0]
    for line in lines:
        assert token[20:] not in line
        assert token.split(".")[2] not in line
        assert ADMIN_EMAIL not in line
        assert student["email"] not in line
