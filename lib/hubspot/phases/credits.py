"""Credits, both ways: a three-way merge against the balances last synchronised.

Which contacts: those HubSpot shows as modified since the contacts watermark (a
purchase, an admin edit; found by search, filtered against the merge base) and those
PostgreSQL changed since the base (bookings, cancellations, refunds, admin
adjustments) or whose last push awaits confirmation. A full pass takes every contact
with a HubSpot id.

Each batch of at most 100 contacts:
  1. read their balances from HubSpot (batch read: exact, unlike search, which lags);
     those whose balances moved from the base, or whose last push is unconfirmed, are
     read again with their property history (HubSpot's `propertiesWithHistory`), and
     what sources other than this sync changed since the base is counted from it (a
     change's sourceType/sourceId tells this sync's app's writes from the rest:
     mapping.credit_changes_elsewhere);
  2. sync_merge_credits, ONE transaction: those changes are added to PostgreSQL
     (relative UPDATE), and the balances HubSpot must show are recorded as a pending
     push BEFORE anything is sent;
  3. push those balances (one batch update);
  4. sync_confirm_credits: landed → they become the base; refused by HubSpot → the
     pending push is dropped (the next run pushes again).
A kill or a lost answer between 2 and 4 leaves the pending push; the next run's step 1
reads the history, in which the push, if it landed, is this sync's own change and
counts for nothing, so whether it landed need not even be known (the SQL function's
comment has the full rules). No property of HubSpot's schema is added or changed.
HubSpot has no conditional write, so an admin edit landing between step 1 and step 3
is overwritten in HubSpot; it is still in the history, after the base, and the next
run that reads the history adds it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from lib.hubspot.client import CONTACTS, HubSpotError
from lib.hubspot.mapping import (
    CREDIT_KINDS,
    credit_changes_elsewhere,
    credit_properties,
    credit_values,
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
        if run.options.app_id is None:
            run.fail(
                None,
                "CONFIGURATION",
                "HUBSPOT_APP_ID is not set: without it the credit merge cannot tell this"
                " sync's own changes in HubSpot's history from purchases and edits, so"
                " credits were not synchronised",
            )
            return
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
    records = modified_since(run, CONTACTS, since, list(CREDIT_KINDS), filters=[STUDENTS_ONLY])
    modified = {str(r["id"]): modified_ms(r) or 0 for r in records}
    candidates: list[dict[str, Any]] = []
    for batch in chunks(records, run.options.batch_size):
        seen = [
            {"hubspot_id": str(r["id"]), "values": credit_values(r.get("properties") or {})}
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
    """Steps 1-4 above for at most one batch of contacts ({"id", "hubspot_id",
    "state"}: the merge memory sync_credit_candidates/_watch give)."""
    wanted = {str(c["hubspot_id"]): c for c in contacts}
    try:
        read = run.client.batch_read(CONTACTS, list(wanted), CREDIT_KINDS)
        records = _answered(run, wanted, read.results, read.errors)
        # HubSpot's balances moved, or a push is unsettled: what happened since the
        # base is in the history. Read again for it (fresher values too).
        deeper = [
            hubspot_id
            for hubspot_id, record in records.items()
            if _needs_history(wanted[hubspot_id].get("state"), record)
        ]
        if deeper:
            again = run.client.batch_read(CONTACTS, deeper, CREDIT_KINDS, with_history=CREDIT_KINDS)
            asked = {h: wanted[h] for h in deeper}
            for hubspot_id in deeper:
                del records[hubspot_id]
            records.update(_answered(run, asked, again.results, again.errors))
    except HubSpotError as exc:
        if not batch_refused(exc):
            raise
        for hubspot_id, contact in wanted.items():
            run.fail(str(contact["id"]), exc.category, exc.message, hubspot_id=hubspot_id)
        run.batch_done()
        return
    items = [
        item
        for hubspot_id, record in records.items()
        if (item := _item(run, wanted[hubspot_id], record)) is not None
    ]
    if items:
        _merge_and_push(run, items)
    run.batch_done()


def _answered(
    run: Run,
    asked: dict[str, dict[str, Any]],
    results: Sequence[dict[str, Any]],
    errors: Sequence[Any],
) -> dict[str, dict[str, Any]]:
    """The records a batch read answered, by HubSpot id; a refused or missing
    contact is recorded as failed."""
    left = dict(asked)
    found: dict[str, dict[str, Any]] = {}
    for record in results:
        hubspot_id = str(record["id"])
        if take(left, hubspot_id) is not None:
            found[hubspot_id] = record
    for error in errors:
        refused = take(left, str(error.id))
        if refused is not None:
            run.refused(str(refused["id"]), error, str(error.id))
    for hubspot_id, contact in left.items():
        run.fail(
            str(contact["id"]),
            "OBJECT_NOT_FOUND",
            "HubSpot has no contact with this id (deleted or merged there?)",
            hubspot_id=hubspot_id,
        )
    return found


def _needs_history(state: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    if not state or state.get("base_at_ms") is None:
        return False  # never merged, or a base copied at first login: values decide
    if state.get("pending") is not None or state.get("recheck"):
        return True
    return credit_values(record.get("properties") or {}) != state.get("base")


def _item(run: Run, contact: dict[str, Any], record: dict[str, Any]) -> dict[str, Any] | None:
    """One contact's entry for sync_merge_credits, or None (recorded as failed)."""
    hubspot_id = str(record["id"])
    properties = record.get("properties") or {}
    values = credit_values(properties)
    if values is None:
        run.fail(
            str(contact["id"]),
            "INVALID_CREDITS",
            "HubSpot holds a balance that is not a whole number of at least 0: "
            + ", ".join(f"{k}={properties.get(k)!r}" for k in CREDIT_KINDS),
            hubspot_id=hubspot_id,
        )
        return None
    state = contact.get("state") or {}
    changes: list[int] | None = None
    if "propertiesWithHistory" in record:
        assert run.options.app_id is not None  # run() checked
        changes = credit_changes_elsewhere(
            record["propertiesWithHistory"], int(state["base_at_ms"]), run.options.app_id
        )
        if changes is None:
            run.fail(
                str(contact["id"]),
                "INVALID_CREDITS",
                "HubSpot's history of these balances holds a value that is not a whole"
                " number of at least 0, or a change without a time",
                hubspot_id=hubspot_id,
            )
            return None
    return {
        "contact_id": str(contact["id"]),
        "hubspot_id": hubspot_id,
        "values": values,
        "seen_at": record.get("updatedAt"),
        "base_at_ms": state.get("base_at_ms"),
        "changes": changes,
    }


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
            [{"id": p["hubspot_id"], "properties": credit_properties(p["values"])} for p in pushes],
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
