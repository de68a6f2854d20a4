"""Credits, both ways: a three-way merge against the balances last synchronised.

Which contacts: those HubSpot shows as modified since the contacts watermark (a
purchase, an admin edit; found by search, filtered against the merge base) and those
PostgreSQL changed since the base (bookings, cancellations, refunds, admin
adjustments) or whose last push awaits confirmation. A full pass takes every contact
with a HubSpot id.

Each batch of at most 100 contacts:
  1. read their balances and credits_sync_id from HubSpot (batch read: exact, unlike
     search, which lags);
  2. sync_merge_credits, ONE transaction: HubSpot's changes since the base are added
     to PostgreSQL (relative UPDATE), and the balances HubSpot must show are recorded
     as a pending push BEFORE anything is sent;
  3. push those balances with credits_sync_id = the push id (one batch update);
  4. sync_confirm_credits: landed → they become the base; refused by HubSpot → the
     pending push is dropped (the next run pushes again).
A kill or a lost answer between 2 and 4 leaves the pending push; the next run's step 2
reads credits_sync_id back and knows whether it landed (the SQL function's comment has
the full rules). HubSpot has no conditional write, so an admin edit landing in the
second between step 1 and step 3 is overwritten; that window is one batch's round trip.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from lib.hubspot.client import CONTACTS, HubSpotError
from lib.hubspot.mapping import (
    CREDIT_KINDS,
    CREDITS_MARKER,
    credit_properties,
    credit_values,
    marker,
)
from lib.hubspot.phases import (
    batch_refused,
    chunks,
    modified_ms,
    modified_since,
    next_watermark,
    take,
)
from lib.hubspot.sync_run import Run

# Only students: HubSpot's contacts include every lead and customer of the school.
STUDENTS_ONLY = {"propertyName": "student_id", "operator": "HAS_PROPERTY"}


def run(run: Run) -> None:
    with run.phase("credits"):
        started_ms = int(time.time() * 1000)
        if not run.full:
            _changed_in_hubspot(run)
        after = run.resume_after("credits")
        while True:
            run.check_deadline()
            page = run.rpc(
                "sync_credit_candidates",
                after=after,
                limit=run.options.batch_size,
                full=run.full,
            )
            contacts: list[dict[str, Any]] = page["contacts"]
            if not contacts:
                break
            merge_batch(run, contacts)
            after = contacts[-1]["id"]
            run.full_position("credits", after)
            if len(contacts) < run.options.batch_size:
                break
        if run.full:
            # Every contact was just read back: HubSpot's changes up to then are in.
            run.checkpoint("contacts_watermark", started_ms - run.options.search_margin_ms)


def _changed_in_hubspot(run: Run) -> None:
    """Merge the contacts HubSpot shows as modified since the watermark, then move it."""
    started_ms = int(time.time() * 1000)
    watermark = run.begun.get("contacts_watermark")
    since = 0 if watermark is None else int(watermark)
    records = modified_since(
        run, CONTACTS, since, [*CREDIT_KINDS, CREDITS_MARKER], filters=[STUDENTS_ONLY]
    )
    modified = {str(r["id"]): modified_ms(r) or 0 for r in records}
    candidates: list[dict[str, Any]] = []
    for batch in chunks(records, run.options.batch_size):
        seen = [
            {
                "hubspot_id": str(r["id"]),
                "values": credit_values(r.get("properties") or {}),
                "marker": marker(r.get("properties") or {}),
            }
            for r in batch
        ]
        candidates.extend(run.rpc("sync_credit_watch", items=run.items(seen))["contacts"])
    # For the progress bar: the PostgreSQL-side count did not know of these.
    run.totals["credits"] = run.totals.get("credits", 0) + len(candidates)
    held_back: int | None = None  # the earliest modification a failed contact had
    for batch in chunks(candidates, run.options.batch_size):
        run.check_deadline()
        failed_before = run.counts().failed
        merge_batch(run, batch)
        if run.counts().failed > failed_before:
            earliest = min(modified[str(c["hubspot_id"])] for c in batch)
            held_back = earliest if held_back is None else min(held_back, earliest)
    run.checkpoint(
        "contacts_watermark",
        next_watermark(since, started_ms, run.options.search_margin_ms, held_back),
    )


def merge_batch(run: Run, contacts: Sequence[dict[str, Any]]) -> None:
    """Steps 1-4 above for at most one batch of contacts ({"id", "hubspot_id"})."""
    wanted = {str(c["hubspot_id"]): str(c["id"]) for c in contacts}
    try:
        read = run.client.batch_read(CONTACTS, list(wanted), [*CREDIT_KINDS, CREDITS_MARKER])
    except HubSpotError as exc:
        if not batch_refused(exc):
            raise
        for hubspot_id, contact_id in wanted.items():
            run.fail(contact_id, exc.category, exc.message, hubspot_id=hubspot_id)
        run.batch_done()
        return
    items: list[dict[str, Any]] = []
    for record in read.results:
        hubspot_id = str(record["id"])
        answered = take(wanted, hubspot_id)
        if answered is None:
            continue
        contact_id = answered
        properties = record.get("properties") or {}
        values = credit_values(properties)
        if values is None:
            run.fail(
                contact_id,
                "INVALID_CREDITS",
                "HubSpot holds a balance that is not a whole number of at least 0: "
                + ", ".join(f"{k}={properties.get(k)!r}" for k in CREDIT_KINDS),
                hubspot_id=hubspot_id,
            )
            continue
        items.append(
            {
                "contact_id": contact_id,
                "hubspot_id": hubspot_id,
                "values": values,
                "marker": marker(properties),
            }
        )
    for error in read.errors:
        refused = take(wanted, str(error.id))
        if refused is not None:
            run.refused(refused, error, str(error.id))
    for hubspot_id, contact_id in wanted.items():
        run.fail(
            contact_id,
            "OBJECT_NOT_FOUND",
            "HubSpot has no contact with this id (deleted or merged there?)",
            hubspot_id=hubspot_id,
        )
    if items:
        _merge_and_push(run, items)
    run.batch_done()


def _merge_and_push(run: Run, items: list[dict[str, Any]]) -> None:
    counts = run.counts()
    push_id = uuid.uuid4().hex
    merged = run.rpc(
        "sync_merge_credits", run_id=str(run.run_id), push_id=push_id, items=run.items(items)
    )
    counts.updated += merged["merged"]
    counts.unchanged += merged["unchanged"]
    for skipped in merged["skipped"]:
        run.fail(
            skipped["contact_id"], "SKIPPED", skipped["message"], hubspot_id=skipped["hubspot_id"]
        )
    for warning in merged["warnings"]:
        run.fail(
            warning["contact_id"],
            warning["category"],
            warning["message"],
            hubspot_id=warning["hubspot_id"],
            severity="warning",
        )
    pushes: list[dict[str, Any]] = merged["pushes"]
    if not pushes:
        return
    by_hubspot_id = {str(p["hubspot_id"]): str(p["contact_id"]) for p in pushes}
    try:
        result = run.client.batch_update(
            CONTACTS,
            [
                {"id": p["hubspot_id"], "properties": credit_properties(p["values"], push_id)}
                for p in pushes
            ],
        )
    except HubSpotError as exc:
        if not batch_refused(exc):
            # Unknown whether it landed (outage, timeouts) or not sent (rate limit,
            # daily budget): the pending push stays for the next run to settle.
            raise
        refused = list(by_hubspot_id.values())
        run.rpc(
            "sync_confirm_credits",
            run_id=str(run.run_id),
            push_id=push_id,
            landed="[]",
            refused=run.items(refused),
        )
        for hubspot_id, contact_id in by_hubspot_id.items():
            counts.updated -= 1
            run.fail(
                contact_id,
                exc.category,
                exc.message,
                hubspot_id=hubspot_id,
                correlation_id=exc.correlation_id,
            )
        return
    landed = [by_hubspot_id[str(r["id"])] for r in result.results if str(r["id"]) in by_hubspot_id]
    refused = []
    for error in result.errors:
        refused_id = by_hubspot_id.get(str(error.id))
        if refused_id is not None:
            refused.append(refused_id)
            counts.updated -= 1
            run.refused(refused_id, error, str(error.id))
    run.rpc(
        "sync_confirm_credits",
        run_id=str(run.run_id),
        push_id=push_id,
        landed=run.items(landed),
        refused=run.items(refused),
    )
