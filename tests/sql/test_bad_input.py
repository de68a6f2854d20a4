"""Bad input reaches the SQL functions only as data: whatever the strings, the answer
is a clean rejection code (never an exception) and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib import db as lib_db
from lib.errors import ERRORS, AppError
from tests.helpers import Db

INJECTION = [
    "'; drop table hubspot_sync.hubspot_bookings; --",
    "1' or '1'='1",
    "DEMO001' --",
    "$$; select pg_sleep(10); $$",
    "sj_credits = sj_credits + 100",
    "\\x27",
    "🙂" * 50,
    "a" * 10_000,
    "   ",
    "",
]
text = st.one_of(
    st.sampled_from(INJECTION),
    # Neither NUL nor a lone surrogate can be PostgreSQL text: lib.db.rpc refuses both
    # as INVALID_INPUT before a call is made (tests/admin/test_admin_students.py).
    st.text(
        alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
        max_size=300,
    ),
    st.none(),
)


def _snapshot(db: Db) -> tuple[Any, ...]:
    return (
        db.count("hubspot_bookings"),
        db.count("supabase_audit_log"),
        db.all("select * from hubspot_sync.hubspot_contact_credits order by id"),
        db.all("select total_bookings from hubspot_sync.hubspot_mock_exams order by id"),
    )


def _assert_clean_rejection(result: dict[str, Any]) -> None:
    assert result["ok"] is False, result
    assert result["code"] in ERRORS, result
    assert isinstance(result["message"], str) and result["message"]


@pytest.fixture
def world(db: Db) -> Db:
    db.contact(student_id="DEMO001", email="demo001@example.com", cs_credits=5, sj_credits=5)
    db.exam()
    db.exam(mock_type="Situational Judgment")
    return db


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(student_id=text, email=text, exam=text, location=text, hand=text, key=text)
def test_book_with_arbitrary_strings(
    world: Db, student_id: Any, email: Any, exam: Any, location: Any, hand: Any, key: Any
) -> None:
    before = _snapshot(world)

    result = world.call(
        "book",
        p_student_id=student_id,
        p_email=email,
        p_exam_id=exam,
        p_attending_location=location,
        p_dominant_hand=hand,
        p_idempotency_key=key,
    )

    _assert_clean_rejection(result)
    assert _snapshot(world) == before


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ref=text, student_id=text, email=text, reason=text)
def test_cancel_and_find_with_arbitrary_strings(
    world: Db, ref: Any, student_id: Any, email: Any, reason: Any
) -> None:
    before = _snapshot(world)

    _assert_clean_rejection(
        world.call(
            "cancel_booking",
            p_booking_ref=ref,
            p_student_id=student_id,
            p_email=email,
            p_reason=reason,
        )
    )
    _assert_clean_rejection(
        world.call("find_booking", p_ref=ref, p_student_id=student_id, p_email=email)
    )
    _assert_clean_rejection(world.call("contact_credits", p_student_id=student_id, p_email=email))
    assert _snapshot(world) == before


def test_injection_shaped_values_for_a_real_student_are_plain_data(world: Db) -> None:
    before = _snapshot(world)
    for value in INJECTION:
        result = world.call(
            "book", p_student_id="DEMO001", p_email="demo001@example.com", p_exam_id=value
        )
        _assert_clean_rejection(result)
        assert result["field"] == "mock_exam_id"
    assert _snapshot(world) == before


def test_a_nul_character_is_an_input_error_naming_the_field(world: Db) -> None:
    lib_db.use_backend(world.backend)
    try:
        with pytest.raises(AppError) as caught:
            lib_db.rpc(
                "book", {"p_student_id": "DEMO\x00001", "p_email": "x@y.z", "p_exam_id": "1"}
            )
    finally:
        lib_db.use_backend(None)
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.field == "student_id"
    assert caught.value.status == 400


def test_function_names_and_parameter_names_never_become_sql() -> None:
    with pytest.raises(ValueError, match="identifier"):
        lib_db.rpc("book; drop table x", {})
    with pytest.raises(ValueError, match="identifier"):
        lib_db.rpc("book", {"p_student_id) --": "x"})
