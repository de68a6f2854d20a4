"""cancel_booking (the inverse of book) and the look-up functions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import TORONTO, Db, now_utc


def _cancel(db: Db, booking_ref: str, contact: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return db.call(
        "cancel_booking",
        p_booking_ref=booking_ref,
        p_student_id=contact["student_id"],
        p_email=contact["email"],
        **extra,
    )


@pytest.mark.parametrize(
    ("balances", "mock_type", "refunded"),
    [
        ({"cs_credits": 1}, "Clinical Skills", "cs_credits"),
        ({"shared_mock_credits": 1}, "Clinical Skills", "shared_mock_credits"),
        ({"sj_credits": 1}, "Situational Judgment", "sj_credits"),
        ({"sjmini_credits": 1}, "Mini-mock", "sjmini_credits"),
        ({"mock_discussion_token": 1}, "Mock Discussion", "mock_discussion_token"),
    ],
)
def test_cancel_returns_exactly_the_credit_that_was_spent(
    db: Db, balances: dict[str, int], mock_type: str, refunded: str
) -> None:
    contact = db.contact(**balances)
    exam = db.exam(mock_type=mock_type)
    before = db.credits(contact)
    booking = db.book(contact, exam)["booking"]

    result = _cancel(db, booking["id"], contact)

    assert result["ok"] is True
    assert result["credits_restored"] == 1
    assert result["already_cancelled"] is False
    assert db.credits(contact) == before
    assert result["credits"][refunded] == before[refunded]
    assert db.seats(exam) == 0 == db.held_seats(exam)
    row = db.one("select * from hubspot_sync.hubspot_bookings where id = %s", booking["id"])
    assert row["is_active"] == "Cancelled"
    assert row["token_refunded"] == "true"
    assert row["token_refunded_at"] is not None


def test_cancelling_twice_changes_nothing_the_second_time(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam()
    booking = db.book(contact, exam)["booking"]
    _cancel(db, booking["id"], contact)
    audit_rows = db.count("supabase_audit_log")

    again = _cancel(db, booking["id"], contact)

    assert again["ok"] is True and again["already_cancelled"] is True
    assert again["credits_restored"] == 0
    assert db.credits(contact)["cs_credits"] == 1
    assert db.seats(exam) == 0
    assert db.count("supabase_audit_log") == audit_rows


def test_admin_override_booking_refunds_nothing(db: Db) -> None:
    contact = db.contact()
    exam = db.exam()
    booking = db.book(contact, exam, p_admin="ops@example.com")["booking"]

    result = _cancel(db, booking["id"], contact)

    assert result["credits_restored"] == 0
    assert sum(db.credits(contact).values()) == 0
    assert db.seats(exam) == 0


def test_admin_can_cancel_without_refund_and_is_recorded(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam()
    booking = db.book(contact, exam)["booking"]

    result = db.call(
        "cancel_booking",
        p_booking_ref=booking["id"],
        p_admin="ops@example.com",
        p_refund=False,
        p_reason="no-show policy",
    )

    assert result["ok"] is True and result["credits_restored"] == 0
    assert db.credits(contact)["cs_credits"] == 0
    audit = db.one(
        "select performed_by, reason from hubspot_sync.supabase_audit_log"
        " where table_name = 'hubspot_bookings' and operation = 'UPDATE'"
    )
    assert audit == {"performed_by": "admin:ops@example.com", "reason": "no-show policy"}


def test_admin_refund_records_the_admin(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    booking = db.book(contact, db.exam())["booking"]

    db.call("cancel_booking", p_booking_ref=booking["id"], p_admin="ops@example.com")

    row = db.one("select * from hubspot_sync.hubspot_bookings where id = %s", booking["id"])
    assert row["token_refund_admin"] == "ops@example.com"
    assert db.credits(contact)["cs_credits"] == 1


def test_only_the_owner_can_cancel_and_others_learn_nothing(db: Db) -> None:
    owner, other = db.contact(cs_credits=1), db.contact(cs_credits=1)
    booking = db.book(owner, db.exam())["booking"]

    for ref in (booking["id"], booking["booking_id"]):
        result = _cancel(db, ref, other)
        assert result == {"ok": False, "code": "BOOKING_NOT_FOUND", "message": "Booking not found"}
        missing = _cancel(db, "00000000-0000-4000-8000-000000000000", other)
        assert missing == result
    assert db.credits(owner)["cs_credits"] == 0
    assert db.one(
        "select is_active from hubspot_sync.hubspot_bookings where id = %s", booking["id"]
    ) == {"is_active": "Active"}


def test_a_completed_booking_cannot_be_cancelled(db: Db) -> None:
    contact = db.contact()
    exam = db.exam()
    booking = db.booking(contact, exam, is_active="Completed", attendance="Yes")
    seats = db.seats(exam)

    result = _cancel(db, str(booking["id"]), contact)

    assert result["code"] == "BOOKING_NOT_CANCELLABLE"
    assert db.seats(exam) == seats


def test_a_student_cannot_cancel_once_the_exam_started_but_an_admin_can(db: Db) -> None:
    contact = db.contact()
    start = now_utc() - timedelta(hours=1)
    exam = db.exam(exam_date=start.astimezone(TORONTO).date(), start_time=start)
    booking = db.booking(contact, exam, token_used="Clinical Skills Token")

    assert _cancel(db, str(booking["id"]), contact)["code"] == "EXAM_STARTED"
    result = db.call("cancel_booking", p_booking_ref=str(booking["id"]), p_admin="ops@x.org")
    assert result["ok"] is True and result["credits_restored"] == 1
    assert db.credits(contact)["cs_credits"] == 1


# ------------------------------------------------------------------ look-ups


def test_find_booking_by_uuid_hubspot_id_and_both_code_styles(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    new = db.book(contact, db.exam())["booking"]
    legacy = db.booking(
        contact,
        db.exam(exam_date=now_utc().date() + timedelta(days=40)),
        booking_id=f"Clinical Skills-{contact['student_id']}-March 1, 2026",
    )

    for ref, expected in (
        (new["id"], new["id"]),
        (new["booking_id"], new["id"]),
        (str(legacy["id"]), str(legacy["id"])),
        (legacy["hubspot_id"], str(legacy["id"])),
        (legacy["booking_id"], str(legacy["id"])),
    ):
        found = db.call(
            "find_booking", p_ref=ref, p_student_id=contact["student_id"], p_email=contact["email"]
        )
        assert found["ok"] is True, ref
        assert found["booking"]["id"] == expected


def test_find_booking_hides_other_students_bookings(db: Db) -> None:
    owner, other = db.contact(cs_credits=1), db.contact()
    booking = db.book(owner, db.exam())["booking"]

    result = db.call(
        "find_booking",
        p_ref=booking["id"],
        p_student_id=other["student_id"],
        p_email=other["email"],
    )

    assert result["code"] == "BOOKING_NOT_FOUND"


def test_legacy_code_shared_by_two_bookings_needs_the_uuid(db: Db) -> None:
    contact = db.contact()
    code = f"Clinical Skills-{contact['student_id']}-March 1, 2026"
    exam = db.exam()
    db.booking(contact, exam, booking_id=code, is_active="Cancelled")
    db.booking(contact, exam, booking_id=code)

    result = db.call("find_booking", p_ref=code)

    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == "id"


@pytest.mark.parametrize("how", ["pair", "id", "hubspot_id"])
def test_contact_credits_three_ways(db: Db, how: str) -> None:
    contact = db.contact(sj_credits=2, shared_mock_credits=1)
    params = {
        "pair": {
            "p_student_id": contact["student_id"].lower(),
            "p_email": contact["email"].upper(),
        },
        "id": {"p_id": str(contact["id"])},
        "hubspot_id": {"p_hubspot_id": contact["hubspot_id"]},
    }[how]

    result = db.call("contact_credits", **params)

    assert result["ok"] is True
    assert result["contact"]["id"] == str(contact["id"])
    assert result["contact"]["credits"] == {
        "sj_credits": 2,
        "cs_credits": 0,
        "sjmini_credits": 0,
        "mock_discussion_token": 0,
        "shared_mock_credits": 1,
    }


def test_contact_credits_unknown(db: Db) -> None:
    assert db.call("contact_credits", p_hubspot_id="nope")["code"] == "CONTACT_NOT_FOUND"
    assert db.call("contact_credits", p_id="not-a-uuid")["field"] == "id"
