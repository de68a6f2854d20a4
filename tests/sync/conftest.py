"""Fixtures for the sync tests: the real database (migrated, emptied per test), the
HubSpot stand-in (fresh per test), and `World`, which puts matching records on both
sides, changes them the way students and admins do, runs the sync and checks that the
two sides agree in every respect the issue names.

Budgets are generous unless a test lowers them; batch sizes are HubSpot's unless a
test shrinks them to make many batches out of few records."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lib import db as lib_db
from lib.db import PsycopgBackend
from lib.hubspot.client import HubSpotClient, LocalBudget
from lib.hubspot.mapping import CREDIT_KINDS, booking_properties, credit_values, epoch_ms
from lib.hubspot.sync import SyncResult, run_once
from lib.hubspot.sync_run import SyncOptions
from local.standins.hubspot import BOOKINGS, CONTACTS, MOCK_EXAMS, HubSpotStandIn, serve
from tests.helpers import Db

TOKEN = "pat-test-sync-standin"
# Reads never change HubSpot; everything else the sync sends does.
READ_PATHS = ("/search", "/batch/read", "/labels")
TOKENS = {
    "Situational Judgment Token": "sj_credits",
    "Clinical Skills Token": "cs_credits",
    "Mini-mock Token": "sjmini_credits",
    "Mock Discussion Token": "mock_discussion_token",
    "Shared Token": "shared_mock_credits",
}


@pytest.fixture
def standin() -> Iterator[HubSpotStandIn]:
    # Association calls get their own window, as in HubSpot.
    with serve(
        TOKEN, per_10s=10_000, interval_ms=1000, search_per_s=10_000, associations_per_10s=10_000
    ) as running:
        yield running


@pytest.fixture
def world(db: Db, backend: PsycopgBackend, standin: HubSpotStandIn) -> Iterator[World]:
    previous = lib_db.use_backend(backend)  # run_once calls the database through lib.db
    instance = World(db, standin)
    yield instance
    instance.close()
    lib_db.use_backend(previous)


class Clock:
    """A clock that moves only when told: `now` past a run's deadline stops it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def is_write(path: str, method: str) -> bool:
    return method != "GET" and not any(part in path for part in READ_PATHS)


class World:
    """Both sides of the sync, and what each should hold."""

    def __init__(self, db: Db, standin: HubSpotStandIn) -> None:
        self.db = db
        self.standin = standin
        self.initial: dict[str, dict[str, int]] = {}  # contact id -> balances at creation
        self.purchases: dict[str, Counter[str]] = {}  # contact id -> HubSpot-side changes
        self._clients: list[HubSpotClient] = []
        self._days = 0

    def close(self) -> None:
        for client in self._clients:
            client.close()

    # ---- records on both sides

    def contact(self, *, in_hubspot: bool = True, **values: Any) -> dict[str, Any]:
        credits = {kind: int(values.pop(kind, 5)) for kind in CREDIT_KINDS}
        if not in_hubspot:
            values["hubspot_id"] = None
        row = self.db.contact(**credits, **values)
        if in_hubspot:
            self.standin.put(
                CONTACTS,
                {
                    "email": row["email"],
                    "student_id": row["student_id"],
                    "firstname": row["firstname"],
                    "lastname": row["lastname"],
                    **credits,
                },
                id=row["hubspot_id"],
            )
        self.initial[str(row["id"])] = credits
        self.purchases[str(row["id"])] = Counter()
        return row

    def exam(self, **values: Any) -> dict[str, Any]:
        values.setdefault("capacity", 400)
        # A day of its own: a student holds one booking per date and type.
        self._days += 1
        values.setdefault("exam_date", date.today() + timedelta(days=10 + self._days))
        row = self.db.exam(**values)
        self.standin.put(MOCK_EXAMS, exam_properties(row), id=row["hubspot_id"])
        return row

    def book(self, contact: dict[str, Any], exam: dict[str, Any], **extra: Any) -> dict[str, Any]:
        answer = self.db.book(contact, exam, **extra)
        assert answer["ok"], answer
        booking: dict[str, Any] = answer["booking"]
        return booking

    def cancel(self, booking: dict[str, Any]) -> None:
        answer = self.db.call("cancel_booking", p_booking_ref=str(booking["id"]), p_admin="tests")
        assert answer["ok"], answer

    def purchase(self, contact: dict[str, Any], kind: str, amount: int) -> None:
        """A change made in HubSpot (a purchase, or an admin edit when negative)."""
        current = self.hubspot_credits(contact)[kind]
        self.standin.put(CONTACTS, {kind: current + amount}, id=str(contact["hubspot_id"]))
        self.purchases[str(contact["id"])][kind] += amount

    def hubspot_credits(self, contact: dict[str, Any]) -> dict[str, int]:
        record = self.hubspot(CONTACTS, str(self.fresh_contact(contact)["hubspot_id"]))
        values = credit_values(record["properties"])
        assert values is not None
        return dict(zip(CREDIT_KINDS, values, strict=True))

    def fresh_contact(self, contact: dict[str, Any]) -> dict[str, Any]:
        return self.db.one(
            "select * from hubspot_sync.hubspot_contact_credits where id = %s", contact["id"]
        )

    def hubspot(self, object_type: str, record_id: str) -> dict[str, Any]:
        for record in self.standin.objects(object_type):
            if record["id"] == record_id:
                return record
        raise AssertionError(f"HubSpot has no {object_type} {record_id}")

    # ---- running the sync

    def client(self, **kwargs: Any) -> HubSpotClient:
        kwargs.setdefault("backoff_base_s", 0.01)
        kwargs.setdefault("backoff_cap_s", 0.05)
        kwargs.setdefault(
            "budget",
            LocalBudget(general_limit=10_000, search_limit=10_000, association_limit=10_000),
        )
        client = HubSpotClient(TOKEN, self.standin.url, seed=7, **kwargs)
        self._clients.append(client)
        return client

    def sync(
        self,
        mode: str = "delta",
        *,
        client: HubSpotClient | None = None,
        options: SyncOptions | None = None,
        clock: Clock | None = None,
    ) -> SyncResult:
        """One run; with `clock`, its deadline is 10 on that clock (advance it past 10
        to make the run stop after the batch in hand)."""
        return run_once(
            mode,  # type: ignore[arg-type]
            10.0 if clock else time.monotonic() + 60,
            trigger="test",
            client=client or self.client(),
            options=replace(options or SyncOptions(), app_id=self.standin.app_id),
            clock=clock or time.monotonic,
        )

    def writes(self, since: float = 0.0) -> list[str]:
        """The write requests HubSpot received since `since` (epoch seconds)."""
        return [
            f"{r.method} {r.path}"
            for r in self.standin.requests()
            if r.at >= since and is_write(r.path, r.method)
        ]

    # ---- the truth on both sides

    def expected_credits(self, contact: dict[str, Any]) -> dict[str, int]:
        """Initial balances, plus HubSpot-side changes, minus the seats held."""
        spent: Counter[str] = Counter()
        for row in self.db.all(
            "select token_used from hubspot_sync.hubspot_bookings where student_id = %s"
            " and student_email = %s and is_active = 'Active'",
            contact["student_id"],
            contact["email"],
        ):
            if row["token_used"] in TOKENS:
                spent[TOKENS[row["token_used"]]] += 1
        key = str(contact["id"])
        return {
            kind: self.initial[key][kind] + self.purchases[key][kind] - spent[kind]
            for kind in CREDIT_KINDS
        }

    def assert_consistent(self) -> None:
        """Both sides agree on everything the sync owns, nothing is duplicated and no
        credit change of either side is lost."""
        bookings = self.db.all("select * from hubspot_sync.hubspot_bookings order by id")
        in_hubspot = self.standin.objects(BOOKINGS)
        # Exactly the same bookings on both sides: no duplicate, none missing (legacy
        # codes may repeat, as often on both sides).
        codes = Counter(r["properties"]["booking_id"] for r in in_hubspot)
        assert codes == Counter(r["booking_id"] for r in bookings), "bookings differ"
        assert len({r["hubspot_id"] for r in bookings}) == len(bookings)
        by_id = {r["id"]: r for r in in_hubspot}
        contact_ids = {
            (c["student_id"], c["email"]): c["hubspot_id"]
            for c in self.db.all("select * from hubspot_sync.hubspot_contact_credits")
        }
        for row in bookings:
            assert row["hubspot_id"] is not None, f"booking {row['id']} has no HubSpot id"
            assert row["hubspot_last_sync_at"] is not None
            # updated_at is the replaced system's naive timestamp, holding UTC.
            updated_at = row["updated_at"].replace(tzinfo=UTC)
            assert row["hubspot_last_sync_at"] >= updated_at, "a change not pushed"
            record = by_id[row["hubspot_id"]]
            expected = booking_properties({**row, "email": row["student_email"]})
            shown = {k: record["properties"].get(k, "") for k in expected}
            assert shown == expected, f"booking {row['booking_id']}"
            assert record["properties"]["booking_id"] == row["booking_id"]
            contact_hs = contact_ids[(row["student_id"], row["student_email"])]
            # Linked as the replaced system linked them: the portal's labelled types,
            # booking→contact 1289 and booking→mock exam 1291.
            linked_contacts = {
                (a.to_id, a.type_id)
                for a in self.standin.associations(BOOKINGS, CONTACTS, row["hubspot_id"])
            }
            linked_exams = {
                (a.to_id, a.type_id)
                for a in self.standin.associations(BOOKINGS, MOCK_EXAMS, row["hubspot_id"])
            }
            # (A booking the replaced system made may also keep its default association.)
            assert {to for to, _ in linked_contacts} == {contact_hs}, row["booking_id"]
            assert (contact_hs, 1289) in linked_contacts, f"booking {row['booking_id']} contact"
            assert {to for to, _ in linked_exams} == {row["associated_mock_exam"]}
            assert (row["associated_mock_exam"], 1291) in linked_exams, row["booking_id"]
        for contact in self.db.all("select * from hubspot_sync.hubspot_contact_credits"):
            assert contact["hubspot_id"] is not None, "a contact never reached HubSpot"
            mine = {kind: contact[kind] for kind in CREDIT_KINDS}
            assert mine == self.hubspot_credits(contact), f"credits of {contact['student_id']}"
            if str(contact["id"]) in self.initial:
                assert mine == self.expected_credits(contact), (
                    f"a credit change was lost or doubled for {contact['student_id']}"
                )
        pending = self.db.all(
            "select contact_id from hubspot_sync.sync_contact_credits"
            " where pending_push_id is not null"
        )
        assert pending == [], "a credit push left unsettled"
        for exam in self.db.all("select * from hubspot_sync.hubspot_mock_exams"):
            held = self.db.held_seats(exam)
            assert self.db.seats(exam) == held
            shown_total = self.hubspot(MOCK_EXAMS, exam["hubspot_id"])["properties"].get(
                "total_bookings"
            )
            assert shown_total == str(held), f"seats of exam {exam['hubspot_id']}"


def text_time(value: str) -> datetime:
    """A start/end time as the exams table holds it (text, the old app's ISO form)."""
    return datetime.fromisoformat(value)


def exam_properties(row: dict[str, Any]) -> dict[str, str]:
    """An exam row as HubSpot's mock exam holds it."""
    return {
        "mock_exam_name": row["mock_exam_name"],
        "mock_type": row["mock_type"],
        "mock_set": row.get("mock_set") or "",
        "exam_date": row["exam_date"].isoformat(),
        "start_time": str(epoch_ms(text_time(row["start_time"]))),
        "end_time": str(epoch_ms(text_time(row["end_time"]))),
        "location": row["location"],
        "capacity": str(row["capacity"]),
        "total_bookings": str(row["total_bookings"]),
        "is_active": row["is_active"],
    }
