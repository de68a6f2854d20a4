"""Bookings, PostgreSQL → HubSpot: PostgreSQL owns bookings and their status.

Due: no HubSpot id, never fully synced, or changed since hubspot_last_sync_at
(cancellations included; a booking cancelled before its first sync simply arrives as
Cancelled). A full pass takes every booking.

Per group of up to 2,000 bookings (HubSpot's association batch size):
  * new codes (BK-..., unique) are written with a batch UPSERT by booking_id: a retry
    after a lost answer, or a run redoing a batch a kill interrupted, finds the record
    it made instead of making a second. Legacy codes repeat, so those rows (which all
    came from HubSpot and have its id) are updated by HubSpot id;
  * after each call of 100, the HubSpot ids are written back at once (a checkpoint:
    a kill after it does not have to find them again);
  * then, for bookings never fully synced, their associations to the contact and to
    the exam: one call of up to 2,000 pairs per target type (creating an existing
    association is harmless, so a redo is too);
  * only then are they marked synced, with the updated_at of the version pushed.
A booking's failure (HubSpot refused it, its contact has no HubSpot id yet, an
association failed) is recorded and leaves it due for the next run; the rest go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.hubspot.client import CONTACTS, BatchResult, HubSpotError
from lib.hubspot.mapping import booking_properties, is_new_code
from lib.hubspot.phases import batch_refused, chunks, take
from lib.hubspot.sync_run import DeadlineReached, PhaseCounts, Run


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
        elif row["hubspot_id"] is None and not is_new_code(row["booking_id"]):
            run.fail(
                row["id"],
                "LEGACY_CODE_WITHOUT_ID",
                f"code {row['booking_id']!r} is not unique, so it cannot be upserted, and the"
                " booking has no HubSpot id to update by",
            )
        else:
            ready.append(row)
    upserts = [r for r in ready if is_new_code(r["booking_id"])]
    updates = [r for r in ready if not is_new_code(r["booking_id"])]
    written: dict[str, str] = {}  # booking uuid -> HubSpot id, for the associations
    stopped = False
    for batch, by_code in [(b, True) for b in chunks(upserts, run.options.batch_size)] + [
        (b, False) for b in chunks(updates, run.options.batch_size)
    ]:
        if run.past_deadline():
            stopped = True  # finish what this group wrote (associations, marks), then stop
            break
        written.update(_write(run, batch, counts, by_code=by_code))
    _associate_and_mark(run, [r for r in ready if r["id"] in written], written)
    if stopped:
        raise DeadlineReached


def _write(
    run: Run, batch: Sequence[dict[str, Any]], counts: PhaseCounts, *, by_code: bool
) -> dict[str, str]:
    """Upsert (by code) or update (by HubSpot id) one batch; write the ids back and mark
    the bookings that need no association synced. Returns booking id -> HubSpot id."""
    bookings = run.options.bookings_object
    key = "booking_id" if by_code else "hubspot_id"
    by_key = {str(r[key]): r for r in batch}
    try:
        result: BatchResult
        if by_code:
            result = run.client.batch_upsert(
                bookings,
                [{"id": r["booking_id"], "properties": booking_properties(r)} for r in batch],
                "booking_id",
            )
        else:
            result = run.client.batch_update(
                bookings,
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
    created: dict[str, bool] = {}
    for record in result.results:
        properties = record.get("properties") or {}
        answered = (
            str(record.get("objectWriteTraceId") or properties.get("booking_id"))
            if by_code
            else str(record["id"])
        )
        found = take(by_key, answered)
        if found is None:
            continue
        hubspot_id = str(record["id"])
        written[found["id"]] = hubspot_id
        created[found["id"]] = bool(record.get("new"))
        items.append(
            {
                "id": found["id"],
                "hubspot_id": hubspot_id,
                "contact_hubspot_id": found["contact_hubspot_id"],
                "updated_at": found["updated_at"],
                # Associations still to make: marked synced after them, not now.
                "synced": not found["needs_associations"],
            }
        )
    for error in result.errors:
        refused = take(by_key, str(error.id))
        run.refused(
            refused["id"] if refused else None, error, refused["hubspot_id"] if refused else None
        )
    for row in by_key.values():
        run.fail(row["id"], "NO_RESULT", "HubSpot's answer did not mention this booking")
    if items:
        answer = run.rpc("sync_bookings_written", run_id=str(run.run_id), items=run.items(items))
        for conflict in answer["conflicts"]:
            take(written, conflict["id"])
            take(created, conflict["id"])
            run.fail(
                conflict["id"],
                "HUBSPOT_ID_CONFLICT",
                conflict["message"],
                hubspot_id=conflict["hubspot_id"],
            )
    counts.created += sum(created.values())
    counts.updated += len(created) - sum(created.values())
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
        try:
            result = run.client.associate_default(run.options.bookings_object, target, list(pairs))
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
