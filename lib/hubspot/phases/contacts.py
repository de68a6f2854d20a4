"""Contacts, PostgreSQL → HubSpot: students PostgreSQL has and HubSpot does not (no
hubspot_id) are upserted by email, HubSpot's key for contacts, so a retry after a
lost answer (or a student HubSpot already had under that email) never makes a second
contact; the HubSpot ids are written back. Balances are not sent here: the credits
phase merges them, after reading what HubSpot already holds.
"""

from __future__ import annotations

from typing import Any

from lib.hubspot.client import CONTACTS, HubSpotError
from lib.hubspot.mapping import contact_properties
from lib.hubspot.phases import batch_refused, take
from lib.hubspot.sync_run import PhaseCounts, Run


def run(run: Run) -> None:
    with run.phase("contacts") as counts:
        after: str | None = None
        while True:
            run.check_deadline()
            page = run.rpc("sync_contacts_pending", after=after, limit=run.options.batch_size)
            contacts: list[dict[str, Any]] = page["contacts"]
            if not contacts:
                break
            _push(run, contacts, counts)
            after = contacts[-1]["id"]
            run.batch_done()
            if len(contacts) < run.options.batch_size:
                break


def _push(run: Run, contacts: list[dict[str, Any]], counts: PhaseCounts) -> None:
    by_email: dict[str, dict[str, Any]] = {}
    for contact in contacts:
        email = str(contact["email"]).lower()
        if email in by_email:
            # HubSpot keeps one contact per email; PostgreSQL allows two student ids
            # with one email. The first gets the HubSpot contact; this one waits for a
            # person to sort it out.
            run.fail(
                contact["id"],
                "DUPLICATE_EMAIL",
                f"shares its email with contact {by_email[email]['id']}; HubSpot keeps one"
                " contact per email",
            )
            continue
        by_email[email] = contact
    try:
        result = run.client.batch_upsert(
            CONTACTS,
            [{"id": email, "properties": contact_properties(c)} for email, c in by_email.items()],
            "email",
        )
    except HubSpotError as exc:
        if not batch_refused(exc):
            raise
        for contact in by_email.values():
            run.fail(contact["id"], exc.category, exc.message, correlation_id=exc.correlation_id)
        return
    linked: list[dict[str, str]] = []
    created: dict[str, bool] = {}
    for record in result.results:
        properties = record.get("properties") or {}
        key = str(record.get("objectWriteTraceId") or properties.get("email") or "").lower()
        answered = take(by_email, key)
        if answered is None:
            continue
        linked.append({"contact_id": answered["id"], "hubspot_id": str(record["id"])})
        created[answered["id"]] = bool(record.get("new"))
    for error in result.errors:
        refused = take(by_email, str(error.id or "").lower())
        run.refused(refused["id"] if refused else None, error, None)
    for contact in by_email.values():
        run.fail(contact["id"], "NO_RESULT", "HubSpot's answer did not mention this contact")
    if not linked:
        return
    answer = run.rpc("sync_contacts_linked", run_id=str(run.run_id), items=run.items(linked))
    for conflict in answer["conflicts"]:
        take(created, conflict["contact_id"])
        run.fail(
            conflict["contact_id"],
            "HUBSPOT_ID_TAKEN",
            conflict["message"],
            hubspot_id=conflict["hubspot_id"],
        )
    counts.created += sum(created.values())
    counts.updated += len(created) - sum(created.values())
