"""Races against real parallel connections. The database is the arbiter: whatever the
interleaving, no seat is oversold, no credit is lost or spent twice, no booking is
duplicated.

Each race test has a negative control in the spirit of pretix's concurrency tests: the
same workload against a copy of `book` with its row locks removed (`book_unlocked`)
must break the invariant, which proves the test can catch a race at all.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from tests.helpers import CREDIT_KINDS, Db

# Parallel callers. The backend's pool holds 32 connections, so up to 32 calls are
# inside PostgreSQL at once; the rest queue in the pool as they would in production.
WORKERS = 64
KIND_OF_TOKEN = {
    "Situational Judgment Token": "sj_credits",
    "Clinical Skills Token": "cs_credits",
    "Mini-mock Token": "sjmini_credits",
    "Mock Discussion Token": "mock_discussion_token",
    "Shared Token": "shared_mock_credits",
}


def run_parallel(calls: list[Callable[[], dict[str, Any]]]) -> list[dict[str, Any] | Exception]:
    """Run the calls on WORKERS threads, the first wave released together by one
    signal; collect results and exceptions in order."""
    start = threading.Event()

    def run(call: Callable[[], dict[str, Any]]) -> dict[str, Any] | Exception:
        start.wait()
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(run, call) for call in calls]
        start.set()
        return [future.result() for future in futures]


def outcome(result: dict[str, Any] | Exception) -> str:
    if isinstance(result, Exception):
        return type(result).__name__
    return "ok" if result["ok"] else str(result["code"])


@pytest.fixture
def unlocked(db: Db) -> Iterator[str]:
    """Creates hubspot_sync.book_unlocked: `book` without its row locks. Test-only."""
    definition = db.one(
        "select pg_get_functiondef('hubspot_sync.book(text,text,text,text,text,text,text)'"
        "::regprocedure) as sql"
    )["sql"]
    # Without locks, a race needs two calls between their checks and their writes at
    # the same moment; a 20 ms pause there makes that certain rather than likely. The
    # seat: a shard with room picked without locking it, and taken without the guard
    # that re-checks its room under the row lock (20251212000100).
    stripped = (
        definition.replace("for no key update", "")
        .replace("for share", "")
        .replace("hubspot_sync.book(", "hubspot_sync.book_unlocked(", 1)
        .replace("-- Every check passed: write.", "perform pg_sleep(0.02); --", 1)
        .replace(
            "_seat_claim(v_exam.id)",
            "(select shard from exam_seat_shards where exam_id = v_exam.id and held < seats"
            " order by shard limit 1)",
            1,
        )
        .replace("and shard = v_shard and held < seats;", "and shard = v_shard;", 1)
    )
    assert "for no key update" not in stripped and "for share" not in stripped
    assert "pg_sleep" in stripped and "_seat_claim(" not in stripped
    assert "and shard = v_shard;" in stripped
    db.conn.execute(stripped)
    yield "book_unlocked"
    db.conn.execute("drop function hubspot_sync.book_unlocked(text,text,text,text,text,text,text)")


def _booker(db: Db, function: str, contact: dict[str, Any], exam: dict[str, Any], **extra: Any):  # type: ignore[no-untyped-def]
    params = {
        "p_student_id": contact["student_id"],
        "p_email": contact["email"],
        "p_exam_id": str(exam["id"]),
        "p_dominant_hand": "right",
        **extra,
    }
    return lambda: db.backend.call(function, params)


# ------------------------------------------------------------------ last seats


def _last_ten_seats(db: Db, function: str) -> tuple[dict[str, Any], list[Any]]:
    exam = db.exam(capacity=50)
    for _ in range(40):
        db.booking(db.contact(), exam)
    students = [db.contact(cs_credits=1) for _ in range(200)]
    results = run_parallel([_booker(db, function, s, exam) for s in students])
    return exam, results


def test_200_students_race_for_the_last_10_seats(db: Db) -> None:
    exam, results = _last_ten_seats(db, "book")

    assert Counter(map(outcome, results)) == {"ok": 10, "EXAM_FULL": 190}
    assert db.seats(exam) == 50 == db.held_seats(exam)
    spent = db.one(
        "select count(*) as n from hubspot_sync.hubspot_contact_credits"
        " where cs_credits = 0 and student_id in (select student_id from hubspot_sync.hubspot_bookings"
        " where is_active = 'Active' and token_used = 'Clinical Skills Token' and hubspot_id is null)"
    )["n"]
    assert spent == 10


def test_negative_control_without_locks_the_last_seats_are_oversold(db: Db, unlocked: str) -> None:
    exam, results = _last_ten_seats(db, unlocked)

    assert db.held_seats(exam) > 50, Counter(map(outcome, results))


# ------------------------------------------------------------------ one student, many exams


def _one_student_fifty_exams(db: Db, function: str) -> tuple[dict[str, Any], list[Any]]:
    student = db.contact(cs_credits=3)
    start = date.today() + timedelta(days=3)
    exams = [db.exam(exam_date=start + timedelta(days=i)) for i in range(50)]
    results = run_parallel([_booker(db, function, student, exam) for exam in exams])
    return student, results


def test_one_student_three_credits_fifty_exams_at_once(db: Db) -> None:
    student, results = _one_student_fifty_exams(db, "book")

    assert Counter(map(outcome, results)) == {"ok": 3, "INSUFFICIENT_CREDITS": 47}
    assert db.credits(student)["cs_credits"] == 0
    assert db.count("hubspot_bookings") == 3


def test_negative_control_without_locks_credits_are_overspent_or_calls_fail(
    db: Db, unlocked: str
) -> None:
    # Without the contact lock, the debit's guard (`... where cs_credits > 0`) and the
    # non-negative CHECK still stop an overdraft, but only by failing calls with a
    # raw database error instead of a clean answer: the race is visible.
    _student, results = _one_student_fifty_exams(db, unlocked)

    counts = Counter(map(outcome, results))
    assert counts != {"ok": 3, "INSUFFICIENT_CREDITS": 47}, counts


# ------------------------------------------------------------------ replays


def _parallel_replays(db: Db, function: str) -> tuple[dict[str, Any], list[Any]]:
    student = db.contact(cs_credits=5)
    exam = db.exam()
    call = _booker(db, function, student, exam, p_idempotency_key="double-click")
    results = run_parallel([call for _ in range(50)])
    return student, results


def test_parallel_replays_of_one_key_book_once(db: Db) -> None:
    student, results = _parallel_replays(db, "book")

    assert all(isinstance(r, dict) and r["ok"] for r in results), Counter(map(outcome, results))
    assert len({r["booking"]["id"] for r in results}) == 1
    assert sum(1 for r in results if not r["replayed"]) == 1
    assert db.count("hubspot_bookings") == 1
    assert db.credits(student)["cs_credits"] == 4


def test_negative_control_without_locks_replays_are_not_all_answered(db: Db, unlocked: str) -> None:
    _student, results = _parallel_replays(db, unlocked)

    answered_with_the_booking = sum(1 for r in results if isinstance(r, dict) and r["ok"])
    assert answered_with_the_booking < 50, Counter(map(outcome, results))


# ------------------------------------------------------------------ storm


def test_mixed_book_and_cancel_storm_conserves_credits_and_seats(db: Db) -> None:
    rng = random.Random(20261125)
    students = [
        db.contact(
            cs_credits=rng.randint(0, 3),
            sj_credits=rng.randint(0, 3),
            sjmini_credits=rng.randint(0, 2),
            mock_discussion_token=rng.randint(0, 2),
            shared_mock_credits=rng.randint(0, 3),
        )
        for _ in range(40)
    ]
    types = ["Clinical Skills", "Situational Judgment", "Mini-mock", "Mock Discussion"]
    exams = [
        db.exam(
            mock_type=types[i % 4],
            capacity=rng.randint(1, 6),
            exam_date=date.today() + timedelta(days=2 + i // 4),
        )
        for i in range(24)
    ]
    before = {s["id"]: db.credits(s) for s in students}
    db.conn.execute("truncate hubspot_sync.supabase_audit_log")

    def book(student: dict[str, Any], exam: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        params = {
            "p_student_id": student["student_id"],
            "p_email": student["email"],
            "p_exam_id": exam["hubspot_id"],
            "p_dominant_hand": "left",
            "p_attending_location": "online",
        }
        return lambda: db.backend.call("book", params)

    def cancel_some(student: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            rows = db.backend.call("find_booking", {"p_ref": "none-such"})  # a read in the mix
            active = [
                r["id"]
                for r in db.all(
                    "select id::text from hubspot_sync.hubspot_bookings"
                    " where student_id = %s and is_active = 'Active'",
                    student["student_id"],
                )
            ]
            if not active:
                return rows
            return db.backend.call(
                "cancel_booking",
                {
                    "p_booking_ref": rng.choice(active),
                    "p_student_id": student["student_id"],
                    "p_email": student["email"],
                },
            )

        return run

    for _round in range(3):
        calls: list[Callable[[], dict[str, Any]]] = []
        for _ in range(300):
            student = rng.choice(students)
            if rng.random() < 0.7:
                calls.append(book(student, rng.choice(exams)))
            else:
                calls.append(cancel_some(student))
        results = run_parallel(calls)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors[:3]

    # Seats: the counter equals the bookings holding a seat and never exceeds capacity.
    for exam in exams:
        assert db.seats(exam) == db.held_seats(exam)
        assert db.seats(exam) <= exam["capacity"]

    # Credits: balance now + credits held by active bookings = balance before.
    held: dict[str, Counter[str]] = {s["student_id"]: Counter() for s in students}
    for row in db.all(
        "select student_id, token_used from hubspot_sync.hubspot_bookings where is_active = 'Active'"
    ):
        held[row["student_id"]][KIND_OF_TOKEN[row["token_used"]]] += 1
    bookings_made = db.count("hubspot_bookings")
    assert bookings_made > 20  # the storm really booked
    for student in students:
        now = db.credits(student)
        for kind in CREDIT_KINDS:
            assert now[kind] >= 0
            assert now[kind] + held[student["student_id"]][kind] == before[student["id"]][kind]

    # The audit log accounts for every change of every balance.
    for student in students:
        deltas: Counter[str] = Counter()
        for row in db.all(
            "select old_values, new_values from hubspot_sync.supabase_audit_log"
            " where table_name = 'hubspot_contact_credits' and record_id = %s",
            student["id"],
        ):
            for kind, value in row["new_values"].items():
                if kind in CREDIT_KINDS:
                    deltas[kind] += value - row["old_values"][kind]
        now = db.credits(student)
        for kind in CREDIT_KINDS:
            assert before[student["id"]][kind] + deltas[kind] == now[kind]
    # ...and records every booking created and every seat change.
    assert (
        db.one(
            "select count(*) as n from hubspot_sync.supabase_audit_log"
            " where table_name = 'hubspot_bookings' and operation = 'INSERT'"
        )["n"]
        == bookings_made
    )


# ------------------------------------------------------------------ seat shards (20251212000100)
#
# The bookings of one exam take their seats in different shard rows, so these races
# are about the shards: every seat sold exactly once, cancels and capacity changes in
# the mix, and a booking that finds every shard with room locked by someone who then
# rolls back.


def _shards(db: Db, exam: dict[str, Any]) -> list[dict[str, Any]]:
    return db.all(
        "select shard, seats, held from hubspot_sync.exam_seat_shards where exam_id = %s"
        " order by shard",
        exam["id"],
    )


def _assert_seats_consistent(db: Db, exam: dict[str, Any]) -> None:
    """The shards add up to the exam's capacity and to its Active bookings; only when
    the exam holds more than its capacity is a shard over-full (shard 0, all full)."""
    capacity = int(
        db.one("select capacity from hubspot_sync.hubspot_mock_exams where id = %s", exam["id"])[
            "capacity"
        ]
    )
    shards = _shards(db, exam)
    assert sum(s["seats"] for s in shards) == capacity
    assert db.seats(exam) == sum(s["held"] for s in shards) == db.held_seats(exam)
    over = [s for s in shards if s["held"] > s["seats"]]
    if db.held_seats(exam) <= capacity:
        assert over == [], shards
    else:
        assert [s["shard"] for s in over] == [0] and all(s["held"] >= s["seats"] for s in shards)


def test_a_hot_exam_sells_exactly_its_capacity_to_parallel_bookers(db: Db) -> None:
    exam = db.exam(capacity=45)  # 32 shards of 1 or 2 seats: most shards fill up mid-race
    students = [db.contact(cs_credits=1) for _ in range(150)]

    results = run_parallel([_booker(db, "book", s, exam) for s in students])

    assert Counter(map(outcome, results)) == {"ok": 45, "EXAM_FULL": 105}
    _assert_seats_consistent(db, exam)
    assert db.seats(exam) == 45
    # No credit lost: exactly the 45 who got a seat paid one.
    paid = db.one(
        "select count(*) as n from hubspot_sync.hubspot_contact_credits where cs_credits = 0"
    )["n"]
    assert paid == 45 == db.count("hubspot_bookings")


def test_bookings_race_cancels_and_capacity_changes(db: Db, database_url: str) -> None:
    exam = db.exam(capacity=30)
    holders = [db.contact(cs_credits=1) for _ in range(20)]
    held = [db.book(h, exam)["booking"] for h in holders]
    bookers = [db.contact(cs_credits=1) for _ in range(80)]

    def cancel(booking: dict[str, Any], holder: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        return lambda: db.backend.call(
            "cancel_booking",
            {
                "p_booking_ref": booking["id"],
                "p_student_id": holder["student_id"],
                "p_email": holder["email"],
            },
        )

    def set_capacity(capacity: int) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    "update hubspot_sync.hubspot_mock_exams set capacity = %s where id = %s",
                    (capacity, exam["id"]),
                )
            return {"ok": True}

        return run

    calls: list[Callable[[], dict[str, Any]]] = [_booker(db, "book", s, exam) for s in bookers]
    calls += [cancel(b, h) for b, h in zip(held[:12], holders[:12], strict=True)]
    calls += [set_capacity(c) for c in (24, 40, 18, 35, 26)]
    random.Random(16).shuffle(calls)

    results = run_parallel(calls)

    assert not [r for r in results if isinstance(r, Exception)]
    _assert_seats_consistent(db, exam)
    # A cut below the seats held leaves the exam over capacity (no seat frees up until
    # it is back within); no booking ever took it past the largest capacity it had.
    assert db.seats(exam) <= 40
    ok = Counter(map(outcome, results))["ok"]
    # Every credit is where it should be: spent by an Active booking or back with its owner.
    spent = db.one(
        "select count(*) as n from hubspot_sync.hubspot_contact_credits where cs_credits = 0"
    )["n"]
    assert spent == db.held_seats(exam)
    assert ok > 12 + 5  # bookings went through, not only the cancels and capacity changes


def test_cancels_free_no_seat_while_an_exam_is_over_capacity(db: Db) -> None:
    """Legacy data (or a capacity cut) can leave more Active bookings than seats: seats
    free up only once the exam is back within its capacity."""
    exam = db.exam(capacity=3)
    owners = [db.contact() for _ in range(5)]
    legacy = [db.booking(o, exam) for o in owners]
    _assert_seats_consistent(db, exam)
    newcomers = [db.contact(cs_credits=1) for _ in range(3)]

    def cancel(i: int) -> dict[str, Any]:
        return db.call(
            "cancel_booking",
            p_booking_ref=str(legacy[i]["id"]),
            p_student_id=owners[i]["student_id"],
            p_email=owners[i]["email"],
        )

    assert cancel(0)["ok"] and db.book(newcomers[0], exam)["code"] == "EXAM_FULL"
    assert cancel(1)["ok"] and db.book(newcomers[0], exam)["code"] == "EXAM_FULL"
    assert cancel(2)["ok"] and db.book(newcomers[0], exam)["ok"]
    assert db.book(newcomers[1], exam)["code"] == "EXAM_FULL"
    _assert_seats_consistent(db, exam)

    # The same in parallel: two over-capacity cancels and bookers at once.
    exam = db.exam(capacity=3)
    owners = [db.contact() for _ in range(5)]
    legacy = [db.booking(o, exam) for o in owners]
    bookers = [db.contact(cs_credits=1) for _ in range(20)]
    calls: list[Callable[[], dict[str, Any]]] = [_booker(db, "book", s, exam) for s in bookers]
    calls += [
        (
            lambda i=i: db.backend.call(  # type: ignore[misc]
                "cancel_booking",
                {
                    "p_booking_ref": str(legacy[i]["id"]),
                    "p_student_id": owners[i]["student_id"],
                    "p_email": owners[i]["email"],
                },
            )
        )
        for i in range(4)
    ]
    random.Random(7).shuffle(calls)
    results = run_parallel(calls)
    assert not [r for r in results if isinstance(r, Exception)]
    _assert_seats_consistent(db, exam)
    assert db.held_seats(exam) <= 3


def _hold_the_last_seat_then_roll_back(
    db: Db, database_url: str, function: str
) -> tuple[dict[str, Any], bool]:
    """One transaction books the exam's only free seat and stays open; another booking
    starts meanwhile and finds no shard it can lock; the first rolls back. The second's
    answer, and whether it came before the rollback."""
    exam = db.exam(capacity=2)
    db.book(db.contact(cs_credits=1), exam)  # one seat taken for good, one free
    first, second = db.contact(cs_credits=1), db.contact(cs_credits=1)
    with psycopg.connect(database_url) as holder:
        answer = holder.execute(
            "select hubspot_sync.book(p_student_id => %s, p_email => %s, p_exam_id => %s,"
            " p_dominant_hand => 'right')",
            (first["student_id"], first["email"], str(exam["id"])),
        ).fetchone()
        assert answer is not None and answer[0]["ok"], answer
        waiting: list[dict[str, Any]] = []
        thread = threading.Thread(
            target=lambda: waiting.append(_booker(db, function, second, exam)())
        )
        thread.start()
        thread.join(0.5)  # long enough for the second booking to be waiting, or answered
        early = bool(waiting)
        holder.rollback()
    thread.join(10)
    assert len(waiting) == 1
    _assert_seats_consistent(db, exam)
    return waiting[0], early


def test_a_seat_held_by_a_transaction_that_rolls_back_is_not_reported_full(
    db: Db, database_url: str
) -> None:
    answer, early = _hold_the_last_seat_then_roll_back(db, database_url, "book")

    assert answer["ok"] and not early, answer


@pytest.fixture
def skip_only(db: Db) -> Iterator[str]:
    """hubspot_sync.book_skip_only: `book` whose seat claim only skips locked shards and
    never waits. Test-only."""
    definition = db.one(
        "select pg_get_functiondef('hubspot_sync.book(text,text,text,text,text,text,text)'"
        "::regprocedure) as sql"
    )["sql"]
    changed = definition.replace("hubspot_sync.book(", "hubspot_sync.book_skip_only(", 1).replace(
        "_seat_claim(v_exam.id)",
        "(select shard from exam_seat_shards where exam_id = v_exam.id and held < seats"
        " limit 1 for update skip locked)",
        1,
    )
    assert "_seat_claim(" not in changed
    db.conn.execute(changed)
    yield "book_skip_only"
    db.conn.execute("drop function hubspot_sync.book_skip_only(text,text,text,text,text,text,text)")


def test_negative_control_skip_locked_alone_answers_full_with_a_seat_free(
    db: Db, database_url: str, skip_only: str
) -> None:
    answer, early = _hold_the_last_seat_then_roll_back(db, database_url, skip_only)

    assert answer["code"] == "EXAM_FULL" and early, answer
