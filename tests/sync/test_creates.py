"""New bookings reach the school's portal by batch create (its booking_id repeats, so
it is no upsert key), and a create whose outcome is unknown is found again by the
booking's idempotency_key before anything is created twice."""

from __future__ import annotations

from lib.hubspot.sync_run import SyncOptions
from local.standins.hubspot import BOOKINGS
from tests.sync.conftest import World

CREATES = rf"/crm/v3/objects/{BOOKINGS}/batch/create"


def _new_bookings(world: World, count: int) -> list[dict[str, object]]:
    contact = world.contact(cs_credits=count)
    return [world.book(contact, world.exam()) for _ in range(count)]


def _codes_in_hubspot(world: World) -> list[str]:
    return sorted(r["properties"]["booking_id"] for r in world.standin.objects(BOOKINGS))


def test_an_upsert_by_booking_id_is_refused_by_the_portal(world: World) -> None:
    """What the school's portal answers (and why the sync creates): booking_id has no
    unique values, so it cannot be an idProperty."""
    from lib.hubspot.client import HubSpotError

    client = world.client()
    try:
        client.batch_upsert(BOOKINGS, [{"id": "BK-1", "properties": {"name": "x"}}], "booking_id")
    except HubSpotError as exc:
        assert exc.status == 400 and "non-unique" in exc.message
    else:
        raise AssertionError("the portal took an upsert by booking_id")


def test_a_create_whose_answer_was_lost_is_found_again_not_duplicated(world: World) -> None:
    bookings = _new_bookings(world, 3)
    world.standin.set_faults(lost_next=1, paths=CREATES)  # applied, then the answer lost

    first = world.sync()

    assert first.status == "partial"
    assert len(world.standin.objects(BOOKINGS)) == 3  # HubSpot has them
    lost = world.db.all("select category from hubspot_sync.sync_run_errors")
    assert [e["category"] for e in lost] == ["ANSWER_LOST"] * 3
    world.standin.set_faults()

    second = world.sync()  # finds them by idempotency_key: no second create

    assert second.status == "succeeded"
    assert _codes_in_hubspot(world) == sorted(str(b["booking_id"]) for b in bookings)
    creates = [r for r in world.standin.requests() if r.path.endswith("/batch/create")]
    assert len(creates) == 1
    searches = [r for r in world.standin.requests() if r.path.endswith(f"{BOOKINGS}/search")]
    assert len(searches) == 1  # one IN search of up to 100 keys
    world.assert_consistent()


def test_a_create_that_never_arrived_is_made_once_its_recovery_time_has_passed(
    world: World,
) -> None:
    """A 503 before HubSpot wrote anything: the booking is recorded as sent, so the
    next run looks first; finding nothing it waits (search lags creates) until the
    send is create_recovery_after_s old, then creates it, once."""
    bookings = _new_bookings(world, 2)
    world.standin.set_faults(error_next=50, error_statuses=(503,), paths=CREATES)
    assert world.sync().status != "succeeded"
    assert world.standin.objects(BOOKINGS) == []
    world.standin.set_faults()

    waiting = world.sync()  # sent moments ago, not found: not created yet
    assert world.standin.objects(BOOKINGS) == []
    assert waiting.phases["bookings"].created == 0

    done = world.sync(options=SyncOptions(create_recovery_after_s=0))

    assert done.status == "succeeded" and done.phases["bookings"].created == 2
    assert _codes_in_hubspot(world) == sorted(str(b["booking_id"]) for b in bookings)
    world.assert_consistent()
