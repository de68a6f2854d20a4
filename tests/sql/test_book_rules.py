"""Every booking rule of product.md §4, accepted and rejected, against real PostgreSQL
through the production call path (lib.db.PsycopgBackend)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import CREDIT_KINDS, TORONTO, Db, now_utc

# ------------------------------------------------------------------ credit kinds


@pytest.mark.parametrize(
    ("mock_type", "balances", "spent", "token"),
    [
        ("Situational Judgment", {"sj_credits": 2, "shared_mock_credits": 2}, "sj_credits",
         "Situational Judgment Token"),
        ("Situational Judgment", {"shared_mock_credits": 1}, "shared_mock_credits", "Shared Token"),
        ("Clinical Skills", {"cs_credits": 1, "shared_mock_credits": 1}, "cs_credits",
         "Clinical Skills Token"),
        ("Clinical Skills", {"shared_mock_credits": 3}, "shared_mock_credits", "Shared Token"),
        ("Mini-mock", {"sjmini_credits": 1, "shared_mock_credits": 5}, "sjmini_credits",
         "Mini-mock Token"),
        ("Mock Discussion", {"mock_discussion_token": 1}, "mock_discussion_token",
         "Mock Discussion Token"),
    ],
)  # fmt: skip
def test_book_spends_exactly_one_credit_of_the_right_kind(
    db: Db, mock_type: str, balances: dict[str, int], spent: str, token: str
) -> None:
    contact = db.contact(**balances)
    exam = db.exam(mock_type=mock_type)
    before = db.credits(contact)

    result = db.book(contact, exam)

    assert result["ok"] is True, result
    assert result["replayed"] is False
    assert result["booking"]["token_used"] == token
    after = db.credits(contact)
    expected = dict(before)
    expected[spent] -= 1
    assert after == expected
    assert result["credits"] == after
    assert db.seats(exam) == 1 == db.held_seats(exam)
    assert result["seats"]["capacity"] == 10 and result["seats"]["booked"] == 1
    assert result["seats"]["exam_id"] == str(exam["id"])
    assert result["seats"]["version"] == 1


def test_booking_is_stored_with_null_hubspot_id_and_a_new_style_code(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam(exam_date=date(2031, 12, 3))

    booking = db.book(contact, exam)["booking"]

    assert booking["hubspot_id"] is None
    assert re.fullmatch(r"BK-20311203-[2-9A-HJKMNP-Z]{6}", booking["booking_id"])
    row = db.one("select * from hubspot_sync.hubspot_bookings where id = %s", booking["id"])
    assert row["hubspot_id"] is None
    assert row["is_active"] == "Active"
    assert row["associated_mock_exam"] == exam["hubspot_id"]
    assert row["associated_contact_id"] == contact["hubspot_id"]
    assert row["dominant_hand"] == "right"
    assert row["mock_type"] == "Clinical Skills"


@pytest.mark.parametrize(
    ("mock_type", "balances"),
    [
        ("Situational Judgment", {"cs_credits": 3, "sjmini_credits": 3}),
        ("Clinical Skills", {"sj_credits": 3, "mock_discussion_token": 3}),
        ("Mini-mock", {"shared_mock_credits": 3, "sj_credits": 3}),
        ("Mock Discussion", {"shared_mock_credits": 3, "cs_credits": 3}),
    ],
)
def test_no_credit_of_an_allowed_kind_is_rejected(
    db: Db, mock_type: str, balances: dict[str, int]
) -> None:
    contact = db.contact(**balances)
    exam = db.exam(mock_type=mock_type)

    result = db.book(contact, exam)

    assert result == {
        "ok": False,
        "code": "INSUFFICIENT_CREDITS",
        "message": f"You have no credits left for {mock_type} exams",
    }
    assert db.credits(contact) == {k: balances.get(k, 0) for k in CREDIT_KINDS}
    assert db.count("hubspot_bookings") == 0
    assert db.seats(exam) == 0


def test_admin_booking_uses_admin_override_and_spends_nothing(db: Db) -> None:
    contact = db.contact()
    exam = db.exam()

    result = db.book(contact, exam, p_admin="ops@example.com")

    assert result["ok"] is True
    assert result["booking"]["token_used"] == "Admin Override"
    assert db.credits(contact) == dict.fromkeys(CREDIT_KINDS, 0)
    assert db.seats(exam) == 1


# ------------------------------------------------------------------ rule 1: contact


def test_contact_is_matched_by_student_id_and_lowercased_email(db: Db) -> None:
    contact = db.contact(student_id="AB123", email="ab@example.com", cs_credits=1)
    exam = db.exam()

    result = db.call(
        "book",
        p_student_id=" ab123 ",
        p_email="AB@Example.COM",
        p_exam_id=str(exam["id"]),
        p_dominant_hand="left",
    )

    assert result["ok"] is True
    assert db.credits(contact)["cs_credits"] == 0


def test_wrong_email_is_contact_not_found(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam()

    result = db.book(contact, exam, p_email="someone-else@example.com")

    assert result["code"] == "CONTACT_NOT_FOUND"
    assert db.count("hubspot_bookings") == 0


# ------------------------------------------------------------------ rule 2: exam


def test_exam_can_be_named_by_uuid_or_hubspot_id(db: Db) -> None:
    contact = db.contact(cs_credits=2)
    first, second = db.exam(), db.exam(exam_date=date.today() + timedelta(days=20))

    assert db.book(contact, first, p_exam_id=str(first["id"]))["ok"] is True
    assert db.book(contact, second, p_exam_id=second["hubspot_id"])["ok"] is True


@pytest.mark.parametrize("exam_ref", ["00000000-0000-4000-8000-000000000000", "424242"])
def test_unknown_exam_is_exam_not_found(db: Db, exam_ref: str) -> None:
    contact = db.contact(cs_credits=1)

    result = db.call(
        "book", p_student_id=contact["student_id"], p_email=contact["email"], p_exam_id=exam_ref
    )

    assert result["code"] == "EXAM_NOT_FOUND"
    assert result["field"] == "mock_exam_id"


@pytest.mark.parametrize("state", ["false", "scheduled", None, "TRUE"])
def test_exam_that_is_not_active_is_rejected(db: Db, state: str | None) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam(is_active=state)

    result = db.book(contact, exam)

    assert result["code"] == "EXAM_NOT_ACTIVE"
    assert db.credits(contact)["cs_credits"] == 1


def test_exam_that_has_started_is_rejected(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    start = now_utc() - timedelta(minutes=1)
    exam = db.exam(
        exam_date=start.astimezone(TORONTO).date(),
        start_time=start,
        end_time=start + timedelta(hours=3),
    )

    assert db.book(contact, exam)["code"] == "EXAM_STARTED"


def test_exam_later_today_in_toronto_can_still_be_booked(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    start = now_utc() + timedelta(minutes=30)
    exam = db.exam(
        exam_date=start.astimezone(TORONTO).date(),
        start_time=start,
        end_time=start + timedelta(hours=3),
    )

    assert db.book(contact, exam)["ok"] is True


def test_exam_without_a_start_time_closes_at_toronto_midnight(db: Db) -> None:
    contact = db.contact(cs_credits=2)
    today_in_toronto = datetime.now(TORONTO).date()
    today = db.exam(exam_date=today_in_toronto, start_time=None, end_time=None)
    tomorrow = db.exam(
        exam_date=today_in_toronto + timedelta(days=1), start_time=None, end_time=None
    )

    assert db.book(contact, today)["code"] == "EXAM_STARTED"
    assert db.book(contact, tomorrow)["ok"] is True


# ------------------------------------------------------------------ rule 3: capacity


def test_full_exam_is_rejected_and_nothing_changes(db: Db) -> None:
    exam = db.exam(capacity=1)
    first, second = db.contact(cs_credits=1), db.contact(cs_credits=1)
    assert db.book(first, exam)["ok"] is True

    result = db.book(second, exam)

    assert result["code"] == "EXAM_FULL"
    assert db.credits(second)["cs_credits"] == 1
    assert db.seats(exam) == 1 == db.held_seats(exam)


def test_cancelled_booking_frees_its_seat(db: Db) -> None:
    exam = db.exam(capacity=1)
    first, second = db.contact(cs_credits=1), db.contact(cs_credits=1)
    booking = db.book(first, exam)["booking"]
    cancelled = db.call(
        "cancel_booking",
        p_booking_ref=booking["id"],
        p_student_id=first["student_id"],
        p_email=first["email"],
    )
    assert cancelled["ok"] is True

    assert db.book(second, exam)["ok"] is True
    assert db.seats(exam) == 1 == db.held_seats(exam)


# ------------------------------------------------------------------ rule 4: one per date+type


def test_second_booking_same_date_and_type_is_a_duplicate(db: Db) -> None:
    day = date.today() + timedelta(days=9)
    contact = db.contact(cs_credits=5)
    morning = db.exam(exam_date=day)
    afternoon = db.exam(exam_date=day, location="Calgary")
    assert db.book(contact, morning)["ok"] is True

    result = db.book(contact, afternoon)

    assert result["code"] == "DUPLICATE_BOOKING"
    assert db.credits(contact)["cs_credits"] == 4


def test_same_date_different_type_is_allowed(db: Db) -> None:
    day = date.today() + timedelta(days=9)
    contact = db.contact(cs_credits=1, sj_credits=1)
    assert db.book(contact, db.exam(exam_date=day))["ok"] is True

    assert db.book(contact, db.exam(exam_date=day, mock_type="Situational Judgment"))["ok"]


def test_a_completed_booking_also_counts_as_a_duplicate(db: Db) -> None:
    day = date.today() + timedelta(days=9)
    contact = db.contact(cs_credits=1)
    db.booking(contact, db.exam(exam_date=day), is_active="Completed")

    assert db.book(contact, db.exam(exam_date=day))["code"] == "DUPLICATE_BOOKING"


def test_the_unique_index_backs_the_duplicate_check(db: Db) -> None:
    """Even a writer that skips the function cannot create a second seat-holding
    booking for the same student, date and type."""
    import psycopg

    day = date.today() + timedelta(days=9)
    contact = db.contact()
    db.booking(contact, db.exam(exam_date=day))

    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        db.booking(contact, db.exam(exam_date=day))
    assert caught.value.diag.constraint_name == "uq_bookings_one_per_student_day_type"


# ------------------------------------------------------------------ rule 6: prerequisites


def _discussion_with_prerequisites(db: Db) -> tuple[dict, dict, dict]:  # type: ignore[type-arg]
    past = date.today() - timedelta(days=30)
    first = db.exam(exam_date=past, mock_type="Clinical Skills")
    second = db.exam(exam_date=past - timedelta(days=1), mock_type="Situational Judgment")
    discussion = db.exam(
        mock_type="Mock Discussion",
        prerequisite_exam_ids=[first["hubspot_id"], second["hubspot_id"]],
    )
    return first, second, discussion


def test_discussion_needs_one_attended_prerequisite(db: Db) -> None:
    first, _second, discussion = _discussion_with_prerequisites(db)
    contact = db.contact(mock_discussion_token=1)
    db.booking(contact, first, is_active="Completed", attendance="No")

    result = db.book(contact, discussion)

    assert result["code"] == "PREREQUISITE_NOT_MET"
    assert db.credits(contact)["mock_discussion_token"] == 1


def test_discussion_accepts_any_one_attended_prerequisite(db: Db) -> None:
    _first, second, discussion = _discussion_with_prerequisites(db)
    contact = db.contact(mock_discussion_token=1)
    db.booking(contact, second, is_active="Completed", attendance="Yes")

    assert db.book(contact, discussion)["ok"] is True


def test_discussion_without_prerequisites_is_open_to_all(db: Db) -> None:
    contact = db.contact(mock_discussion_token=1)

    assert db.book(contact, db.exam(mock_type="Mock Discussion"))["ok"] is True


# ------------------------------------------------------------------ rule 7: form fields


@pytest.mark.parametrize("hand", [None, "", "ambidextrous"])
def test_clinical_skills_needs_a_dominant_hand(db: Db, hand: str | None) -> None:
    contact = db.contact(cs_credits=1)

    result = db.book(contact, db.exam(), p_dominant_hand=hand)

    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == "dominant_hand"
    assert db.count("hubspot_bookings") == 0


@pytest.mark.parametrize("hand,stored", [("Left", "left"), ("true", "right"), ("false", "left")])
def test_dominant_hand_accepts_the_old_spellings(db: Db, hand: str, stored: str) -> None:
    contact = db.contact(cs_credits=1)

    result = db.book(contact, db.exam(), p_dominant_hand=hand)

    assert result["booking"]["dominant_hand"] == stored


@pytest.mark.parametrize("mock_type", ["Situational Judgment", "Mini-mock"])
@pytest.mark.parametrize("location", [None, "toronto"])
def test_sj_and_mini_mock_need_a_known_location(
    db: Db, mock_type: str, location: str | None
) -> None:
    contact = db.contact(sj_credits=1, sjmini_credits=1)

    result = db.book(contact, db.exam(mock_type=mock_type), p_attending_location=location)

    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == "attending_location"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("Richmond Hill", "richmond_hill"), ("richmond_hill", "richmond_hill"), ("Online", "online"),
     ("MONTREAL", "montreal")],
)  # fmt: skip
def test_locations_accept_slugs_and_display_names(db: Db, given: str, stored: str) -> None:
    contact = db.contact(sj_credits=1)
    exam = db.exam(mock_type="Situational Judgment")

    result = db.book(contact, exam, p_attending_location=given)

    assert result["booking"]["attending_location"] == stored


# ------------------------------------------------------------------ idempotency


def test_same_idempotency_key_returns_the_original_booking(db: Db) -> None:
    contact = db.contact(cs_credits=3)
    exam = db.exam()
    first = db.book(contact, exam, p_idempotency_key="key-1")

    again = db.book(contact, exam, p_idempotency_key="key-1")

    assert again["replayed"] is True
    assert again["booking"] == first["booking"]
    assert db.credits(contact)["cs_credits"] == 2
    assert db.count("hubspot_bookings") == 1
    assert db.seats(exam) == 1


def test_replay_answers_even_when_the_exam_has_filled_up_since(db: Db) -> None:
    exam = db.exam(capacity=1)
    contact = db.contact(cs_credits=1)
    first = db.book(contact, exam, p_idempotency_key="key-full")

    again = db.book(contact, exam, p_idempotency_key="key-full")

    assert again["ok"] is True and again["replayed"] is True
    assert again["booking"]["id"] == first["booking"]["id"]


def test_without_a_key_a_retry_within_five_minutes_is_the_same_booking(db: Db) -> None:
    contact = db.contact(cs_credits=3)
    exam = db.exam()
    first = db.book(contact, exam)

    again = db.book(contact, exam)

    assert again["replayed"] is True
    assert again["booking"]["id"] == first["booking"]["id"]
    assert db.credits(contact)["cs_credits"] == 2


def test_without_a_key_an_old_booking_is_not_a_replay(db: Db) -> None:
    contact = db.contact(cs_credits=3)
    exam = db.exam()
    first = db.book(contact, exam)["booking"]
    db.conn.execute(
        "update hubspot_sync.hubspot_bookings set created_at = now() - interval '6 minutes'"
        " where id = %s",
        (first["id"],),
    )

    assert db.book(contact, exam)["code"] == "DUPLICATE_BOOKING"


def test_key_used_for_another_exam_is_rejected(db: Db) -> None:
    contact = db.contact(cs_credits=3)
    db.book(contact, db.exam(), p_idempotency_key="key-2")

    other = db.exam(exam_date=date.today() + timedelta(days=30))
    result = db.book(contact, other, p_idempotency_key="key-2")

    assert result["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert result["field"] == "idempotency_key"
    assert db.credits(contact)["cs_credits"] == 2


@pytest.mark.parametrize(
    "changed",
    [
        {"p_dominant_hand": "left"},
        {"p_attending_location": "Calgary"},
        {"p_dominant_hand": None},
    ],
)
def test_key_reused_with_any_other_value_is_rejected(db: Db, changed: dict[str, Any]) -> None:
    contact = db.contact(cs_credits=3)
    exam = db.exam()
    first = {"p_dominant_hand": "right", "p_attending_location": "Mississauga"}
    assert db.book(contact, exam, p_idempotency_key="fp-key", **first)["ok"]

    same = db.book(contact, exam, p_idempotency_key="fp-key", **first)
    other = db.book(contact, exam, p_idempotency_key="fp-key", **{**first, **changed})

    assert same["replayed"] is True
    assert (other["ok"], other["code"], other["field"]) == (
        False,
        "IDEMPOTENCY_KEY_REUSED",
        "idempotency_key",
    )
    assert db.credits(contact)["cs_credits"] == 2
    assert db.count("hubspot_bookings") == 1


def test_key_used_by_another_student_is_rejected_without_revealing_the_booking(db: Db) -> None:
    exam = db.exam()
    owner, other = db.contact(cs_credits=1), db.contact(cs_credits=1)
    db.book(owner, exam, p_idempotency_key="shared-key")

    result = db.book(other, exam, p_idempotency_key="shared-key")

    assert result["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "booking" not in result
    assert db.credits(other)["cs_credits"] == 1


def test_booking_the_same_exam_again_right_after_cancelling_works(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam()
    first = db.book(contact, exam)["booking"]
    db.call(
        "cancel_booking",
        p_booking_ref=first["id"],
        p_student_id=contact["student_id"],
        p_email=contact["email"],
    )

    again = db.book(contact, exam)

    assert again["ok"] is True and again["replayed"] is False
    assert again["booking"]["id"] != first["id"]
    assert db.credits(contact)["cs_credits"] == 0
    assert db.seats(exam) == 1 == db.held_seats(exam)


def test_booking_for_key(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    booking = db.book(contact, db.exam(), p_idempotency_key="lookup-key")["booking"]

    assert db.call("booking_for_key", p_key="lookup-key")["booking"]["id"] == booking["id"]
    assert db.call("booking_for_key", p_key="never-used") == {"ok": True, "found": False}


# ------------------------------------------------------------------ audit


def test_a_booking_writes_audit_rows_for_every_row_it_changes(db: Db) -> None:
    contact = db.contact(cs_credits=1)
    exam = db.exam()
    db.conn.execute("truncate hubspot_sync.supabase_audit_log")

    booking = db.book(contact, exam)["booking"]

    rows = db.all(
        "select table_name, operation, record_id, changed_fields, old_values, new_values,"
        " performed_by from hubspot_sync.supabase_audit_log order by id"
    )
    # The exam row is not written: the seat is taken in a shard (20251212000100), and
    # the booking row's INSERT is the audit record of the seat.
    assert [(r["table_name"], r["operation"]) for r in rows] == [
        ("hubspot_bookings", "INSERT"),
        ("hubspot_contact_credits", "UPDATE"),
    ]
    assert str(rows[0]["record_id"]) == booking["id"]
    assert rows[1]["changed_fields"] == ["cs_credits"]
    assert rows[1]["old_values"] == {"cs_credits": 1}
    assert rows[1]["new_values"] == {"cs_credits": 0}
    assert db.seats(exam) == 1
    assert {r["performed_by"] for r in rows} == {f"student:{contact['student_id']}"}


def test_a_rejection_writes_nothing_at_all(db: Db) -> None:
    contact = db.contact()
    exam = db.exam()
    db.conn.execute("truncate hubspot_sync.supabase_audit_log")

    assert db.book(contact, exam)["code"] == "INSUFFICIENT_CREDITS"

    assert db.count("supabase_audit_log") == 0
    assert db.count("hubspot_bookings") == 0
