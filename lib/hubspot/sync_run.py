"""One sync run's state while it works: its counts, failed records, time budget,
checkpoints and the database calls that carry them (each renews the lease).

The phases (lib/hubspot/phases/) work through `Run`; lib/hubspot/sync.py creates it
and turns how it stopped into the run's status.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lib import db
from lib.errors import AppError
from lib.log import mask_emails

if TYPE_CHECKING:
    from lib.hubspot.client import HubSpotClient, RecordError

log = logging.getLogger(__name__)

Mode = Literal["delta", "full"]
# The order of a pass: exam definitions first (bookings name exams); contacts before
# credits and bookings (both need the contact's HubSpot id); seat counts last (the
# bookings phase cannot change them, but a pass should end with HubSpot told the
# latest counts).
PHASES = ("exams", "contacts", "credits", "bookings", "seats")
# The run row keeps the first errors for the dashboard's summary; every one of them is
# a row of sync_run_errors.
ERROR_SAMPLE = 50

# HubSpot's documented batch limits: 100 records per object call, 2,000 pairs per
# association call. Bookings are pushed in groups of 2,000 (20 upserts, then one
# association call per target type), which is what keeps the booking phase near
# 1/100 + 2/2000 = 0.011 calls per booking.
BATCH_SIZE = 100
ASSOCIATION_GROUP = 2000
# Renewed with every batch. 360 s: longer than Vercel's 300 s maxDuration, so a cron
# run never outlives its lease, and longer than the worst gap between two renewals of
# a longer command-line run (one HubSpot call with all its retries and 429 waits,
# ~3 min). A crashed run blocks the next for at most 6 minutes, against a 2-hour
# schedule.
LEASE_TTL_S = 360
# HubSpot's search index lags writes by "a few moments". A watermark never advances
# past (search start - 5 min), so a record modified just before a search but not yet
# indexed is found by the next one: two orders of magnitude above the lag and the
# clock skew between HubSpot and us, and it costs only re-reading (not re-writing) what
# changed in the last 5 minutes.
SEARCH_MARGIN_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class SyncOptions:
    """Sizes and times of a run. Defaults are production's; tests shrink them."""

    batch_size: int = BATCH_SIZE
    association_group: int = ASSOCIATION_GROUP
    lease_ttl_s: int = LEASE_TTL_S
    search_margin_ms: int = SEARCH_MARGIN_MS
    bookings_object: str = "2-50158943"
    mock_exams_object: str = "2-50158913"
    # The portal's options for the booking enumeration attending_location: a value
    # outside them is recorded as the booking's error and not sent (HubSpot would
    # refuse the whole batch). Settings.hubspot_attending_locations in production.
    attending_locations: frozenset[str] = frozenset(
        {"Mississauga", "Calgary", "Vancouver", "Montreal", "Richmond Hill", "Online"}
    )
    # Labelled association types of the portal (Settings.hubspot_booking_*_association).
    booking_contact_association: int = 1289
    booking_exam_association: int = 1291
    # A create whose answer was lost is looked for (search by idempotency_key) from the
    # next run on; not found, it is created again only once it was sent this long ago:
    # HubSpot's search shows a new record seconds after its create, never at once.
    create_recovery_after_s: int = 300
    # The sync's app id in HubSpot's property history (Settings.hubspot_app_id): the
    # credit merge leaves changes it made out of "what changed in HubSpot". None: the
    # credit phase records a configuration error and does nothing.
    app_id: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{BATCH_SIZE}")
        if not self.batch_size <= self.association_group <= ASSOCIATION_GROUP:
            raise ValueError(f"association_group must be batch_size..{ASSOCIATION_GROUP}")


@dataclass
class PhaseCounts:
    """What one phase did. created/updated: records written (on either side);
    unchanged: looked at, nothing to do; failed: could not go through (see errors)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    calls: int = 0  # HubSpot requests, retries included
    duration_ms: int = 0

    @property
    def done(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed


@dataclass(frozen=True)
class RecordFailure:
    """A record a run could not bring across, or (severity "warning") brought across
    but wants a person to look at."""

    phase: str
    record_id: str | None
    category: str
    message: str
    hubspot_id: str | None = None
    correlation_id: str | None = None
    severity: str = "error"


class DeadlineReached(Exception):
    """The run's time budget is spent: stop after the batch in hand."""


class LeaseLost(Exception):
    """Another run took the lease (this one was presumed dead): stop writing at once."""


class SyncFailure(Exception):
    """A sync call answered something no run should ever see (a bug)."""


Progress = Callable[[str, int, int | None], None]


@dataclass
class Run:
    """A run in progress. Not thread-safe: a run is one loop."""

    run_id: uuid.UUID
    mode: Mode
    resumed: bool
    client: HubSpotClient
    options: SyncOptions
    deadline: float
    begun: dict[str, Any]
    progress: Progress | None = None
    # What the deadline is measured by (tests move it by hand).
    clock: Callable[[], float] = time.monotonic
    totals: dict[str, int] = field(default_factory=dict)
    phases: dict[str, PhaseCounts] = field(default_factory=dict)
    errors: list[RecordFailure] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0
    started: float = 0.0
    _unsaved: list[RecordFailure] = field(default_factory=list)
    _current: str | None = None

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def full(self) -> bool:
        return self.mode == "full"

    def elapsed_ms(self) -> int:
        return int((self.clock() - self.started) * 1000)

    # ---- database calls

    def rpc(self, name: str, **params: Any) -> dict[str, Any]:
        """Call a sync function; a lost lease raises LeaseLost, any other rejection
        SyncFailure (the sync builds its own inputs, so a rejection is a bug)."""
        answer = db.rpc(name, {f"p_{key}": value for key, value in params.items()})
        if not answer.get("ok"):
            if answer.get("code") == "SYNC_LEASE_LOST":
                raise LeaseLost(str(answer.get("message")))
            raise SyncFailure(f"{name}: {answer.get('code')}: {answer.get('message')}")
        return answer

    def items(self, values: Sequence[Any]) -> str:
        """A list of records as the functions' p_items parameter."""
        return json.dumps(values, separators=(",", ":"), default=str)

    # ---- phases

    @contextmanager
    def phase(self, name: str) -> Iterator[PhaseCounts]:
        counts = self.phases.setdefault(name, PhaseCounts())
        calls_before = self.client.stats.calls
        started = self.clock()
        self._current = name
        try:
            yield counts
        finally:
            counts.calls += self.client.stats.calls - calls_before
            counts.duration_ms += int((self.clock() - started) * 1000)

    def counts(self) -> PhaseCounts:
        assert self._current is not None, "outside a phase"
        return self.phases[self._current]

    def should_run(self, phase: str) -> bool:
        """A resumed full pass skips the phases it finished before it stopped."""
        full_pass = self.begun.get("full_pass")
        if not self.full or not full_pass:
            return True
        at = str(full_pass.get("phase") or PHASES[0])
        # "done": every phase finished, only the pass's last steps were left.
        return at in PHASES and PHASES.index(phase) >= PHASES.index(at)

    def resume_after(self, phase: str) -> str | None:
        """Where a resumed full pass stopped within this phase (the last id done)."""
        full_pass = self.begun.get("full_pass")
        if self.full and full_pass and full_pass.get("phase") == phase:
            after = full_pass.get("after")
            return str(after) if after else None
        return None

    def full_position(self, phase: str, after: str | None) -> None:
        """Checkpoint a full pass: `phase` is under way, done up to `after`."""
        if self.full:
            self.checkpoint("full_pass", {"phase": phase, "after": after})

    def checkpoint(self, key: str, value: Any) -> None:
        self.rpc(
            "sync_checkpoint",
            run_id=str(self.run_id),
            key=key,
            value=None if value is None else json.dumps(value),
        )

    # ---- time

    def past_deadline(self) -> bool:
        return self.clock() >= self.deadline

    def check_deadline(self) -> None:
        if self.past_deadline():
            raise DeadlineReached

    # ---- failures

    def fail(
        self,
        record_id: str | None,
        category: str,
        message: str,
        *,
        hubspot_id: str | None = None,
        correlation_id: str | None = None,
        severity: str = "error",
    ) -> None:
        """Record one record's failure (counted in the current phase) or warning.
        Emails in `message` are masked: it is logged and stored."""
        assert self._current is not None, "outside a phase"
        failure = RecordFailure(
            self._current,
            record_id,
            category,
            mask_emails(message),
            hubspot_id,
            correlation_id,
            severity,
        )
        if severity == "error":
            self.phases[self._current].failed += 1
            self.error_count += 1
        else:
            self.warning_count += 1
        if len(self.errors) < ERROR_SAMPLE:
            self.errors.append(failure)
            # The first ones are logged too; all of them are in sync_run_errors (a
            # systemic failure must not flood the logs with thousands of lines).
            log.warning(
                "sync %s: %s %s: %s",
                self._current,
                category,
                record_id or hubspot_id,
                failure.message,
            )
        self._unsaved.append(failure)

    def refused(self, record_id: str | None, error: RecordError, hubspot_id: str | None) -> None:
        """HubSpot refused one record (a 207 entry or an isolated 409)."""
        category = error.code or error.category
        self.fail(
            record_id,
            category,
            error.message,
            hubspot_id=hubspot_id,
            correlation_id=error.correlation_id,
        )

    # ---- reporting

    def report(self, message: str | None = None) -> dict[str, Any]:
        stats = self.client.stats
        report: dict[str, Any] = {
            "phases": {name: asdict(counts) for name, counts in self.phases.items()},
            "api_calls": stats.calls,
            "rate_limited": stats.rate_limited,
            "retries": stats.retries,
            "budget_wait_ms": stats.budget_wait_ms,
            "error_count": self.error_count,
            "errors": [asdict(e) for e in self.errors],
        }
        if message is not None:
            report["message"] = message
        return report

    def take_unsaved(self) -> str | None:
        unsaved, self._unsaved = self._unsaved, []
        return self.items([asdict(e) for e in unsaved]) if unsaved else None

    def batch_done(self) -> None:
        """After every batch: renew the lease, save the failed records and counts so far
        (one call), tell the progress bar."""
        errors = self._unsaved
        self._unsaved = []
        try:
            self.rpc(
                "sync_progress",
                run_id=str(self.run_id),
                report=json.dumps(self.report(), default=str),
                errors=self.items([asdict(e) for e in errors]) if errors else None,
            )
        except (LeaseLost, SyncFailure, AppError):
            self._unsaved = errors + self._unsaved  # sync_finish records them
            raise
        if self.progress is not None and self._current is not None:
            counts = self.phases[self._current]
            self.progress(self._current, counts.done, self.totals.get(self._current))
