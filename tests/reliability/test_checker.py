"""The torture's checker finds each violation it promises to, on a small world made by
hand, and finds none in the same world when it is consistent. Without this, a torture
that passes could be a checker that looks at nothing."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import date
from typing import Any

import pytest

from lib.hubspot.mapping import CREDIT_KINDS, booking_properties
from local.standins.hubspot import BOOKINGS, CONTACTS, MOCK_EXAMS, HubSpotStandIn, serve
from reliability import checker
from reliability.history import History, Op
from reliability.world import Exam, Student, World

DAY = date(2030, 3, 4)
ALICE = Student(str(uuid.uuid4()), "T00001", "torture1@example.com", "601")
BOB = Student(str(uuid.uuid4()), "T00002", "torture2@example.com", "602")
EXAM = Exam(str(uuid.uuid4()), "701", "Clinical Skills", DAY, capacity=2)


def world() -> World:
    start = dict.fromkeys(CREDIT_KINDS, 2)
    return World((ALICE, BOB), (EXAM,), {ALICE.id: dict(start), BOB.id: dict(start)})


def booking(student: Student, key: str, **values: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "hubspot_id": None,
        "booking_id": f"BK-{key[:8]}",
        "associated_mock_exam": EXAM.hubspot_id,
        "student_id": student.student_id,
        "student_email": student.email,
        "name": "Torture Student",
        "is_active": "Active",
        "exam_date": DAY,
        "mock_type": EXAM.mock_type,
        "token_used": "Clinical Skills Token",
        "token_refunded": None,
        "idempotency_key": key,
        **values,
    }


def contact(student: Student, **balances: int) -> dict[str, Any]:
    return {
        "id": student.id,
        "hubspot_id": student.hubspot_id,
        "student_id": student.student_id,
        "email": student.email,
        **dict.fromkeys(CREDIT_KINDS, 2),
        **balances,
    }


def spent(student: Student, old: int = 2) -> dict[str, Any]:
    """The audit row book() writes for one Clinical Skills credit."""
    return {
        "record_id": student.id,
        "old_values": {"cs_credits": old},
        "new_values": {"cs_credits": old - 1},
        "reason": None,
    }


def answered(kind: str, args: dict[str, Any], status: int | None, **data: Any) -> Op:
    op = Op(kind, args, status=status, data=data)
    op.ended = time.monotonic()
    return op


def history(*ops: Op) -> History:
    result = History()
    for op in ops:
        result.add(op)
    return result


class Consistent:
    """Alice booked the exam (key k1, answered 201) and replayed it (200); Bob's
    create got no answer and did happen. Everything agrees."""

    def __init__(self) -> None:
        self.alice = booking(ALICE, "k1")
        self.bob = booking(BOB, "k2")
        self.exam = {"hubspot_id": EXAM.hubspot_id, "capacity": 2, "total_bookings": 2}
        self.contacts = [contact(ALICE, cs_credits=1), contact(BOB, cs_credits=1)]
        self.audit = [spent(ALICE), spent(BOB)]
        first = answered(
            "book",
            {"student": ALICE, "key": "k1", "body": {}},
            201,
            id=self.alice["id"],
            booking_id=self.alice["booking_id"],
        )
        self.ops = [
            first,
            answered(
                "replay",
                {"student": ALICE, "key": "k1", "body": {}, "original": first},
                200,
                id=self.alice["id"],
            ),
            answered("book", {"student": BOB, "key": "k2", "body": {}}, None),
        ]

    def snapshot(self) -> checker.Snapshot:
        return checker.Snapshot([self.exam], self.contacts, [self.alice, self.bob], self.audit)

    def verdict(self, *, final: bool = True) -> checker.Verdict:
        ops = history(*self.ops)
        return checker.judge(self.snapshot(), world(), ops, ops, final=final)


def test_a_consistent_world_has_no_violation_and_every_check_looks() -> None:
    verdict = Consistent().verdict()
    assert verdict.count == 0, verdict.describe()
    # The cancel, read and adjustment checks have nothing to look at in this world;
    # their own tests below give them something.
    quiet = {"acknowledged_cancel_happened", "no_unasked_cancel", "reads_within_capacity"}
    for check in set(checker.CHECKS) - quiet - {"adjustments_audited"}:
        assert verdict.examined[check] > 0, check


def flagged(world_state: Consistent) -> set[str]:
    return set(world_state.verdict().violations)


def test_an_oversold_exam() -> None:
    state = Consistent()
    state.exam["capacity"] = 1
    assert "capacity" in flagged(state)


def test_a_seat_count_that_disagrees_with_the_bookings() -> None:
    state = Consistent()
    state.exam["total_bookings"] = 1
    assert flagged(state) == {"seats"}


def test_a_negative_balance() -> None:
    state = Consistent()
    state.contacts[0]["sj_credits"] = -1
    state.audit.append(
        {
            "record_id": ALICE.id,
            "old_values": {"sj_credits": 2},
            "new_values": {"sj_credits": -1},
            "reason": None,
        }
    )
    assert "no_negative_balance" in flagged(state)


def test_a_balance_change_the_audit_log_does_not_explain() -> None:
    state = Consistent()
    state.audit.pop()  # Bob's spent credit, unaudited
    assert "audit_accounts_for_balance" in flagged(state)


def test_two_seats_for_one_student_on_one_date_and_type() -> None:
    state = Consistent()
    state.bob.update(student_id=ALICE.student_id, student_email=ALICE.email)
    assert "no_duplicate_booking" in flagged(state)


def test_an_acknowledged_booking_that_is_not_there() -> None:
    state = Consistent()
    state.alice["id"] = str(uuid.uuid4())
    assert "acknowledged_booking_exists" in flagged(state)


def test_a_replay_that_returned_another_booking() -> None:
    state = Consistent()
    state.ops[1].data["id"] = str(uuid.uuid4())
    assert "replay_returns_original" in flagged(state)


def test_one_key_that_made_two_bookings() -> None:
    state = Consistent()
    state.bob["idempotency_key"] = "k1"
    assert "one_booking_per_key" in flagged(state)


def test_a_booking_made_by_a_create_that_was_refused() -> None:
    state = Consistent()
    state.ops[2] = answered("book", {"student": BOB, "key": "k2", "body": {}}, 409)
    assert "one_booking_per_key" in flagged(state)


def test_an_acknowledged_cancel_that_did_not_happen_and_one_nobody_asked_for() -> None:
    state = Consistent()
    state.ops.append(answered("cancel", {"booking": state.alice["id"], "student": ALICE}, 200))
    assert "acknowledged_cancel_happened" in flagged(state)
    state = Consistent()
    state.bob["is_active"] = "Cancelled"
    state.exam["total_bookings"] = 1
    assert "no_unasked_cancel" in flagged(state)


def test_a_capacity_read_over_capacity() -> None:
    state = Consistent()
    state.ops.append(answered("read.capacity", {"exam": EXAM}, 200, capacity=2, total_bookings=3))
    assert flagged(state) == {"reads_within_capacity"}


def test_adjustments_answered_but_missing_and_refused_but_applied() -> None:
    state = Consistent()
    args = {"student": ALICE, "deltas": {"sj_credits": 1}, "reason": "torture adjustment a"}
    state.ops.append(answered("adjust", args, 200))
    assert "adjustments_audited" in flagged(state)
    state = Consistent()
    state.ops.append(answered("adjust", args, 409))
    state.audit.append(
        {
            "record_id": ALICE.id,
            "old_values": {"sj_credits": 2},
            "new_values": {"sj_credits": 3},
            "reason": "torture adjustment a",
        }
    )
    state.contacts[0]["sj_credits"] = 3
    assert "adjustments_audited" in flagged(state)


def test_the_bank_balance_counts_adjustments_purchases_spending_and_refunds() -> None:
    state = Consistent()
    # An adjustment with no answer that did happen (+1 sj), a HubSpot purchase (+2
    # shared), a refunded cancel of Bob's booking (+1 cs back): all accounted.
    args = {"student": ALICE, "deltas": {"sj_credits": 1}, "reason": "torture adjustment b"}
    state.ops.append(answered("adjust", args, None))
    state.audit.append(
        {
            "record_id": ALICE.id,
            "old_values": {"sj_credits": 2},
            "new_values": {"sj_credits": 3},
            "reason": "torture adjustment b",
        }
    )
    state.contacts[0]["sj_credits"] = 3
    state.contacts[0]["shared_mock_credits"] = 4
    state.audit.append(
        {
            "record_id": ALICE.id,
            "old_values": {"shared_mock_credits": 2},
            "new_values": {"shared_mock_credits": 4},
            "reason": "HubSpot",
        }
    )
    ops = history(*state.ops)
    purchases = {ALICE.id: Counter({"shared_mock_credits": 2})}
    verdict = checker.judge(state.snapshot(), world(), ops, ops, purchases=purchases, final=True)
    assert verdict.count == 0, verdict.describe()
    # The same world without the purchase recorded: a credit appeared from nowhere.
    verdict = checker.judge(state.snapshot(), world(), ops, ops, final=True)
    assert set(verdict.violations) == {"bank_balance"}


# ---------------------------------------------------------------- HubSpot


@pytest.fixture
def standin() -> Any:
    with serve("pat-checker-test") as running:
        yield running


def mirrored(state: Consistent, standin: HubSpotStandIn) -> None:
    """HubSpot holding exactly what PostgreSQL holds."""
    standin.put(MOCK_EXAMS, {"total_bookings": "2"}, id=EXAM.hubspot_id)
    for row in state.contacts:
        standin.put(
            CONTACTS,
            {"email": row["email"], **{k: str(row[k]) for k in CREDIT_KINDS}},
            id=row["hubspot_id"],
        )
    for n, row in enumerate((state.alice, state.bob)):
        row["hubspot_id"] = f"80{n}"
        properties = booking_properties({**row, "email": row["student_email"]})
        standin.put(BOOKINGS, {**properties, "booking_id": row["booking_id"]}, id=row["hubspot_id"])
        owner = ALICE if row is state.alice else BOB
        standin.associate(BOOKINGS, row["hubspot_id"], CONTACTS, str(owner.hubspot_id))
        standin.associate(BOOKINGS, row["hubspot_id"], MOCK_EXAMS, EXAM.hubspot_id)


def test_hubspot_matching_postgresql_passes_and_each_difference_is_found(
    standin: HubSpotStandIn,
) -> None:
    state = Consistent()
    mirrored(state, standin)
    verdict = checker.hubspot_violations(state.snapshot(), standin)
    assert verdict.count == 0, verdict.describe()

    standin.put(CONTACTS, {"cs_credits": "5"}, id=str(ALICE.hubspot_id))
    standin.put(BOOKINGS, {"is_active": "Cancelled"}, id=str(state.bob["hubspot_id"]))
    standin.put(MOCK_EXAMS, {"total_bookings": "1"}, id=EXAM.hubspot_id)
    standin.put(BOOKINGS, {"booking_id": "BK-DUPLICATE"})
    verdict = checker.hubspot_violations(state.snapshot(), standin)
    assert set(verdict.violations) == {"hubspot_credits", "hubspot_bookings", "hubspot_seats"}
