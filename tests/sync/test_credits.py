"""The credit merge: changes from both sides survive, none is applied twice, whatever
happens to a push on its way (lost answer, refusal, a kill between the database
commit and HubSpot)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from lib.hubspot.client import HubSpotClient
from lib.hubspot.sync import run_once
from lib.hubspot.sync_run import SyncOptions
from local.standins.hubspot import CONTACTS, STANDIN_APP_ID
from tests.sync.conftest import World

OUR_APP = ("INTEGRATION", STANDIN_APP_ID)

UPDATE_CONTACTS = rf"/crm/v3/objects/{CONTACTS}/batch/update$"


class Killed(BaseException):
    """The process dies here (BaseException: nothing in the sync catches it)."""


def _pending(world: World) -> list[dict[str, Any]]:
    return world.db.all(
        "select * from hubspot_sync.sync_contact_credits where pending_push_id is not null"
    )


def _expire_lease(world: World) -> None:
    world.db.conn.execute("update hubspot_sync.sync_lease set expires_at = now()")


def test_a_purchase_in_hubspot_and_a_booking_here_are_both_kept(world: World) -> None:
    contact = world.contact(cs_credits=2, shared_mock_credits=0)
    exam = world.exam(mock_type="Clinical Skills")
    world.sync()
    world.purchase(contact, "cs_credits", 3)  # HubSpot: 2 -> 5
    world.book(contact, exam)  # PostgreSQL: 2 -> 1

    result = world.sync()

    assert result.status == "succeeded"
    assert world.db.credits(contact)["cs_credits"] == 4
    assert world.hubspot_credits(contact)["cs_credits"] == 4
    world.assert_consistent()


def test_changes_on_both_sides_of_several_kinds_and_contacts(world: World) -> None:
    contacts = [world.contact(sj_credits=4, cs_credits=4, shared_mock_credits=2) for _ in range(6)]
    exams = [world.exam(mock_type=t) for t in ("Situational Judgment", "Clinical Skills")]
    world.sync()
    for n, contact in enumerate(contacts):
        world.purchase(contact, "shared_mock_credits", n)
        if n % 2:
            world.purchase(contact, "sj_credits", -1)  # an admin takes one back
        for exam in exams[: n % 3]:
            world.book(contact, exam)

    assert world.sync().status == "succeeded"

    world.assert_consistent()


def test_hubspot_lowering_below_what_is_left_stops_at_zero_and_warns(world: World) -> None:
    contact = world.contact(cs_credits=3, shared_mock_credits=0)
    exam = world.exam(mock_type="Clinical Skills")
    world.sync()
    world.book(contact, exam)  # 3 -> 2 here
    world.purchase(contact, "cs_credits", -3)  # an admin sets HubSpot's 3 to 0

    result = world.sync()

    assert result.status == "succeeded"  # a warning, not a failure
    assert world.db.credits(contact)["cs_credits"] == 0
    assert world.hubspot_credits(contact)["cs_credits"] == 0
    [warning] = result.errors
    assert (warning.category, warning.severity) == ("CREDIT_SHORTFALL", "warning")
    assert "cs_credits" in warning.message and "(1 not taken)" in warning.message


def test_a_lost_answer_to_a_push_is_neither_lost_nor_applied_twice(world: World) -> None:
    contact = world.contact(cs_credits=5)
    exam = world.exam(mock_type="Clinical Skills")
    world.sync()
    world.book(contact, exam)  # 5 -> 4: to push
    world.standin.set_faults(lost_next=1, paths=UPDATE_CONTACTS)
    # No retries: the push is applied in HubSpot but the run never hears of it.
    result = world.sync(client=world.client(max_attempts=1))
    assert result.status == "failed"
    assert len(_pending(world)) == 1
    assert world.hubspot_credits(contact)["cs_credits"] == 4  # it landed
    world.purchase(contact, "cs_credits", 10)  # and then an admin added 10 in HubSpot
    world.standin.set_faults()
    _expire_lease(world)  # the failed run let it go already; harmless

    assert world.sync().status == "succeeded"

    assert world.db.credits(contact)["cs_credits"] == 14
    world.assert_consistent()


def test_a_push_that_never_arrived_is_sent_again(world: World) -> None:
    contact = world.contact(cs_credits=5)
    exam = world.exam(mock_type="Clinical Skills")
    world.sync()
    world.book(contact, exam)
    world.standin.set_faults(error_next=1, paths=UPDATE_CONTACTS)  # 503 before any write
    assert world.sync(client=world.client(max_attempts=1)).status == "failed"
    assert world.hubspot_credits(contact)["cs_credits"] == 5  # not applied
    world.purchase(contact, "cs_credits", 1)
    world.standin.set_faults()

    assert world.sync().status == "succeeded"

    assert world.db.credits(contact)["cs_credits"] == 5  # 5 - 1 + 1
    world.assert_consistent()


@pytest.mark.parametrize("dies", ["before the push is sent", "after the push landed"])
def test_a_kill_between_the_database_and_hubspot(world: World, dies: str) -> None:
    contact = world.contact(cs_credits=5, sj_credits=1)
    world.sync()
    world.book(contact, world.exam(mock_type="Clinical Skills"))
    world.purchase(contact, "sj_credits", 2)

    class DiesAroundPush(HubSpotClient):
        def batch_update(
            self, object_type: str, inputs: Any, id_property: str | None = None
        ) -> Any:
            if object_type == CONTACTS and dies.startswith("before"):
                raise Killed
            result = super().batch_update(object_type, inputs, id_property)
            if object_type == CONTACTS:
                raise Killed
            return result

    client = world.client()
    client.__class__ = DiesAroundPush
    with pytest.raises(Killed):
        world.sync(client=client)
    # The merge committed (HubSpot's +2 is in PostgreSQL), the push is recorded pending.
    assert world.db.credits(contact)["sj_credits"] == 3
    assert len(_pending(world)) == 1
    _expire_lease(world)  # as a killed run's lease does, after its ttl
    world.purchase(contact, "sj_credits", 1)  # another change in HubSpot meanwhile

    assert world.sync().status == "succeeded"

    assert world.db.credits(contact) == world.hubspot_credits(contact)
    assert world.db.credits(contact)["sj_credits"] == 4
    assert world.db.credits(contact)["cs_credits"] == 4
    world.assert_consistent()
    runs = world.db.all("select status from hubspot_sync.sync_runs order by started_at")
    assert [r["status"] for r in runs] == ["succeeded", "abandoned", "succeeded"]


def test_a_push_hubspot_refuses_is_recorded_and_tried_again(world: World) -> None:
    contact = world.contact(cs_credits=5)
    world.sync()
    world.book(contact, world.exam(mock_type="Clinical Skills"))
    world.standin.set_faults(conflict_ids=[str(contact["hubspot_id"])], paths=UPDATE_CONTACTS)

    result = world.sync()

    assert result.status == "partial"
    assert result.errors[0].category == "CONFLICT"
    assert _pending(world) == []  # refused outright: nothing to settle
    world.standin.set_faults()
    assert world.sync().status == "succeeded"
    world.assert_consistent()


def test_a_first_login_contact_merges_a_purchase_made_before_its_first_sync(
    world: World,
) -> None:
    hubspot_id = world.standin.put(
        CONTACTS, {"email": "late@example.com", "student_id": "LATE1", "cs_credits": 2}
    )
    stored = world.db.call(
        "store_hubspot_contact",
        p_hubspot_id=hubspot_id,
        p_student_id="LATE1",
        p_email="late@example.com",
        p_cs_credits=2,
    )
    assert stored["ok"]
    contact = world.fresh_contact(stored["contact"])
    world.standin.put(CONTACTS, {"cs_credits": 5}, id=hubspot_id)  # bought 3 more

    assert world.sync().status == "succeeded"

    assert world.db.credits(contact)["cs_credits"] == 5
    assert world.hubspot_credits(contact)["cs_credits"] == 5


def test_a_late_push_of_a_run_presumed_dead_is_not_taken_for_a_purchase(world: World) -> None:
    contact = world.contact(cs_credits=5)
    world.sync()
    world.book(contact, world.exam(mock_type="Clinical Skills"))
    assert world.sync().status == "succeeded"  # HubSpot: 5 -> 4
    # A run presumed dead, which had read the balance before the booking, lands its
    # push late: HubSpot's history shows this sync's app setting 5 again.
    world.standin.put(CONTACTS, {"cs_credits": 5}, id=str(contact["hubspot_id"]), source=OUR_APP)

    result = world.sync()

    assert result.status == "succeeded", result.errors
    assert world.db.credits(contact)["cs_credits"] == 4  # not +1
    assert world.hubspot_credits(contact)["cs_credits"] == 4


def test_another_integration_setting_a_balance_is_a_change_like_an_admin_edit(
    world: World,
) -> None:
    # The school's payment integration (another private app) adds bought credits.
    contact = world.contact(cs_credits=5)
    world.sync()
    world.standin.put(
        CONTACTS, {"cs_credits": 8}, id=str(contact["hubspot_id"]), source=("INTEGRATION", "77")
    )

    assert world.sync().status == "succeeded"

    assert world.db.credits(contact)["cs_credits"] == 8


def test_an_admin_edit_overwritten_by_a_push_is_still_taken_in(world: World) -> None:
    # HubSpot has no conditional write: an edit landing between the run's read and its
    # push is overwritten there. It stays in the history, after the base.
    contact = world.contact(cs_credits=5)
    exam = world.exam(mock_type="Clinical Skills")
    world.sync()
    world.book(contact, exam)  # 5 -> 4 here

    class EditsBeforePush(HubSpotClient):
        def batch_update(
            self, object_type: str, inputs: Any, id_property: str | None = None
        ) -> Any:
            if object_type == CONTACTS:
                world.purchase(contact, "cs_credits", 2)  # HubSpot 5 -> 7, then overwritten
            return super().batch_update(object_type, inputs, id_property)

    client = world.client()
    client.__class__ = EditsBeforePush
    assert world.sync(client=client).status == "succeeded"
    assert world.hubspot_credits(contact)["cs_credits"] == 4  # the edit was overwritten

    assert world.sync().status == "succeeded"

    assert world.db.credits(contact)["cs_credits"] == 6  # 5 - 1 + 2
    assert world.hubspot_credits(contact)["cs_credits"] == 6


def test_without_the_app_id_credits_are_left_alone_and_the_run_says_why(world: World) -> None:
    contact = world.contact(cs_credits=5)
    world.purchase(contact, "cs_credits", 1)
    result = run_once(
        "delta",
        time.monotonic() + 60,
        trigger="test",
        client=world.client(),
        options=SyncOptions(),
    )

    assert result.status == "partial"
    assert [e.category for e in result.errors] == ["CONFIGURATION"]
    assert "HUBSPOT_APP_ID" in (result.errors[0].message or "")
    assert world.db.credits(contact)["cs_credits"] == 5


def test_merge_is_idempotent_when_the_same_call_is_repeated(world: World) -> None:
    # lib/db.py retries a call whose connection dropped, possibly after it committed.
    contact = world.contact(cs_credits=5)
    world.sync()
    world.book(contact, world.exam(mock_type="Clinical Skills"))  # here: 5 -> 4
    run_id = "00000000-0000-4000-8000-00000000000a"
    world.db.call("sync_begin", p_run_id=run_id, p_mode="delta", p_trigger="test", p_lease_ttl_s=60)
    # HubSpot: an admin added 2 (5 -> 7), as its history showed the caller.
    [state] = world.db.all(
        "select (extract(epoch from base_at) * 1000)::bigint as ms"
        " from hubspot_sync.sync_contact_credits where contact_id = %s",
        contact["id"],
    )
    items = json.dumps(
        [
            {
                "contact_id": str(contact["id"]),
                "hubspot_id": contact["hubspot_id"],
                "values": [5, 7, 5, 5, 5],
                "seen_at": "2030-01-01T00:00:00.000Z",
                "base_at_ms": state["ms"],
                "changes": [0, 2, 0, 0, 0],
            }
        ]
    )

    first = world.db.call("sync_merge_credits", p_run_id=run_id, p_push_id="p1", p_items=items)
    again = world.db.call("sync_merge_credits", p_run_id=run_id, p_push_id="p1", p_items=items)

    assert first["pushes"] == again["pushes"]
    assert first["pushes"][0]["values"] == [5, 6, 5, 5, 5]
    assert world.db.credits(contact)["cs_credits"] == 6  # +2 once
    other = world.db.call(
        "sync_merge_credits",
        p_run_id="00000000-0000-4000-8000-00000000000b",
        p_push_id="p2",
        p_items=items,
    )
    assert other["code"] == "SYNC_LEASE_LOST"  # fenced: not the lease holder


def test_a_hubspot_change_whose_merge_failed_is_found_again(world: World) -> None:
    # No search margin: only the watermark's holding back can find it again.
    options = SyncOptions(search_margin_ms=0)
    contact = world.contact(cs_credits=2)
    world.sync(options=options)
    world.purchase(contact, "cs_credits", 3)
    reads = rf"/crm/v3/objects/{CONTACTS}/batch/read$"
    world.standin.set_faults(conflict_ids=[str(contact["hubspot_id"])], paths=reads)

    failed = world.sync(options=options)

    assert failed.status == "partial" and world.db.credits(contact)["cs_credits"] == 2
    world.standin.set_faults()
    assert world.sync(options=options).status == "succeeded"
    assert world.db.credits(contact)["cs_credits"] == 5
    world.assert_consistent()
