"""lib.db.SupabaseBackend against the PostgREST stand-in in front of the real,
migrated database: same answers as the psycopg backend, the same lib.errors types for
every failure, and nothing written when a call fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from lib.db import SupabaseBackend
from lib.errors import DatabaseBusy, DatabaseFailure, DatabaseUnavailable
from local.standins.postgrest import StandIn, make_api_key, serve
from tests.db.conftest import JWT_SECRET, supabase_settings
from tests.helpers import Db

# Retries of the backend take 20-160 ms in all; anything past this is a hang or a
# retry storm, not a fast failure.
FAST_S = 2.0


def _params(contact: dict[str, Any], exam: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """book()'s parameters as tests.helpers.Db.book builds them for the psycopg backend."""
    params: dict[str, Any] = {
        "p_student_id": contact["student_id"],
        "p_email": contact["email"],
        "p_exam_id": str(exam["id"]),
    }
    if exam["mock_type"] == "Clinical Skills":
        params["p_dominant_hand"] = "right"
    if exam["mock_type"] in ("Situational Judgment", "Mini-mock"):
        params["p_attending_location"] = "mississauga"
    params.update(extra)
    return params


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and value types, not the values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _written(db: Db) -> tuple[Any, ...]:
    return (
        db.count("hubspot_bookings"),
        db.count("supabase_audit_log"),
        db.count("audit_log"),
        db.all("select * from hubspot_sync.hubspot_contact_credits order by id"),
        db.all(
            "select id, (hubspot_sync._seat_state(e)).booked from hubspot_sync.hubspot_mock_exams e"
            " order by id"
        ),
    )


def _new_calls(standin: StandIn, before: int) -> list[tuple[str | None, int]]:
    return [(call.function, call.status) for call in standin.calls[before:]]


# ------------------------------------------------------------------ same answers


def test_book_debits_one_credit_and_answers_like_psycopg(db: Db, supabase: SupabaseBackend) -> None:
    contact = db.contact(cs_credits=2)
    exam = db.exam(capacity=5)

    result = supabase.call("book", _params(contact, exam))

    assert result["ok"] is True and result["replayed"] is False
    assert db.credits(contact)["cs_credits"] == 1
    assert result["credits"]["cs_credits"] == 1
    assert db.seats(exam) == 1 == result["seats"]["booked"]
    row = db.one(
        "select * from hubspot_sync.hubspot_bookings where id = %s", result["booking"]["id"]
    )
    assert row["student_id"] == contact["student_id"]
    assert row["token_used"] == "Clinical Skills Token"

    # The same kind of call through psycopg answers the same structure and types.
    other = db.contact(cs_credits=2)
    direct = db.book(other, db.exam(capacity=5))
    assert direct["ok"] is True
    assert _shape(result) == _shape(direct)


def test_replay_through_supabase_writes_nothing(db: Db, supabase: SupabaseBackend) -> None:
    contact = db.contact(cs_credits=2)
    exam = db.exam()
    first = supabase.call("book", _params(contact, exam, p_idempotency_key="key-1"))
    before = _written(db)

    again = supabase.call("book", _params(contact, exam, p_idempotency_key="key-1"))

    assert again["replayed"] is True
    assert again["booking"]["id"] == first["booking"]["id"]
    assert _written(db) == before


def _exam_full(db: Db) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    exam = db.exam(capacity=1)
    db.booking(db.contact(), exam)
    return db.contact(cs_credits=3), exam, {}


def _no_credits(db: Db) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return db.contact(cs_credits=0, shared_mock_credits=0), db.exam(), {}


def _unknown_contact(db: Db) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    ghost = {"student_id": "NOBODY1", "email": "nobody@example.com"}
    return ghost, db.exam(), {}


def _bad_student_id(db: Db) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return db.contact(cs_credits=3), db.exam(), {"p_student_id": "not valid!"}


@pytest.mark.parametrize(
    ("scenario", "code", "field"),
    [
        (_exam_full, "EXAM_FULL", None),
        (_no_credits, "INSUFFICIENT_CREDITS", None),
        (_unknown_contact, "CONTACT_NOT_FOUND", None),
        (_bad_student_id, "INVALID_INPUT", "student_id"),
    ],
)
def test_rejections_match_psycopg_and_write_nothing(
    db: Db,
    supabase: SupabaseBackend,
    scenario: Callable[[Db], tuple[dict[str, Any], dict[str, Any], dict[str, Any]]],
    code: str,
    field: str | None,
) -> None:
    contact, exam, extra = scenario(db)
    params = _params(contact, exam, **extra)
    before = _written(db)

    through_supabase = supabase.call("book", params)
    through_psycopg = db.call("book", **params)

    assert through_supabase == through_psycopg
    assert through_supabase["ok"] is False
    assert through_supabase["code"] == code
    assert through_supabase.get("field") == field
    assert _written(db) == before


def test_typed_arguments_reach_sql_as_their_types(db: Db, supabase: SupabaseBackend) -> None:
    """JSON false must arrive as boolean false (p_refund): an admin cancellation without
    a refund keeps the credit spent, one with the default refunds it."""
    kept, refunded = db.contact(cs_credits=1), db.contact(cs_credits=1)
    exam = db.exam()
    bookings = [supabase.call("book", _params(contact, exam)) for contact in (kept, refunded)]
    assert db.credits(kept)["cs_credits"] == db.credits(refunded)["cs_credits"] == 0

    no_refund = supabase.call(
        "cancel_booking",
        {"p_booking_ref": bookings[0]["booking"]["id"], "p_admin": "ops", "p_refund": False},
    )
    with_refund = supabase.call(
        "cancel_booking", {"p_booking_ref": bookings[1]["booking"]["id"], "p_admin": "ops"}
    )

    assert no_refund["ok"] is True and no_refund["credits_restored"] == 0
    assert with_refund["ok"] is True and with_refund["credits_restored"] == 1
    assert db.credits(kept)["cs_credits"] == 0
    assert db.credits(refunded)["cs_credits"] == 1
    assert db.seats(exam) == 0


def test_read_only_lookup_works_for_the_service_role(db: Db, supabase: SupabaseBackend) -> None:
    contact = db.contact(sj_credits=4)

    result = supabase.call(
        "contact_credits", {"p_student_id": contact["student_id"], "p_email": contact["email"]}
    )

    assert result["ok"] is True
    assert result["contact"]["credits"]["sj_credits"] == 4
    assert result == db.call(
        "contact_credits", p_student_id=contact["student_id"], p_email=contact["email"]
    )


# ------------------------------------------------------------------ keys


@pytest.mark.parametrize("function", ["book", "contact_credits"])
def test_anon_key_is_refused_and_writes_nothing(
    db: Db,
    standin: StandIn,
    supabase_for: Callable[[str], SupabaseBackend],
    anon_key: str,
    function: str,
) -> None:
    """A deployment configured with the anon key instead of the service-role key is a
    bug, not a busy database: DatabaseFailure (500), no retry, and no row touched."""
    contact = db.contact(cs_credits=3)
    exam = db.exam()
    params = (
        _params(contact, exam)
        if function == "book"
        else {"p_student_id": contact["student_id"], "p_email": contact["email"]}
    )
    before, calls = _written(db), len(standin.calls)

    with pytest.raises(DatabaseFailure) as raised:
        supabase_for(anon_key).call(function, params)

    assert raised.value.sqlstate == "42501"  # insufficient_privilege
    # PostgREST: 42501 with a role-carrying JWT is 403; one request, no retries.
    assert _new_calls(standin, calls) == [(function, 403)]
    assert _written(db) == before


def test_key_signed_with_another_secret_is_refused(
    db: Db, standin: StandIn, supabase_for: Callable[[str], SupabaseBackend]
) -> None:
    contact = db.contact(cs_credits=3)
    forged = make_api_key("some-other-projects-secret-0123456789", "service_role")
    before, calls = _written(db), len(standin.calls)

    with pytest.raises(DatabaseFailure) as raised:
        supabase_for(forged).call("book", _params(contact, db.exam()))

    assert raised.value.sqlstate == "PGRST301"
    assert _new_calls(standin, calls) == [("book", 401)]
    assert db.count("hubspot_bookings") == 0
    assert _written(db)[3] == before[3]


# ------------------------------------------------------------------ failures


def test_unknown_function_fails_fast_without_retries(
    standin: StandIn, supabase: SupabaseBackend
) -> None:
    calls = len(standin.calls)
    started = time.monotonic()

    with pytest.raises(DatabaseFailure) as raised:
        supabase.call("no_such_function", {"p_x": "1"})

    assert time.monotonic() - started < FAST_S
    assert raised.value.sqlstate == "PGRST202"
    assert _new_calls(standin, calls) == [("no_such_function", 404)]


def test_unknown_argument_is_an_unknown_function(db: Db, supabase: SupabaseBackend) -> None:
    """PostgREST finds functions by name AND argument names: a misspelt argument is a
    404 PGRST202, never a call with the argument silently dropped."""
    contact = db.contact(cs_credits=2)
    with pytest.raises(DatabaseFailure) as raised:
        supabase.call("book", {**_params(contact, db.exam()), "p_exam": "x"})
    assert raised.value.sqlstate == "PGRST202"
    assert db.credits(contact)["cs_credits"] == 2


def test_stopped_standin_is_unavailable_quickly(database_url: str, service_key: str) -> None:
    standin = serve(database_url, JWT_SECRET)
    backend = SupabaseBackend(supabase_settings(standin.url, service_key))
    try:
        # One good call first, so the client holds a kept-alive connection.
        result = backend.call("contact_credits", {"p_student_id": "S1", "p_email": "a@b.co"})
        assert result["code"] == "CONTACT_NOT_FOUND"
        standin.stop()
        answered = len(standin.calls)
        started = time.monotonic()

        with pytest.raises(DatabaseUnavailable):
            backend.call("contact_credits", {"p_student_id": "S1", "p_email": "a@b.co"})

        assert time.monotonic() - started < FAST_S
        # Refused at the socket: not even a kept-alive connection got an answer.
        assert len(standin.calls) == answered
    finally:
        standin.stop()
        backend.close()


def test_database_down_behind_postgrest_is_unavailable(service_key: str) -> None:
    """PostgREST without a database answers 504 PGRST003 (no pool connection in time):
    the backend retries, then raises DatabaseUnavailable (503), not a 500."""
    # Port 1 on localhost refuses connections at once.
    with serve("postgresql://postgres@127.0.0.1:1/none", JWT_SECRET, pool_timeout_s=0.3) as standin:
        backend = SupabaseBackend(supabase_settings(standin.url, service_key))
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable):
                backend.call("contact_credits", {"p_student_id": "S1", "p_email": "a@b.co"})
            assert time.monotonic() - started < 3 * 0.3 + FAST_S
        finally:
            backend.close()
        assert _new_calls(standin, 0) == [("contact_credits", 504)] * 3


@pytest.mark.slow
def test_lock_timeout_is_busy_and_writes_nothing(
    db: Db, database_url: str, standin: StandIn, supabase: SupabaseBackend
) -> None:
    """book() waits at most its lock_timeout (3 s, set on the function, so it cannot be
    lowered from outside) for the exam row; past that the caller gets DatabaseBusy
    (retryable 503), one request, no retry, nothing written."""
    contact = db.contact(cs_credits=2)
    exam = db.exam()
    before, calls = _written(db), len(standin.calls)

    with psycopg.connect(database_url) as holder:
        holder.execute(
            "select 1 from hubspot_sync.hubspot_mock_exams where id = %s for update", (exam["id"],)
        )
        started = time.monotonic()
        with pytest.raises(DatabaseBusy):
            supabase.call("book", _params(contact, exam))
        waited = time.monotonic() - started
        holder.rollback()

    assert 2.5 < waited < 3 + FAST_S
    assert _new_calls(standin, calls) == [("book", 500)]  # PostgREST: 55P03 -> 500
    assert _written(db) == before
    # The lock gone, the same call books.
    assert supabase.call("book", _params(contact, exam))["ok"] is True
