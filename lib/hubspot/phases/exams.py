"""Exams, HubSpot → PostgreSQL: HubSpot owns exam definitions (admins create and edit
them there). Pulls the exams modified since the watermark (all of them in a full
pass), inserts new ones and updates changed definitions; PostgreSQL's own seat count
(total_bookings, seats_version) is never taken from HubSpot (sync_exams_pulled).
"""

from __future__ import annotations

import time

from lib.hubspot.mapping import EXAM_PROPERTIES, MappingError, exam_from_hubspot
from lib.hubspot.phases import chunks, modified_ms, modified_since, next_watermark
from lib.hubspot.sync_run import Run


def run(run: Run) -> None:
    with run.phase("exams") as counts:
        started_ms = int(time.time() * 1000)
        watermark = run.begun.get("exams_watermark")
        since = 0 if run.full or watermark is None else int(watermark)
        records = modified_since(run, run.options.mock_exams_object, since, EXAM_PROPERTIES)
        run.totals["exams"] = len(records)
        held_back: int | None = None  # the earliest modification a failed exam had
        for batch in chunks(records, run.options.batch_size):
            run.check_deadline()
            failed_before = counts.failed
            items = []
            for record in batch:
                try:
                    items.append(exam_from_hubspot(record))
                except MappingError as exc:
                    run.fail(None, "INVALID_EXAM", str(exc), hubspot_id=str(record["id"]))
            if items:
                answer = run.rpc(
                    "sync_exams_pulled", run_id=str(run.run_id), items=run.items(items)
                )
                counts.created += answer["created"]
                counts.updated += answer["updated"]
                counts.unchanged += answer["unchanged"]
                for error in answer["errors"]:
                    run.fail(None, "EXAM_REFUSED", error["message"], hubspot_id=error["hubspot_id"])
            if counts.failed > failed_before:
                earliest = min((modified_ms(r) or 0) for r in batch)
                held_back = earliest if held_back is None else min(held_back, earliest)
            run.batch_done()
        run.checkpoint(
            "exams_watermark",
            next_watermark(since, started_ms, run.options.search_margin_ms, held_back),
        )
