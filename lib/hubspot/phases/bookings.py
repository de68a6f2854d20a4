"""Bookings, PostgreSQL → HubSpot: PostgreSQL owns bookings and their status.

Due: no HubSpot id, never fully synced, or changed since hubspot_last_sync_at
(cancellations included; a booking cancelled before its first sync simply arrives as
Cancelled). A full pass takes every booking.

Per group of up to 2,000 bookings (HubSpot's association batch size):
  * bookings without a HubSpot id are CREATED, 100 per call, each with its two
    associations inline (the portal's labelled types: booking→contact, booking→mock
    exam). HubSpot's booking_id is a display label that repeats, so it cannot be an
    upsert key, and a create is not repeat-safe: each is recorded as sent first
    (sync_booking_creates). A booking recorded as sent whose id never came back (a lost
    answer, a kill) is looked for by its idempotency_key, a property the portal has
    and that holds our own value (search, IN of up to 100 keys): found, its id is
    taken; not found, it is created again once it was sent `create_recovery_after_s`
    ago (search lags creates by seconds). Never a duplicate, never a lost booking;
  * bookings with a HubSpot id are UPDATED by it;
  * after each call of 100, the HubSpot ids are written back at once (a checkpoint);
  * bookings that have an id but were never fully synced (the replaced system's) get
    their associations: one call of up to 2,000 pairs per target type (creating an
    existing association is harmless, so a redo is too);
  * only then are they marked synced, with the updated_at of the version pushed.
A booking's failure (HubSpot refused it, its contact has no HubSpot id yet, an
association failed) is recorded and leaves it due for the next run; the rest go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.hubspot.client import CONTACTS, BatchResult, HubSpotError, HubSpotUnavailable
from lib.hubspot.mapping import booking_properties
from lib.hubspot.phases import batch_refused, chunks, take
from lib.hubspot.sync_run import DeadlineReached, PhaseCounts, Run

# HubSpot's search filter IN takes at most 100 values.
SEARCH_IN_LIMIT = 100


def run(run: Run) -> None:
    with run.phase("bookings") as counts:
        after = run.resume_after("bookings")
        limit = run.options.association_group
        while True:
            run.check_deadline()
            page = run.rpc("sync_bookings_pending", after=after, limit=limit, full=run.full)
            rows: list[dict[str, Any]] = page["bookings"]
            if not rows:
                break
            _push_group(run, rows, counts)
            after = rows[-1]["id"]
            run.full_position("bookings", after)
            if len(rows) < limit:
                break


def _push_group(run: Run, rows: list[dict[str, Any]], counts: PhaseCounts) -> None:
    ready: list[dict[str, Any]] = []
    for row in rows:
        if not row["contact_hubspot_id"]:
            run.fail(
                row["id"],
                "CONTACT_NOT_IN_HUBSPOT",
                "the student has no HubSpot contact yet (see the contacts phase)",
            )
        elif not row["exam_hubspot_id"]:
            run.fail(row["id"], "NO_EXAM", "the booking names no mock exam")
        elif not _location_allowed(run, row):
            run.fail(
                row["id"],
                "INVALID_OPTION",
                f"attending location {booking_properties(row)['attending_location']!r} is not"
                " one of the portal's options (HUBSPOT_ATTENDING_LOCATIONS); not sent",
            )
        elif row["hubspot_id"] is None and not row["idempotency_key"]:
            run.fail(
                row["id"],
                "NO_IDEMPOTENCY_KEY",
                "a booking without an idempotency_key could not be found again after a lost"
                " answer, so it is not created",
            )
        else:
            ready.append(row)
    new = [r for r in ready if r["hubspot_id"] is None]
    known = [r for r in ready if r["hubspot_id"] is not None]
    if new:
        new, recovered = _recover(run, new)
        known += recovered
    written: dict[str, str] = {}  # booking uuid -> HubSpot id, for the associations
    stopped = False
    for batch, create in [(b, True) for b in chunks(new, run.options.batch_size)] + [
        (b, False) for b in chunks(known, run.options.batch_size)
    ]:
        if run.past_deadline():
            stopped = True  # finish what this group wrote (associations, marks), then stop
            break
        written.update(_create(run, batch, counts) if create else _write(run, batch, counts))
    _associate_and_mark(run, [r for r in known if r["id"] in written], written)
    if stopped:
        raise DeadlineReached


def _recover(
    run: Run, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split bookings without a HubSpot id into (to create, found in HubSpot). Those
    whose create was sent before are looked for by idempotency_key; found ones carry
    the record's id (made with their associations inline) and are updated by it."""
    sent: dict[str, int] = run.rpc("sync_booking_creates_pending", ids=[r["id"] for r in rows])[
        "sent"
    ]
    if not sent:
        return rows, []
    keys = [str(r["idempotency_key"]) for r in rows if r["id"] in sent]
    found: dict[str, str] = {}  # idempotency_key -> HubSpot id (the oldest record)
    for chunk in chunks(keys, SEARCH_IN_LIMIT):
        run.check_deadline()
        page = run.client.search(
            run.options.bookings_object,
            [{"filters": [{"propertyName": "idempotency_key", "operator": "IN", "values": chunk}]}],
            ["idempotency_key"],
            limit=SEARCH_IN_LIMIT,
            sorts=[{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
        )
        for record in page.results:
            key = str((record.get("properties") or {}).get("idempotency_key") or "")
            found.setdefault(key, str(record["id"]))
    create: list[dict[str, Any]] = []
    recovered: list[dict[str, Any]] = []
    for row in rows:
        hubspot_id = found.get(str(row["idempotency_key"]))
        if row["id"] not in sent:
            create.append(row)
        elif hubspot_id is not None:
            recovered.append({**row, "hubspot_id": hubspot_id, "needs_associations": False})
        elif sent[row["id"]] >= run.options.create_recovery_after_s:
            create.append(row)
        else:  # sent moments ago; HubSpot's search may not show it yet. Next run.
            run.fail(
                row["id"],
                "CREATE_UNCONFIRMED",
                "sent to HubSpot moments ago and not found there yet; the next run looks again",
                severity="warning",
            )
    return create, recovered


def _create(run: Run, batch: Sequence[dict[str, Any]], counts: PhaseCounts) -> dict[str, str]:
    """Create one batch with its associations inline, after recording it as sent;
    write the ids back and mark the bookings synced. Returns booking id -> HubSpot id."""
    run.rpc("sync_booking_creates_sent", run_id=str(run.run_id), ids=[r["id"] for r in batch])
    by_trace = {str(r["id"]): r for r in batch}
    inputs: list[dict[str, Any]] = [
        {
            # booking_id is a label here: written once, with the record.
            "properties": {**booking_properties(r), "booking_id": str(r["booking_id"] or "")},
            "objectWriteTraceId": str(r["id"]),
            "associations": [
                _inline(r["contact_hubspot_id"], run.options.booking_contact_association),
                _inline(r["exam_hubspot_id"], run.options.booking_exam_association),
            ],
        }
        for r in batch
    ]
    try:
        result = run.client.batch_create(run.options.bookings_object, inputs)
    except HubSpotUnavailable as exc:
        if not exc.write_may_have_applied:
            raise
        # The answer was lost: HubSpot may hold them now. The next run looks for them
        # (by idempotency_key) before it creates anything.
        for row in batch:
            run.fail(
                row["id"],
                "ANSWER_LOST",
                f"the create's answer was lost ({exc.message}); the next run looks for it",
                correlation_id=exc.correlation_id,
            )
        run.batch_done()
        return {}
    except HubSpotError as exc:
        if not batch_refused(exc):
            raise
        for row in batch:
            run.fail(row["id"], exc.category, exc.message, correlation_id=exc.correlation_id)
        run.rpc("sync_booking_creates_refused", run_id=str(run.run_id), ids=list(by_trace))
        run.batch_done()
        return {}
    written: dict[str, str] = {}
    items: list[dict[str, Any]] = []
    for record in result.results:
        found = take(by_trace, str(record.get("objectWriteTraceId")))
        if found is None:
            continue
        written[found["id"]] = str(record["id"])
        items.append(_item(found, str(record["id"]), synced=True))  # associated with it
    not_created: list[str] = []
    for error in result.errors:
        refused = take(by_trace, str(error.id))
        run.refused(refused["id"] if refused else None, error, None)
        if refused:
            not_created.append(str(refused["id"]))
    if not_created:
        run.rpc("sync_booking_creates_refused", run_id=str(run.run_id), ids=not_created)
    for row in by_trace.values():
        # Not in the answer: it may exist; the next run looks for it (never recreated blind).
        run.fail(row["id"], "NO_RESULT", "HubSpot's answer did not mention this booking")
    _written(run, items, written)
    counts.created += len(written)
    run.batch_done()
    return written


def _inline(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": str(to_id)},
        "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}],
    }


def _item(row: dict[str, Any], hubspot_id: str, *, synced: bool) -> dict[str, Any]:
    """What sync_bookings_written takes for one booking HubSpot now holds."""
    return {
        "id": row["id"],
        "hubspot_id": hubspot_id,
        "contact_hubspot_id": row["contact_hubspot_id"],
        "updated_at": row["updated_at"],
        "synced": synced,
    }


def _written(run: Run, items: list[dict[str, Any]], written: dict[str, str]) -> None:
    """Write HubSpot's ids back; a booking whose id clashes with another's is failed."""
    if not items:
        return
    answer = run.rpc("sync_bookings_written", run_id=str(run.run_id), items=run.items(items))
    for conflict in answer["conflicts"]:
        take(written, conflict["id"])
        run.fail(
            conflict["id"],
            "HUBSPOT_ID_CONFLICT",
            conflict["message"],
            hubspot_id=conflict["hubspot_id"],
        )


def _location_allowed(run: Run, row: dict[str, Any]) -> bool:
    """HubSpot's attending_location is an enumeration: a value outside its options
    would fail the record (and, in an update, its whole batch)."""
    location = booking_properties(row)["attending_location"]
    return location == "" or location in run.options.attending_locations


def _write(run: Run, batch: Sequence[dict[str, Any]], counts: PhaseCounts) -> dict[str, str]:
    """Update one batch by HubSpot id (a batch refused whole for one record's value is
    split by the client down to that record); write the ids back and mark the bookings
    that need no association synced. Returns booking id -> HubSpot id."""
    by_key = {str(r["hubspot_id"]): r for r in batch}
    try:
        result: BatchResult = run.client.batch_update(
            run.options.bookings_object,
            [{"id": r["hubspot_id"], "properties": booking_properties(r)} for r in batch],
        )
    except HubSpotError as exc:
        if not batch_refused(exc):
            raise
        for row in batch:
            run.fail(row["id"], exc.category, exc.message, correlation_id=exc.correlation_id)
        run.batch_done()
        return {}
    written: dict[str, str] = {}
    items: list[dict[str, Any]] = []
    for record in result.results:
        found = take(by_key, str(record["id"]))
        if found is None:
            continue
        written[found["id"]] = str(record["id"])
        # Associations still to make: marked synced after them, not now.
        items.append(_item(found, str(record["id"]), synced=not found["needs_associations"]))
    for error in result.errors:
        refused = take(by_key, str(error.id))
        run.refused(
            refused["id"] if refused else None, error, refused["hubspot_id"] if refused else None
        )
    for row in by_key.values():
        run.fail(row["id"], "NO_RESULT", "HubSpot's answer did not mention this booking")
    _written(run, items, written)
    counts.updated += len(written)
    run.batch_done()
    return written


def _associate_and_mark(run: Run, rows: list[dict[str, Any]], written: dict[str, str]) -> None:
    """Associate the bookings never fully synced with their contact and exam (one call
    per target type), then mark those whose both associations exist synced."""
    due = [r for r in rows if r["needs_associations"]]
    if not due:
        return
    failed: dict[str, str] = {}  # booking id -> why
    for target, key in (
        (CONTACTS, "contact_hubspot_id"),
        (run.options.mock_exams_object, "exam_hubspot_id"),
    ):
        pairs = {(written[r["id"]], str(r[key])): r["id"] for r in due}
        type_id = (
            run.options.booking_contact_association
            if target == CONTACTS
            else run.options.booking_exam_association
        )
        try:
            result = run.client.create_associations(
                run.options.bookings_object, target, [(f, t, type_id) for f, t in pairs]
            )
        except HubSpotError as exc:
            if not batch_refused(exc):
                raise
            for booking_id in pairs.values():
                failed.setdefault(booking_id, f"{exc.category}: {exc.message}")
            continue
        by_pair = {f"{f}:{t}": booking_id for (f, t), booking_id in pairs.items()}
        for error in result.errors:
            booking_id = by_pair.get(str(error.id))
            if booking_id is not None:
                failed.setdefault(booking_id, f"association to {target}: {error.message}")
    items = []
    for row in due:
        if row["id"] in failed:
            run.fail(
                row["id"], "ASSOCIATION_FAILED", failed[row["id"]], hubspot_id=written[row["id"]]
            )
            continue
        items.append(
            {
                "id": row["id"],
                "hubspot_id": written[row["id"]],
                "contact_hubspot_id": row["contact_hubspot_id"],
                "updated_at": row["updated_at"],
                "synced": True,
            }
        )
    if items:
        run.rpc("sync_bookings_written", run_id=str(run.run_id), items=run.items(items))
    run.batch_done()
