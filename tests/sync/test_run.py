"""One run and the next: what reaches HubSpot, what comes back, what is left alone."""

from __future__ import annotations

import json
import time
from datetime import UTC
from typing import Any

from lib.hubspot.client import HubSpotClient
from lib.hubspot.sync_run import SyncOptions
from local.standins.hubspot import BOOKINGS, CONTACTS, MOCK_EXAMS
from tests.sync.conftest import World


def _phase(result: Any, name: str) -> tuple[int, int, int, int]:
    counts = result.phases[name]
    return counts.created, counts.updated, counts.unchanged, counts.failed


def test_new_bookings_reach_hubspot_once_with_both_associations(world: World) -> None:
    contacts = [world.contact(cs_credits=20, sj_credits=20) for _ in range(12)]
    exams = [world.exam(mock_type="Clinical Skills") for _ in range(2)] + [
        world.exam(mock_type="Situational Judgment")
    ]
    for contact in contacts:
        for exam in exams:
            world.book(contact, exam)
    total = len(contacts) * len(exams)  # 36 bookings in 4 create calls of 10

    result = world.sync(options=SyncOptions(batch_size=10, association_group=40))

    assert result.status == "succeeded", result
    assert _phase(result, "bookings") == (total, 0, 0, 0)
    world.assert_consistent()
    # 4 creates, each carrying its bookings' associations: no other call.
    assert result.phases["bookings"].calls == 4
    creates = [r for r in world.standin.requests() if r.path.endswith(f"{BOOKINGS}/batch/create")]
    assert [r.status for r in creates] == [201] * 4
    assert _phase(result, "seats") == (0, 3, 0, 0)
    assert _phase(result, "credits")[1] == len(contacts)  # every balance moved: pushed


def test_a_second_run_with_nothing_changed_writes_nothing(world: World) -> None:
    contact = world.contact()
    world.book(contact, world.exam())
    assert world.sync().status == "succeeded"
    before = time.time()

    again = world.sync()

    assert again.status == "succeeded"
    assert world.writes(since=before) == []
    assert all(counts.created == counts.updated == 0 for counts in again.phases.values())
    assert again.phases["bookings"].calls == 0


def test_a_booking_cancelled_before_its_first_sync_arrives_cancelled(world: World) -> None:
    contact = world.contact(cs_credits=1)
    booking = world.book(contact, world.exam())
    world.cancel(booking)

    assert world.sync().status == "succeeded"

    record = world.hubspot(
        BOOKINGS,
        world.db.one(
            "select hubspot_id from hubspot_sync.hubspot_bookings where id = %s", booking["id"]
        )["hubspot_id"],
    )
    assert record["properties"]["is_active"] == "Cancelled"
    assert record["properties"]["token_refunded"] == "true"
    world.assert_consistent()


def test_a_cancellation_after_the_first_sync_is_pushed(world: World) -> None:
    contact = world.contact(cs_credits=2)
    booking = world.book(contact, world.exam())
    world.sync()
    world.cancel(booking)

    result = world.sync()

    assert _phase(result, "bookings") == (0, 1, 0, 0)
    assert result.phases["bookings"].calls == 1  # an upsert; no association again
    world.assert_consistent()


def test_properties_follow_hubspot_conventions_and_skip_computed_ones(world: World) -> None:
    contact = world.contact(sj_credits=3)
    sj = world.exam(mock_type="Situational Judgment")
    cs = world.exam(mock_type="Clinical Skills")
    world.book(contact, sj, p_attending_location="richmond_hill")
    world.book(contact, cs, p_dominant_hand="left")
    booking = world.db.one(
        "select * from hubspot_sync.hubspot_bookings where associated_mock_exam = %s",
        cs["hubspot_id"],
    )
    world.cancel(booking)

    assert world.sync().status == "succeeded"

    shown = {
        r["properties"]["booking_id"]: r["properties"] for r in world.standin.objects(BOOKINGS)
    }
    rows = {r["booking_id"]: r for r in world.db.all("select * from hubspot_sync.hubspot_bookings")}
    for code, properties in shown.items():
        row = rows[code]
        assert properties["email"] == contact["email"]
        if row["mock_type"] == "Situational Judgment":
            assert properties["attending_location"] == "Richmond Hill"
        else:
            assert properties["dominant_hand"] == "false"
            refunded_at = row["token_refunded_at"]
            assert properties["token_refunded_at"] == str(int(refunded_at.timestamp() * 1000))
        # Computed from the associated exam by HubSpot (the stand-in shows them), never
        # written: the stand-in refuses them with READ_ONLY_VALUE.
        assert properties["mock_type"] == row["mock_type"]
    creates = [r for r in world.standin.requests() if r.path.endswith(f"{BOOKINGS}/batch/create")]
    assert creates and all(r.status == 201 for r in creates)


def test_contacts_only_in_postgres_are_created_and_their_bookings_linked(world: World) -> None:
    known = world.contact()
    new = world.contact(in_hubspot=False, cs_credits=2)
    exam = world.exam()
    world.book(new, exam)
    world.book(known, exam)

    result = world.sync()

    assert result.status == "succeeded", result.errors
    assert _phase(result, "contacts") == (1, 0, 0, 0)
    linked = world.fresh_contact(new)
    assert linked["hubspot_id"] is not None
    assert world.hubspot(CONTACTS, linked["hubspot_id"])["properties"]["email"] == new["email"]
    world.assert_consistent()
    assert world.sync().phases["contacts"].calls == 0  # nothing left to create


def test_a_contact_hubspot_already_had_is_linked_not_duplicated(world: World) -> None:
    existing = world.standin.put(CONTACTS, {"email": "twice@example.com", "cs_credits": 4})
    contact = world.contact(in_hubspot=False, email="twice@example.com", cs_credits=2)

    result = world.sync()

    assert _phase(result, "contacts") == (0, 1, 0, 0)
    assert world.fresh_contact(contact)["hubspot_id"] == existing
    assert len(world.standin.objects(CONTACTS)) == 1
    # First merge of this pair: PostgreSQL's balances stand, HubSpot's are reported.
    assert world.hubspot_credits(contact)["cs_credits"] == 2
    warnings = world.db.all(
        "select category from hubspot_sync.sync_run_errors where severity = 'warning'"
    )
    assert [w["category"] for w in warnings] == ["FIRST_SYNC_DIFFERENCE"]


def test_exams_created_or_edited_in_hubspot_are_pulled_but_seats_stay_ours(world: World) -> None:
    contact = world.contact()
    exam = world.exam(capacity=10)
    world.book(contact, exam)
    world.sync()
    world.standin.put(
        MOCK_EXAMS,
        {"capacity": "12", "location": "Calgary", "total_bookings": "9"},
        id=exam["hubspot_id"],
    )
    new_id = world.standin.put(
        MOCK_EXAMS,
        {
            "mock_exam_name": "Fresh",
            "mock_type": "Mini-mock",
            "exam_date": "2031-05-04",
            "start_time": "1935838800000",
            "capacity": "20",
            "is_active": "true",
        },
    )

    result = world.sync()

    assert _phase(result, "exams")[:2] == (1, 1)
    edited = world.db.one("select * from hubspot_sync.hubspot_mock_exams where id = %s", exam["id"])
    assert (edited["capacity"], edited["location"]) == (12, "Calgary")
    assert world.db.seats(edited) == 1  # ours, not HubSpot's 9 ...
    assert world.hubspot(MOCK_EXAMS, exam["hubspot_id"])["properties"]["total_bookings"] == "1"
    fresh = world.db.one(
        "select * from hubspot_sync.hubspot_mock_exams where hubspot_id = %s", new_id
    )
    assert (fresh["mock_type"], str(fresh["exam_date"]), world.db.seats(fresh)) == (
        "Mini-mock",
        "2031-05-04",
        0,
    )
    # ... and HubSpot was told ours once; then nothing is due.
    before = time.time()
    assert world.sync().status == "succeeded"
    assert world.writes(since=before) == []


def test_an_exam_hubspot_holds_wrongly_is_reported_and_the_rest_pulled(world: World) -> None:
    world.standin.put(MOCK_EXAMS, {"mock_exam_name": "Bad", "mock_set": "Z", "capacity": "5"})
    good = world.standin.put(MOCK_EXAMS, {"mock_exam_name": "Good", "capacity": "5"})

    result = world.sync()

    assert result.status == "partial"
    assert _phase(result, "exams") == (1, 0, 0, 1)
    assert (
        world.db.one(
            "select count(*) as n from hubspot_sync.hubspot_mock_exams where hubspot_id = %s", good
        )["n"]
        == 1
    )
    assert "mock_set" in result.errors[0].message
    # Not past the bad one: the next run reads it again (and says so again) until an
    # admin fixes it in HubSpot.
    again = world.sync(options=SyncOptions(search_margin_ms=0))
    assert _phase(again, "exams")[3] == 1


def test_a_change_made_while_its_push_is_in_flight_stays_due(world: World) -> None:
    contact = world.contact(cs_credits=2)
    booking = world.book(contact, world.exam())

    class CancelDuringCreate(HubSpotClient):
        def batch_create(self, object_type: str, inputs: Any) -> Any:
            result = super().batch_create(object_type, inputs)
            if object_type == BOOKINGS:
                world.cancel(booking)  # the student cancels while the answer is on its way
            return result

    client = world.client()
    client.__class__ = CancelDuringCreate
    world.sync(client=client)

    row = world.db.one("select * from hubspot_sync.hubspot_bookings where id = %s", booking["id"])
    assert row["is_active"] == "Cancelled"
    assert row["updated_at"].replace(tzinfo=UTC) > row["hubspot_last_sync_at"]  # still due
    assert world.hubspot(BOOKINGS, row["hubspot_id"])["properties"]["is_active"] == "Active"
    world.sync()
    world.assert_consistent()


def test_legacy_bookings_are_updated_by_hubspot_id(world: World) -> None:
    contact = world.contact()
    exam = world.exam()
    code = f"Clinical Skills-{contact['student_id']}-March 1, 2026"
    rows = []
    for _ in range(2):  # legacy codes repeat: the same code twice
        legacy = world.db.booking(contact, exam, booking_id=code, is_active="Cancelled")
        world.standin.put(
            BOOKINGS, {"booking_id": code, "is_active": "Cancelled"}, id=legacy["hubspot_id"]
        )
        world.standin.associate(BOOKINGS, legacy["hubspot_id"], CONTACTS, contact["hubspot_id"])
        world.standin.associate(BOOKINGS, legacy["hubspot_id"], MOCK_EXAMS, exam["hubspot_id"])
        rows.append(legacy)
    world.db.conn.execute(
        "update hubspot_sync.hubspot_bookings set attendance = 'No' where id = %s", (rows[0]["id"],)
    )

    result = world.sync()

    assert _phase(result, "bookings") == (0, 2, 0, 0)  # never synced: pushed and associated
    assert world.hubspot(BOOKINGS, rows[0]["hubspot_id"])["properties"]["attendance"] == "No"
    world.assert_consistent()


def test_a_booking_hubspot_refuses_is_recorded_and_does_not_block_the_rest(world: World) -> None:
    contact = world.contact(cs_credits=10, sj_credits=10)
    exams = [world.exam() for _ in range(4)]
    bookings = [world.book(contact, e) for e in exams[:3]]
    bad = bookings[1]["booking_id"]
    world.standin.set_faults(conflict_ids=[bad])  # HubSpot fails any batch naming it: 409

    result = world.sync()

    assert result.status == "partial"
    assert _phase(result, "bookings") == (2, 0, 0, 1)
    [error] = world.db.all("select * from hubspot_sync.sync_run_errors")
    assert (error["phase"], error["category"], error["record_id"]) == (
        "bookings",
        "CONFLICT",
        str(bookings[1]["id"]),
    )
    assert error["correlation_id"]
    run = world.db.one("select * from hubspot_sync.sync_runs where id = %s", result.run_id)
    assert run["status"] == "partial" and run["error_count"] == 1
    assert json.loads(json.dumps(run["phases"]))["bookings"]["failed"] == 1
    world.standin.set_faults()
    assert world.sync().status == "succeeded"  # the next run takes it again
    world.assert_consistent()


def test_a_full_pass_resends_everything_and_mends_hubspot(world: World) -> None:
    contact = world.contact()
    exam = world.exam()
    booking = world.book(contact, exam)
    world.sync()
    hubspot_id = world.db.one(
        "select hubspot_id from hubspot_sync.hubspot_bookings where id = %s", booking["id"]
    )["hubspot_id"]
    # Someone edits what PostgreSQL owns, in HubSpot: a delta run cannot know.
    world.standin.put(BOOKINGS, {"is_active": "Cancelled"}, id=hubspot_id)
    world.standin.put(MOCK_EXAMS, {"total_bookings": "7"}, id=exam["hubspot_id"])
    world.sync()
    assert world.hubspot(BOOKINGS, hubspot_id)["properties"]["is_active"] == "Cancelled"

    result = world.sync("full")

    assert result.mode == "full" and result.status == "succeeded"
    assert _phase(result, "bookings") == (0, 1, 0, 0)
    assert _phase(result, "credits")[2] == 1  # read back, in step
    world.assert_consistent()
    assert (
        world.db.one("select count(*) as n from hubspot_sync.sync_state where key = 'full_pass'")[
            "n"
        ]
        == 0
    )


def _sj_bookings(world: World, count: int) -> list[dict[str, Any]]:
    contact = world.contact(sj_credits=count)
    return [
        world.book(
            contact, world.exam(mock_type="Situational Judgment"), p_attending_location="calgary"
        )
        for _ in range(count)
    ]


def _lab_d(world: World, booking: dict[str, Any]) -> None:
    """A location the replaced system wrote that is not one of the portal's options."""
    world.db.conn.execute(
        "update hubspot_sync.hubspot_bookings set attending_location = 'Mississauga - Lab D'"
        " where id = %s",
        (booking["id"],),
    )


def test_a_location_outside_the_portals_options_is_recorded_and_never_sent(
    world: World,
) -> None:
    bookings = _sj_bookings(world, 3)
    _lab_d(world, bookings[1])

    result = world.sync()

    assert result.status == "partial"
    [error] = world.db.all("select * from hubspot_sync.sync_run_errors")
    assert (error["category"], error["record_id"]) == ("INVALID_OPTION", str(bookings[1]["id"]))
    shown = [r["properties"] for r in world.standin.objects(BOOKINGS)]
    assert len(shown) == 2
    assert {p["attending_location"] for p in shown} == {"Calgary"}
    # Never sent: HubSpot refused nothing (no batch answered 400).
    assert not [r for r in world.standin.requests() if r.status == 400]


def test_one_refused_value_in_a_batch_of_100_lets_the_other_99_land_in_the_same_run(
    world: World,
) -> None:
    """The sync is told of a location the portal does not have (a stale
    HUBSPOT_ATTENDING_LOCATIONS). A create answers per record (207): 99 are created,
    the one error recorded with HubSpot's correlation id. An update with that value is
    refused whole (400): the batch is split until it stands alone, and the other 98
    are updated in the same run."""
    bookings = _sj_bookings(world, 100)
    _lab_d(world, bookings[37])
    stale = SyncOptions(
        attending_locations=SyncOptions().attending_locations | {"Mississauga - Lab D"}
    )

    result = world.sync(options=stale)

    assert result.status == "partial"
    assert len(world.standin.objects(BOOKINGS)) == 99
    [error] = world.db.all("select * from hubspot_sync.sync_run_errors")
    assert error["record_id"] == str(bookings[37]["id"])
    assert error["category"] == "INVALID_OPTION" and error["correlation_id"]  # HubSpot's code
    assert "Mississauga - Lab D" in error["message"]
    synced = world.db.one(
        "select count(*) as n from hubspot_sync.hubspot_bookings where hubspot_id is not null"
    )
    assert synced == {"n": 99}

    # Now an update: the 99 change (attendance taken), one of them to the bad location.
    world.db.conn.execute(
        "update hubspot_sync.hubspot_bookings set attendance = 'Yes' where hubspot_id is not null"
    )
    _lab_d(world, bookings[64])
    before = time.time()

    second = world.sync(options=stale)

    refused = [r for r in world.standin.requests() if r.at >= before and r.status == 400]
    assert 1 <= len(refused) <= 8  # log2(100) halvings down to the one record
    errors = world.db.all(
        "select * from hubspot_sync.sync_run_errors where run_id = %s", second.run_id
    )
    assert {e["record_id"] for e in errors} == {str(bookings[37]["id"]), str(bookings[64]["id"])}
    attended = [
        r for r in world.standin.objects(BOOKINGS) if r["properties"].get("attendance") == "Yes"
    ]
    assert len(attended) == 98
