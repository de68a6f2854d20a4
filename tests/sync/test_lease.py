"""Runs never overlap, a crashed run blocks the next only until its lease expires,
and a run that reaches its time budget stops cleanly for the next one to continue."""

from __future__ import annotations

import time
import uuid
from typing import Any

from lib.hubspot.client import HubSpotClient
from lib.hubspot.sync_run import SyncOptions
from local.standins.hubspot import BOOKINGS
from tests.sync.conftest import Clock, World


def _begin(world: World, ttl_s: int = 60) -> str:
    """Another run takes the lease (and, for the test, never finishes)."""
    run_id = str(uuid.uuid4())
    answer = world.db.call(
        "sync_begin", p_run_id=run_id, p_mode="delta", p_trigger="test", p_lease_ttl_s=ttl_s
    )
    assert answer["acquired"], answer
    return run_id


def _statuses(world: World) -> list[str]:
    rows = world.db.all("select status from hubspot_sync.sync_runs order by started_at, id")
    return [r["status"] for r in rows]


def test_a_second_run_is_refused_while_one_holds_the_lease(world: World) -> None:
    world.book(world.contact(), world.exam())
    holder = _begin(world)

    result = world.sync()

    assert result.status == "refused"
    assert holder in (result.message or "")
    assert world.standin.requests() == []  # it did nothing at all
    assert sorted(_statuses(world)) == ["refused", "running"]


def test_a_crashed_run_blocks_the_next_for_at_most_its_lease(world: World) -> None:
    world.book(world.contact(), world.exam())
    crashed = _begin(world, ttl_s=1)  # never renews, never finishes: killed
    assert world.sync().status == "refused"
    time.sleep(1.1)

    result = world.sync()

    assert result.status == "succeeded"
    crashed_row = world.db.one("select * from hubspot_sync.sync_runs where id = %s", crashed)
    assert crashed_row["status"] == "abandoned" and crashed_row["finished_at"] is not None
    world.assert_consistent()


def test_the_lease_is_renewed_with_every_batch(world: World) -> None:
    contact = world.contact(cs_credits=30)
    for _ in range(6):
        world.book(contact, world.exam())
    renewals: list[Any] = []

    class Watching(HubSpotClient):
        def batch_create(self, object_type: str, inputs: Any) -> Any:
            renewals.append(
                world.db.one("select expires_at from hubspot_sync.sync_lease")["expires_at"]
            )
            return super().batch_create(object_type, inputs)

    client = world.client()
    client.__class__ = Watching
    world.sync(client=client, options=SyncOptions(batch_size=1, association_group=10))

    assert len(renewals) == 6 and renewals == sorted(renewals) and len(set(renewals)) == 6


def test_a_run_whose_lease_was_taken_stops_writing(world: World) -> None:
    contact = world.contact(cs_credits=30)
    for _ in range(4):
        world.book(contact, world.exam())

    class Overtaken(HubSpotClient):
        def batch_create(self, object_type: str, inputs: Any) -> Any:
            result = super().batch_create(object_type, inputs)
            # Presumed dead (lease expired), another run takes over meanwhile.
            world.db.conn.execute("update hubspot_sync.sync_lease set expires_at = now()")
            _begin(world)
            return result

    client = world.client()
    client.__class__ = Overtaken
    result = world.sync(client=client, options=SyncOptions(batch_size=1, association_group=10))

    assert result.status == "lease_lost"
    # Its first batch upserted, then every write of it was refused: no id written back.
    assert len(world.standin.objects(BOOKINGS)) == 1
    assert (
        world.db.one(
            "select count(*) as n from hubspot_sync.hubspot_bookings where hubspot_id is not null"
        )["n"]
        == 0
    )
    world.db.conn.execute("delete from hubspot_sync.sync_lease")
    assert world.sync().status == "succeeded"  # the upserted one is found again, not doubled
    world.assert_consistent()


class StopsAfter(HubSpotClient):
    """Moves the run's clock past its deadline once `limit` booking writes (creates or
    updates) have been sent."""

    clock: Clock
    limit: int
    upserts = 0

    def batch_create(self, object_type: str, inputs: Any) -> Any:
        return self._written(object_type, super().batch_create(object_type, inputs))

    def batch_update(self, object_type: str, inputs: Any, id_property: str | None = None) -> Any:
        return self._written(object_type, super().batch_update(object_type, inputs, id_property))

    def _written(self, object_type: str, result: Any) -> Any:
        if object_type == BOOKINGS:
            self.upserts += 1
            if self.upserts == self.limit:
                self.clock.now = 11.0
        return result


def _stopping(world: World, clock: Clock, limit: int) -> HubSpotClient:
    client = world.client()
    client.__class__ = StopsAfter
    assert isinstance(client, StopsAfter)
    client.clock, client.limit = clock, limit
    return client


def _synced(world: World) -> int:
    return int(
        world.db.one(
            "select count(*) as n from hubspot_sync.hubspot_bookings"
            " where hubspot_last_sync_at is not null"
        )["n"]
    )


def test_a_run_past_its_deadline_stops_and_the_next_continues(world: World) -> None:
    contact = world.contact(cs_credits=30)
    for _ in range(12):
        world.book(contact, world.exam())
    options = SyncOptions(batch_size=2, association_group=4)
    clock = Clock()

    first = world.sync(options=options, clock=clock, client=_stopping(world, clock, limit=3))

    # The deadline passed during the second group (4 bookings a group, 2 per upsert):
    # it finished the associations of what that group had written, then stopped.
    assert first.status == "deadline"
    assert first.phases["bookings"].created == 6
    assert _synced(world) == 6
    run = world.db.one("select * from hubspot_sync.sync_runs where id = %s", first.run_id)
    assert run["status"] == "deadline" and run["phases"]["bookings"]["created"] == 6
    assert world.db.one("select count(*) as n from hubspot_sync.sync_lease")["n"] == 0

    second = world.sync(options=options)

    assert second.status == "succeeded"
    assert second.phases["bookings"].created == 6
    world.assert_consistent()


def test_a_full_pass_cut_short_is_continued_by_the_next_run_whatever_it_asks(
    world: World,
) -> None:
    contact = world.contact(cs_credits=30)
    for _ in range(10):
        world.book(contact, world.exam())
    world.sync()  # everything in HubSpot; a full pass now re-sends it all
    options = SyncOptions(batch_size=2, association_group=2)
    clock = Clock()

    first = world.sync("full", options=options, clock=clock, client=_stopping(world, clock, 2))

    assert (first.mode, first.status, first.phases["bookings"].updated) == ("full", "deadline", 4)
    position = world.db.one("select value from hubspot_sync.sync_state where key = 'full_pass'")
    assert position["value"]["phase"] == "bookings"

    second = world.sync("delta", options=options)

    # It went on from where the first stopped, as a full pass: every booking once.
    assert (second.mode, second.status, second.resumed) == ("full", "succeeded", True)
    assert second.phases["bookings"].updated == 6
    assert "exams" not in second.phases  # done by the first
    assert (
        world.db.one("select count(*) as n from hubspot_sync.sync_state where key = 'full_pass'")[
            "n"
        ]
        == 0
    )
    assert world.sync().mode == "delta"
    world.assert_consistent()
