"""The torture's clients: threads that book, cancel, replay, adjust and read over HTTP
as students and admins do in a rush, recording every request and answer in a History.

Each client draws its operations from its own generator, seeded from the run's seed
and its number, so a seed fixes what every client asks for; which booking a cancel or
a replay picks depends on what other clients have done by then, so the interleaving
(and so the exact answers) is the machine's. Every student is a client address of
its own (X-Real-IP), as students on their own connections are; admins use a few.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from lib.hubspot.mapping import CREDIT_KINDS
from reliability.history import History, Op
from reliability.world import Exam, Student, World

# Long enough for an answer held up behind a restarting PostgreSQL (the pool waits
# 10 s for a connection); a request still open after this is recorded as "no answer".
REQUEST_TIMEOUT_S = 20.0
WEIGHTS: dict[str, int] = {
    "book": 38,
    "replay": 10,
    "cancel": 14,
    "admin_cancel": 4,
    "adjust": 8,
    "read": 22,
    "login": 4,
}
# Cancels that repeat one already answered (idempotent: nothing changes).
REPEAT_CANCEL_SHARE = 0.1
# Admin addresses per client: the admin API allows 300 requests a minute per address.
ADMIN_ADDRESSES = 4
# A third of the bookings go to the first few exams: the rush on one session.
HOT_EXAMS = 3
HOT_SHARE = 0.35


@dataclass(frozen=True)
class Booked:
    """A booking a client was told exists (201/200)."""

    id: str
    booking_id: str
    student: Student


class Ledger:
    """What clients learnt, shared between them: bookings they were told exist, and
    the create requests they sent (for replays)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.booked: list[Booked] = []
        self.cancelled_ones: list[Booked] = []
        self.creates: list[Op] = []

    def add_booked(self, booked: Booked) -> None:
        with self._lock:
            self.booked.append(booked)

    def cancelled(self, booked: Booked) -> None:
        """Told it is cancelled: later cancels pick it only now and then (a repeat)."""
        with self._lock:
            if booked in self.booked:
                self.booked.remove(booked)
                self.cancelled_ones.append(booked)

    def add_create(self, op: Op) -> None:
        with self._lock:
            self.creates.append(op)

    def pick_booked(self, rng: random.Random) -> Booked | None:
        """Mostly a booking not known to be cancelled; sometimes one that is."""
        with self._lock:
            pool = self.cancelled_ones if rng.random() < REPEAT_CANCEL_SHARE else self.booked
            pool = pool or self.booked or self.cancelled_ones
            return rng.choice(pool) if pool else None

    def pick_create(self, rng: random.Random) -> Op | None:
        with self._lock:
            return rng.choice(self.creates) if self.creates else None


def student_address(student: Student) -> str:
    n = int(student.student_id[1:])
    return f"10.77.{n // 250}.{n % 250 + 1}"


def booking_body(student: Student, exam: Exam) -> dict[str, Any]:
    body: dict[str, Any] = {
        "student_id": student.student_id,
        "email": student.email,
        "mock_exam_id": exam.id,
    }
    if exam.mock_type == "Clinical Skills":
        body["dominant_hand"] = "right"
    if exam.mock_type in ("Situational Judgment", "Mini-mock"):
        body["attending_location"] = "mississauga"
    return body


class Client(threading.Thread):
    """One client loop until `stop` is set."""

    def __init__(
        self,
        number: int,
        seed: int,
        base: str,
        world: World,
        history: History,
        ledger: Ledger,
        admin_token: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"torture-client-{number}", daemon=True)
        self.rng = random.Random(f"{seed}:client:{number}")
        self.base = base
        self.world = world
        self.history = history
        self.ledger = ledger
        self.number = number
        self.admin_token = admin_token
        self.stop = stop
        self.session = requests.Session()

    def run(self) -> None:
        kinds, weights = zip(*WEIGHTS.items(), strict=True)
        try:
            while not self.stop.is_set():
                kind = self.rng.choices(kinds, weights)[0]
                getattr(self, kind)()
        finally:
            self.session.close()

    # ---------------------------------------------------------------- operations

    def book(self) -> None:
        student = self.rng.choice(self.world.students)
        if self.rng.random() < HOT_SHARE:
            exam = self.rng.choice(self.world.exams[:HOT_EXAMS])
        else:
            exam = self.rng.choice(self.world.exams)
        key = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self._create("book", student, booking_body(student, exam), key)

    def replay(self) -> None:
        original = self.ledger.pick_create(self.rng)
        if original is None:
            return self.book()
        student: Student = original.args["student"]
        self._create(
            "replay", student, original.args["body"], original.args["key"], original=original
        )
        return None

    def _create(
        self,
        kind: str,
        student: Student,
        body: dict[str, Any],
        key: str,
        original: Op | None = None,
    ) -> None:
        op = self._call(
            kind,
            "POST",
            "/api/bookings/create",
            {"student": student, "body": body, "key": key, "original": original},
            json=body,
            headers={"Idempotency-Key": key, "X-Real-IP": student_address(student)},
        )
        if kind == "book":
            self.ledger.add_create(op)
        if op.outcome == "ok" and "id" in op.data:
            self.ledger.add_booked(Booked(op.data["id"], op.data["booking_id"], student))

    def cancel(self) -> None:
        booked = self.ledger.pick_booked(self.rng)
        if booked is None:
            return self.book()
        ref = booked.id if self.rng.random() < 0.6 else booked.booking_id
        student = booked.student
        op = self._call(
            "cancel",
            "DELETE",
            f"/api/bookings/{ref}",
            {"booking": booked.id, "student": student},
            json={"student_id": student.student_id, "email": student.email},
            headers={"X-Real-IP": student_address(student)},
        )
        if op.outcome == "ok":
            self.ledger.cancelled(booked)
        return None

    def admin_cancel(self) -> None:
        booked = self.ledger.pick_booked(self.rng)
        if booked is None:
            return self.book()
        refund = self.rng.random() < 0.7
        op = self._call(
            "admin_cancel",
            "DELETE",
            f"/api/admin/bookings/{booked.id}",
            {"booking": booked.id, "refund": refund},
            json={"refund": refund, "reason": "torture: cancelled on the student's behalf"},
            headers=self.admin_headers(),
        )
        if op.outcome == "ok":
            self.ledger.cancelled(booked)
        return None

    def adjust(self) -> None:
        student = self.rng.choice(self.world.students)
        kinds = self.rng.sample(CREDIT_KINDS, self.rng.randint(1, 2))
        deltas = {kind: self.rng.choice((-2, -1, 1, 2, 3)) for kind in kinds}
        # A reason of its own: the audit log tells whether an unanswered one happened.
        reason = f"torture adjustment {uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        self._call(
            "adjust",
            "POST",
            f"/api/admin/students/{student.id}/credits",
            {"student": student, "deltas": deltas, "reason": reason},
            json={"deltas": deltas, "reason": reason},
            headers=self.admin_headers(),
        )

    def read(self) -> None:
        student = self.rng.choice(self.world.students)
        exam = self.rng.choice(self.world.exams)
        identity = {"student_id": student.student_id, "email": student.email}
        headers = {"X-Real-IP": student_address(student)}
        choice = self.rng.randrange(4)
        if choice == 0:
            self._call(
                "read.capacity",
                "GET",
                f"/api/mock-exams/{exam.id}/capacity",
                {"exam": exam},
                headers=headers,
            )
        elif choice == 1:
            self._call(
                "read.available",
                "GET",
                "/api/mock-exams/available",
                {"mock_type": exam.mock_type},
                params={"mock_type": exam.mock_type, "include_capacity": "true"},
                headers=headers,
            )
        elif choice == 2:
            self._call(
                "read.list",
                "GET",
                "/api/bookings/list",
                {"student": student},
                params={**identity, "filter": "all", "limit": "100"},
                headers=headers,
            )
        else:
            self._call(
                "read.validate",
                "POST",
                "/api/mock-exams/validate-credits",
                {"student": student},
                json={**identity, "mock_type": exam.mock_type},
                headers=headers,
            )

    def login(self) -> None:
        student = self.rng.choice(self.world.students)
        self._call(
            "login",
            "POST",
            "/api/user/login",
            {"student": student},
            json={"student_id": student.student_id, "email": student.email},
            headers={"X-Real-IP": student_address(student)},
        )

    def admin_headers(self) -> dict[str, str]:
        """An admin's token, from one of this client's admin addresses (drawn anew)."""
        address = f"10.78.{self.number}.{self.rng.randrange(ADMIN_ADDRESSES) + 1}"
        return {"Authorization": f"Bearer {self.admin_token}", "X-Real-IP": address}

    # ---------------------------------------------------------------- transport

    def _call(self, kind: str, method: str, path: str, args: dict[str, Any], **kwargs: Any) -> Op:
        op = Op(kind, args)
        self.history.add(op)  # in flight from now: the checker counts it as maybe done
        try:
            response = self.session.request(
                method, self.base + path, timeout=REQUEST_TIMEOUT_S, **kwargs
            )
        except requests.RequestException as error:
            op.error = type(error).__name__
        else:
            op.data = _payload(response)
            op.retry_after = response.headers.get("Retry-After")
            op.status = response.status_code
        op.ended = time.monotonic()  # last: `done` means every field is set
        return op


def _payload(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    inner = body.get("data") if body.get("success") else body.get("error")
    return inner if isinstance(inner, dict) else {}
