"""Seat counts, PostgreSQL → HubSpot: PostgreSQL owns seat counts. Each exam whose
seats_version moved since HubSpot was last told (every exam, in a full pass) gets its
total_bookings written, 100 exams per call; only that property: the definitions are
HubSpot's. Recorded per exam with the version pushed, so a seat change made while
the call was in flight stays due.
"""

from __future__ import annotations

from typing import Any

from lib.hubspot.client import HubSpotError
from lib.hubspot.phases import batch_refused, take
from lib.hubspot.sync_run import Run


def run(run: Run) -> None:
    with run.phase("seats") as counts:
        after = run.resume_after("seats")
        while True:
            run.check_deadline()
            page = run.rpc(
                "sync_seats_pending", after=after, limit=run.options.batch_size, full=run.full
            )
            exams: list[dict[str, Any]] = page["exams"]
            if not exams:
                break
            by_hubspot_id = {str(e["hubspot_id"]): e for e in exams}
            try:
                result = run.client.batch_update(
                    run.options.mock_exams_object,
                    [
                        {
                            "id": e["hubspot_id"],
                            "properties": {"total_bookings": e["total_bookings"]},
                        }
                        for e in exams
                    ],
                )
            except HubSpotError as exc:
                if not batch_refused(exc):
                    raise
                for exam in exams:
                    run.fail(exam["id"], exc.category, exc.message, hubspot_id=exam["hubspot_id"])
                result = None
            pushed = []
            if result is not None:
                for record in result.results:
                    answered = take(by_hubspot_id, str(record["id"]))
                    if answered is not None:
                        pushed.append(
                            {
                                "exam_id": answered["id"],
                                "seats_version": answered["seats_version"],
                                "total_bookings": answered["total_bookings"],
                            }
                        )
                for error in result.errors:
                    refused = take(by_hubspot_id, str(error.id))
                    run.refused(refused["id"] if refused else None, error, str(error.id))
            if pushed:
                run.rpc("sync_seats_pushed", run_id=str(run.run_id), items=run.items(pushed))
            counts.updated += len(pushed)
            after = exams[-1]["id"]
            run.full_position("seats", after)
            run.batch_done()
            if len(exams) < run.options.batch_size:
                break
