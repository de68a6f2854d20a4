"""The HubSpot batch sync: `run_once(mode, deadline)`.

Ownership decides direction (product.md §7). HubSpot owns exam definitions: pulled.
PostgreSQL owns bookings, their status, seat counts and credit spending: pushed.
Credits change on both sides (purchases and admin edits in HubSpot, bookings here):
merged three ways against the balances last synchronised, losing neither side's change.

One run, in this order (lib/hubspot/phases/): exams, contacts, credits, bookings,
seats. The order matters: bookings need their contact's HubSpot id, so contacts come
first; exams first so that bookings of an exam created minutes ago find it.

What makes it safe to run every two hours, to kill at any moment and to run again:
* one run at a time: a lease in PostgreSQL (sync_lease: Redis may be down) with an
  expiry, renewed by every batch; a crashed run blocks the next for at most the
  lease's ttl, and every write of a run whose lease was taken is refused (fencing);
* every batch's outcome is committed before the next batch starts; the work lists are
  the database's own state (a booking is due until marked synced, a contact until its
  merge is confirmed), so a run that stops for any reason is continued by the next;
  a full pass also keeps its position (sync_state 'full_pass');
* every write to HubSpot is repeat-safe (upserts of contacts by email, updates with
  absolute values, associations), but for the create of a new booking, recorded as
  sent first and found again by idempotency_key (phases/bookings.py). Credit pushes
  are recorded as pending before they are sent and carry a marker that the next run
  reads back, so a lost answer neither loses nor double-applies a change
  (phases/credits.py);
* no database transaction is ever open while HubSpot is being called.

`delta` sends only what changed; `full` re-sends every booking and seat count and
re-reads every contact's balances (weekly reconciliation; also rewrites the Redis seat
counters from the database). Every run is recorded in sync_runs (status, per-phase
counts, API calls, 429s, retries, errors with HubSpot correlation ids), each failed
record in sync_run_errors; one bad record never blocks the others.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from lib import db, log
from lib.config import Settings, settings
from lib.errors import AppError
from lib.hubspot.client import (
    HubSpotClient,
    HubSpotDailyLimit,
    HubSpotError,
    HubSpotRateLimited,
)
from lib.hubspot.sync_run import (
    DeadlineReached,
    LeaseLost,
    Mode,
    PhaseCounts,
    Progress,
    RecordFailure,
    Run,
    SyncFailure,
    SyncOptions,
)

logger = logging.getLogger(__name__)

# The cron turns one delta run a week into a full pass: HubSpot changes the watermark
# searches can miss (a contact edited while HubSpot's search index was behind for
# longer than the margin) and edits to what PostgreSQL owns are set right within a
# week. Vercel's crons take no arguments beyond the path, so the schedule is decided
# here, from the runs table.
FULL_EVERY_S = 7 * 24 * 3600
# Statuses of a run that went through every phase.
COMPLETE = frozenset({"succeeded", "partial"})

__all__ = [
    "PhaseCounts",
    "RecordFailure",
    "SyncOptions",
    "SyncResult",
    "run_once",
    "scheduled_mode",
]


@dataclass(frozen=True)
class SyncResult:
    """How a run ended. status: see sync_runs (succeeded, partial, deadline,
    daily_limit, rate_limited, failed, lease_lost, refused). errors: the first ones
    (all are in sync_run_errors); error_count: how many records failed."""

    run_id: str
    mode: Mode
    status: str
    resumed: bool
    started_at: datetime
    duration_ms: int
    phases: dict[str, PhaseCounts] = field(default_factory=dict)
    api_calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    budget_wait_ms: int = 0
    error_count: int = 0
    warning_count: int = 0
    errors: list[RecordFailure] = field(default_factory=list)
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        return data


def options_from(config: Settings) -> SyncOptions:
    return SyncOptions(
        bookings_object=config.hubspot_bookings_object,
        mock_exams_object=config.hubspot_mock_exams_object,
        attending_locations=frozenset(config.hubspot_attending_locations),
        booking_contact_association=config.hubspot_booking_contact_association,
        booking_exam_association=config.hubspot_booking_exam_association,
        create_recovery_after_s=config.sync_create_recovery_s,
        app_id=config.hubspot_app_id,
    )


def scheduled_mode() -> Mode:
    """What the cron should run now: `full` when no full pass has finished in the last
    FULL_EVERY_S, else `delta`."""
    answer = db.rpc("sync_schedule", {"p_full_every_s": FULL_EVERY_S})
    return "full" if answer.get("full_due") else "delta"


def run_once(
    mode: Mode = "delta",
    deadline: float | None = None,
    *,
    trigger: str = "manual",
    client: HubSpotClient | None = None,
    options: SyncOptions | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SyncResult:
    """Run the sync once, until done or until `deadline` (an instant of `clock`,
    time.monotonic; default: now + SYNC_TIME_BUDGET_S). Never raises for HubSpot or a
    record: the returned status says how it ended, and the next run continues whatever
    is left. Refused (status "refused", nothing done) while another run holds the
    lease. `client` defaults to one built from the settings (closed at the end);
    `progress(phase, done, total)` is told after every batch."""
    config = settings()
    options = options or options_from(config)
    if deadline is None:
        deadline = clock() + config.sync_time_budget_s
    run_id = uuid.uuid4()
    started_at = datetime.now(UTC)
    # Before the lease: a missing token must not leave a run holding it.
    own_client = client is None
    hubspot = client or HubSpotClient.from_settings(config)
    begun = db.rpc(
        "sync_begin",
        {
            "p_run_id": str(run_id),
            "p_mode": mode,
            "p_trigger": trigger,
            "p_lease_ttl_s": options.lease_ttl_s,
        },
    )
    if not begun.get("ok") or not begun["acquired"]:
        if own_client:
            hubspot.close()
        if not begun.get("ok"):
            raise SyncFailure(f"sync_begin: {begun.get('code')}: {begun.get('message')}")
        refusal = f"another run ({begun['holder']}) holds the lease until {begun['expires_at']}"
        log.event(logger, logging.WARNING, "sync refused", run_id=str(run_id), reason=refusal)
        return SyncResult(str(run_id), mode, "refused", False, started_at, 0, message=refusal)

    run = Run(
        run_id=run_id,
        mode=begun["mode"],
        resumed=bool(begun["resumed"]),
        client=hubspot,
        options=options,
        deadline=deadline,
        begun=begun,
        progress=progress,
        clock=clock,
    )
    baseline = hubspot.stats
    try:
        status, message = _work(run)
    finally:
        if own_client:
            hubspot.close()
    _finish(run, status, message)
    stats = hubspot.stats
    result = SyncResult(
        run_id=str(run_id),
        mode=run.mode,
        status=status,
        resumed=run.resumed,
        started_at=started_at,
        duration_ms=run.elapsed_ms(),
        phases=run.phases,
        api_calls=stats.calls - baseline.calls,
        rate_limited=stats.rate_limited - baseline.rate_limited,
        retries=stats.retries - baseline.retries,
        budget_wait_ms=stats.budget_wait_ms - baseline.budget_wait_ms,
        error_count=run.error_count,
        warning_count=run.warning_count,
        errors=list(run.errors),
        message=message,
    )
    log.event(
        logger,
        logging.ERROR if status in ("failed", "lease_lost") else logging.INFO,
        "sync finished",
        run_id=result.run_id,
        mode=result.mode,
        status=status,
        duration_ms=result.duration_ms,
        api_calls=result.api_calls,
        errors=result.error_count,
        detail=message,
    )
    return result


def _work(run: Run) -> tuple[str, str | None]:
    """Run the phases; (status, message) from how they ended."""
    if run.progress is not None:
        try:
            counts = db.rpc("sync_pending_counts", {"p_full": run.full})
            run.totals.update({k: int(v) for k, v in counts.items() if k != "ok"})
        except AppError:
            pass  # only the progress bar's totals
    try:
        _phases(run)
    except Exception as exc:
        for kind, status, describe in _STOPS:
            if isinstance(exc, kind):
                return status, describe(exc)
        # A bug: recorded on the run; the next run starts from the committed state.
        logger.exception("sync run %s failed", run.run_id)
        return "failed", log.mask_emails(f"{type(exc).__name__}: {exc}")
    return ("partial" if run.error_count else "succeeded"), None


def _phases(run: Run) -> None:
    from lib.hubspot.phases import bookings, contacts, credits, exams, seats

    for name, phase in (
        ("exams", exams.run),
        ("contacts", contacts.run),
        ("credits", credits.run),
        ("bookings", bookings.run),
        ("seats", seats.run),
    ):
        if run.should_run(name):
            phase(run)
            if run.full:
                run.full_position(_after(name), None)
    if run.full:
        from lib.exams import reconcile_seats

        reconcile_seats()  # Redis's seat counters from the database's, whatever they say
        run.checkpoint("full_pass", None)


def _hubspot(exc: BaseException) -> str:
    assert isinstance(exc, HubSpotError)
    return (
        f"HubSpot {exc.status} {exc.category}: {exc.message} (correlation id {exc.correlation_id})"
    )


def _database(exc: BaseException) -> str:
    assert isinstance(exc, AppError)
    return f"database: {exc.code}: {exc.message}"


# How a run that stopped early ends, by what stopped it (first match wins).
_STOPS: tuple[tuple[type[Exception], str, Callable[[BaseException], str]], ...] = (
    (DeadlineReached, "deadline", lambda e: "stopped at its time budget; the next run continues"),
    (
        HubSpotDailyLimit,
        "daily_limit",
        lambda e: f"HubSpot's daily call budget is spent; resumes once it resets ({_hubspot(e)})",
    ),
    (
        HubSpotRateLimited,
        "rate_limited",
        lambda e: f"HubSpot kept answering 429 after our waits ({_hubspot(e)})",
    ),
    (LeaseLost, "lease_lost", lambda e: f"another run took the lease; stopped writing ({e})"),
    (HubSpotError, "failed", _hubspot),
    (AppError, "failed", _database),
    (SyncFailure, "failed", lambda e: f"bug: {e}"),
)


def _after(phase: str) -> str:
    """The phase a full pass goes on with once `phase` is done ("done" after the last)."""
    from lib.hubspot.sync_run import PHASES

    index = PHASES.index(phase)
    return PHASES[index + 1] if index + 1 < len(PHASES) else "done"


def _finish(run: Run, status: str, message: str | None) -> None:
    """Record how the run ended and let the lease go. If the database cannot be reached
    now, the lease expires on its own and the next run marks this one abandoned."""
    import json

    try:
        db.rpc(
            "sync_finish",
            {
                "p_run_id": str(run.run_id),
                "p_status": status,
                "p_report": json.dumps(run.report(message), default=str),
                "p_errors": run.take_unsaved(),
            },
        )
    except AppError as exc:
        log.event(
            logger,
            logging.ERROR,
            "sync run not recorded",
            run_id=str(run.run_id),
            status=status,
            code=exc.code,
        )
        return
    _record_daily_budget(run)


def _record_daily_budget(run: Run) -> None:
    """HubSpot's daily call budget as this run last saw it (the admin dashboard's
    "nearly spent" alert). A reading lost here only delays that alert to the next run."""
    stats = run.client.stats
    if stats.daily_remaining is None and stats.daily_limit is None:
        return
    try:
        db.rpc(
            "sync_daily_budget",
            {
                "p_run_id": str(run.run_id),
                "p_daily_limit": stats.daily_limit,
                "p_daily_remaining": stats.daily_remaining,
            },
        )
    except AppError as exc:
        log.event(logger, logging.WARNING, "daily budget not recorded", code=exc.code)
