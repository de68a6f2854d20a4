"""The five phases of a sync run, in the order lib/hubspot/sync.py runs them (see
lib/hubspot/sync_run.py PHASES): exams (pull), contacts, credits, bookings, seats.

Each is `run(run: Run) -> None`: bounded batches, each batch's outcome committed in
one database call before the next batch starts (so a kill loses at most the batch in
hand, which the next run redoes idempotently), `run.check_deadline()` between
batches, and never a database transaction open while HubSpot is called.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lib.hubspot.client import CONTACTS
from lib.hubspot.mapping import MappingError, parse_ms
from lib.hubspot.sync_run import Run, SyncFailure

# HubSpot's search: at most 200 per page and 10,000 results per query.
SEARCH_PAGE = 200
SEARCH_RESULT_CAP = 10_000


def take[V](found: dict[str, V], key: str) -> V | None:
    """Remove and return found[key], or None: what a batch answer names is ticked off,
    and what is left over was never answered."""
    return found.pop(key) if key in found else None


def chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def modified_property(object_type: str) -> str:
    """The last-modified property a type's search can filter and sort on: contacts have
    `lastmodifieddate` (searching contacts on `hs_lastmodifieddate` is reported not to
    work), custom objects `hs_lastmodifieddate`."""
    return "lastmodifieddate" if object_type in (CONTACTS, "contacts") else "hs_lastmodifieddate"


def modified_ms(record: Mapping[str, Any]) -> int | None:
    """When HubSpot last modified the record (either type's property, as read)."""
    properties = record.get("properties") or {}
    try:
        return parse_ms(properties.get("lastmodifieddate") or properties.get("hs_lastmodifieddate"))
    except MappingError:
        return None


def next_watermark(since: int, started_ms: int, margin_ms: int, held_back: int | None) -> int:
    """Where the next search starts: everything modified before (search start - margin)
    has been seen (SEARCH_MARGIN_MS says why not up to the search itself), except the
    records of a batch that failed, which must be found again: never past the earliest
    of those (`held_back`). Never backwards."""
    candidate = started_ms - margin_ms
    if held_back is not None:
        candidate = min(candidate, held_back)
    return max(since, candidate)


def modified_since(
    run: Run,
    object_type: str,
    since_ms: int,
    properties: Sequence[str],
    filters: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Every record of a type HubSpot shows as modified at or after `since_ms`, oldest
    first, each once. All pages are read before anything is written: our own writes
    move records to the end of a modification-time order, which would shift the pages
    of a search still being read. A query ends at HubSpot's 10,000-result cap; the next
    starts from the last modification time seen (records sharing it come again and are
    de-duplicated)."""
    found: dict[str, dict[str, Any]] = {}
    since = since_ms
    modified = modified_property(object_type)
    while True:
        after: str | None = None
        seen = 0
        latest = since
        while True:
            run.check_deadline()
            page = run.client.search(
                object_type,
                [
                    {
                        "filters": [
                            {
                                "propertyName": modified,
                                "operator": "GTE",
                                "value": str(since),
                            },
                            *filters,
                        ]
                    }
                ],
                [*(p for p in properties if p != "hs_lastmodifieddate"), modified],
                limit=SEARCH_PAGE,
                after=after,
                sorts=[{"propertyName": modified, "direction": "ASCENDING"}],
            )
            for record in page.results:
                found[str(record["id"])] = record
                latest = max(latest, modified_ms(record) or latest)
            seen += len(page.results)
            if page.after is None or seen + SEARCH_PAGE > SEARCH_RESULT_CAP:
                break
            after = page.after
        if seen >= page.total:
            return sorted(found.values(), key=lambda r: (modified_ms(r) or 0, int(r["id"])))
        if latest <= since:
            raise SyncFailure(
                f"more than {SEARCH_RESULT_CAP} {object_type} records share one modification"
                " time; HubSpot's search cannot page past them"
            )
        since = latest


def batch_refused(exc: Exception) -> bool:
    """Whether a HubSpot failure is this batch's alone (HubSpot refused its content as a
    whole: record every record of it as failed and go on), rather than HubSpot's or our
    credentials' (outage, rate limits, daily budget, 401/403: stop the run, which
    resumes later)."""
    from lib.hubspot.client import (
        HubSpotDailyLimit,
        HubSpotError,
        HubSpotRateLimited,
        HubSpotUnavailable,
    )

    return (
        isinstance(exc, HubSpotError)
        and not isinstance(exc, HubSpotUnavailable | HubSpotRateLimited | HubSpotDailyLimit)
        and exc.status not in (0, 401, 403)
        and exc.status < 500
    )
