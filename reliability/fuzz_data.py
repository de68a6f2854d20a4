"""Real identities and ids for the fuzzer to put in place of generated ones.

A generated student id and email almost never name a student who exists, nor a
generated UUID an exam or a booking: left alone, nearly every case would stop at
"not found" and the code behind it (credits, booking rules, cancellation, the admin's
views of a student) would never see a fuzzed request. `ground` replaces, in about
half of the cases, the values that name something with ones read from the seeded
database, and leaves the rest of the generated request as it was: a real student
with a fuzzed exam id, a real booking with a fuzzed reason, and so on.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from lib.http import MAX_BODY_BYTES, MAX_JSON_DEPTH
from local import hubspot_demo

if TYPE_CHECKING:
    from schemathesis import APIOperation, Case

    AnyCase = Case[APIOperation[Any, Any, Any, Any]]

# Students to act as, besides the demo student: enough to hit every balance shape
# the seed draws (none left, some, only shared), few enough to hit each often.
STUDENTS = 24
BOOKINGS = 60
# Share of cases that get real values (the rest stay as generated).
GROUNDED = 0.5
# Nested bodies: up to 2,000 levels, past json.loads's own limit (about 1,000), and
# still under MAX_BODY_BYTES as objects (`{"a":` and `}`, 6 bytes a level) with the
# rest of a generated body.
MAX_NESTING = 2000


@dataclass(frozen=True)
class Student:
    id: str
    student_id: str
    email: str


@dataclass(frozen=True)
class Booking:
    refs: tuple[str, ...]  # UUID, booking code, HubSpot id (when it has one)
    owner: Student


@dataclass(frozen=True)
class KnownData:
    students: tuple[Student, ...]
    # Students only HubSpot knows: their first login creates them here.
    hubspot_only: tuple[Student, ...]
    exam_refs: tuple[str, ...]  # UUIDs and HubSpot ids of upcoming and past exams
    bookings: tuple[Booking, ...]
    run_ids: tuple[str, ...]


def known(database_url: str) -> KnownData:
    """What the seeded database holds, a reproducible sample of it."""
    with psycopg.connect(database_url) as conn:
        students = [
            Student(str(row[0]), row[1], row[2])
            for row in conn.execute(
                "select id, student_id, email from hubspot_sync.hubspot_contact_credits"
                " order by student_id <> 'DEMO001', md5(student_id) limit %s",
                (STUDENTS,),
            )
        ]
        exam_refs = [
            str(ref)
            for row in conn.execute(
                "select id, hubspot_id from hubspot_sync.hubspot_mock_exams order by start_time"
            )
            for ref in row
            if ref is not None
        ]
        owners = {(s.student_id, s.email): s for s in students}
        bookings = [
            Booking(tuple(str(ref) for ref in row[:3] if ref is not None), owners[row[3], row[4]])
            for row in conn.execute(
                "select b.id, b.booking_id, b.hubspot_id, b.student_id, b.student_email"
                "  from hubspot_sync.hubspot_bookings b where b.student_id = any(%s)"
                # Spread over students and kinds, and the same rows every run (ids
                # and codes of upcoming bookings are book()'s own, new each run).
                " order by md5(concat_ws('|', b.student_id, b.exam_date, b.mock_type,"
                "                        b.is_active)), b.booking_id limit %s",
                ([s.student_id for s in students], BOOKINGS),
            )
            if (row[3], row[4]) in owners
        ]
        run_ids = [str(row[0]) for row in conn.execute("select id from hubspot_sync.sync_runs")]
    hubspot_only = tuple(
        Student("", f"HSDEMO{n}", f"hsdemo{n}@example.com")
        for n in range(1, hubspot_demo.HUBSPOT_ONLY_STUDENTS + 1)
    )
    return KnownData(
        tuple(students), hubspot_only, tuple(exam_refs), tuple(bookings), tuple(run_ids)
    )


def ground(case: AnyCase, data: KnownData, rng: random.Random) -> None:
    """Put real values in place of generated ones in about half of the cases, in
    place; `rng` is Hypothesis's, so the choice is part of the seeded run."""
    if rng.random() >= GROUNDED:
        return
    path = case.operation.path
    student = _student(data, rng)
    if "{id}" in path and case.path_parameters is not None:
        ref, owner = _path_ref(path, data, rng)
        if ref is not None:
            case.path_parameters = {**case.path_parameters, "id": ref}
        student = owner or student
    values: dict[str, Any] = {"student_id": student.student_id, "email": student.email}
    if data.exam_refs:
        values["mock_exam_id"] = rng.choice(data.exam_refs)
    terms = [student.student_id, student.email, student.email.split("@")[0][:5], student.id]
    values["q"] = rng.choice([term for term in terms if term])
    case.query = _replace(case.query, values, rng)
    if isinstance(case.body, dict):
        case.body = _replace(case.body, values, rng)


def _student(data: KnownData, rng: random.Random) -> Student:
    if data.hubspot_only and rng.random() < 0.1:
        return rng.choice(data.hubspot_only)
    return rng.choice(data.students)


def _path_ref(path: str, data: KnownData, rng: random.Random) -> tuple[str | None, Student | None]:
    """A real id for the path's {id}, and the student it belongs to where it does."""
    if path.startswith(("/api/bookings/", "/api/admin/bookings/")) and data.bookings:
        booking = rng.choice(data.bookings)
        return rng.choice(booking.refs), booking.owner
    if path.startswith("/api/mock-exams/") and data.exam_refs:
        return rng.choice(data.exam_refs), None
    if path.startswith("/api/admin/students/") and data.students:
        student = rng.choice(data.students)
        return student.id, student
    if path.startswith("/api/admin/sync/runs/") and data.run_ids:
        return rng.choice(data.run_ids), None
    return None, None


def _replace(container: Any, values: dict[str, Any], rng: random.Random) -> Any:
    """`container` with some of its keys that `values` knows set to real values."""
    if not isinstance(container, dict):
        return container
    replaced = dict(container)
    # Sorted: a set's order changes with every process's string hashing, and each key
    # draws from `rng`, which must draw alike in every run of a seed.
    for key in sorted(container.keys() & values.keys()):
        if rng.random() < 0.9:
            replaced[key] = values[key]
    return replaced


@dataclass(frozen=True)
class Nesting:
    """How a case's body was nested (`nest`): how deep in all, and where."""

    depth: int  # levels of arrays and objects, the body's own object included
    shape: str  # "array" or "object"
    field: str | None  # the top-level field holding it; None: it is the whole body
    keys: frozenset[str]  # the body's top-level keys (an error may name one)

    @property
    def is_object(self) -> bool:
        """Whether the body is still a JSON object (the API takes nothing else)."""
        return self.field is not None or self.shape == "object"


def nest(case: AnyCase, rng: random.Random) -> Nesting:
    """Make the case's body a deeply nested one, in place, sent as the JSON text it is
    (json.dumps itself recurses, and gives up near 1,000 levels). Depths cluster round
    MAX_JSON_DEPTH, where the API's answer changes, and spread from 1 to MAX_NESTING.
    The nested value is the whole body, or a field of it: one the operation takes, in
    place of its generated value, or one of its own."""
    roll = rng.random()
    if roll < 0.4:
        depth = rng.randint(MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH + 2)
    elif roll < 0.7:
        depth = rng.randint(1, MAX_JSON_DEPTH)
    else:
        depth = rng.randint(MAX_JSON_DEPTH + 1, MAX_NESTING)
    shape = rng.choice(("array", "object"))
    body = case.body if isinstance(case.body, dict) else {}
    field: str | None = None
    if depth > 1 and rng.random() < 0.7:
        field = rng.choice(sorted(body) or ["nested"]) if rng.random() < 0.7 else "nested"
    opening, closing = ("[", "]") if shape == "array" else ('{"a":', "}")
    rest: dict[str, Any] = {}
    if field is None:
        head, tail = "", ""
    else:
        rest = {key: item for key, item in body.items() if key != field}
        head = json.dumps(rest)[:-1] + (", " if rest else "") + json.dumps(field) + ": "
        tail = "}"
    # A body over MAX_BODY_BYTES is refused for its size (413), never parsed: a long
    # generated field leaves fewer levels to the nested value.
    room = (MAX_BODY_BYTES - len(head) - len(tail) - 1) // (len(opening) + len(closing))
    inner = min(depth - (field is not None), room)
    case.body = (head + opening * inner + "1" + closing * inner + tail).encode()
    case.media_type = "application/json"
    if field is not None:
        keys = frozenset({*rest, field})
    else:
        keys = frozenset({"a"} if shape == "object" and inner > 0 else ())
    return Nesting(inner + (field is not None), shape, field, keys)
