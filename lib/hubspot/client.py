"""The HubSpot CRM client: one rate budget, bounded retries, and batches that report
each record's fate.

Contract (facts in shared/reference/hubspot-api.md):

* Every request first takes a slot from a `Budget` shared by all function instances
  ("general": 190 calls per rolling 10 s; "search": 5 per second; "associations":
  150 per 10 s, HubSpot's separate budget for the v4 association endpoints, which it
  exempts from the general ten-second limit). A budget is lowered when HubSpot's
  `X-HubSpot-RateLimit-*` headers say the app may do less.
* 429: `TEN_SECONDLY_ROLLING` or `SECONDLY` -> wait for the window, then retry (a few
  times, then HubSpotRateLimited); `DAILY` -> HubSpotDailyLimit at once, so a sync run
  stops cleanly and says why.
* 5xx, timeouts and dropped connections: bounded retries with exponential backoff and
  full jitter, ONLY for requests that are safe to repeat (reads, search, upserts,
  updates, association creates). A batch CREATE that may have reached HubSpot is
  never re-sent: HubSpot has no idempotency key, so a second create duplicates;
  HubSpotUnavailable(write_may_have_applied=True) is raised instead. Write through
  `batch_upsert` keyed by our own codes wherever possible.
* Batch helpers chunk (100 objects, 2,000 associations), drop duplicate inputs (the
  last wins: HubSpot rejects a batch naming one record twice), split a 207 into
  results and per-record errors (HubSpot's message and correlation id), and split a
  whole-batch 409 in halves until the conflicting records stand alone.

Thread-safe: one client (one requests.Session, so connections are reused) may serve
every thread of a process. `requests` is imported on first use; this module imports
only the standard library, so a function's cold start does not pay for it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from lib.config import ConfigError, Settings, settings
from lib.log import mask_emails

if TYPE_CHECKING:
    import requests

    from lib.redis_client import RedisClient

log = logging.getLogger(__name__)

Kind = Literal["general", "search", "associations"]
CONTACTS = "0-1"

# Timeouts, (connect, read) on every request.
# Connect: slightly above 3 s, the first TCP SYN retransmission, so one lost SYN does
# not fail the call; a HubSpot edge that takes longer to accept is not there.
CONNECT_TIMEOUT_S = 3.05
# Read, batch and association calls: a 100-record upsert normally answers in 1-3 s;
# 30 s leaves room for HubSpot's slow tail yet bounds a dead connection to a small
# part of a sync run's time budget (Vercel's maxDuration is 300-800 s).
READ_TIMEOUT_S = 30.0
# Read, search: search answers in well under a second; 10 s is a stuck request.
SEARCH_READ_TIMEOUT_S = 10.0
# The login look-up (find_contact) runs while a student waits: 4 s per try and two
# tries bound it near 10 s, after which the login answers 503 with Retry-After.
FIND_CONTACT_READ_TIMEOUT_S = 4.0
FIND_CONTACT_ATTEMPTS = 2
# How long the login look-up may wait for the shared search budget (5 per second:
# a queue of 1-2 s means a rush; beyond that answer 503 rather than hang).
FIND_CONTACT_BUDGET_WAIT_S = 2.0

# Retries. Four tries with 0.5-1-2 s (capped 8 s) full-jitter pauses ride out a
# HubSpot blip of a few seconds ("pause a few seconds, then retry") without letting
# one call eat minutes of a run.
MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
# 429s on one call before giving up: each wait is a whole window, so five means the
# app has been over budget for most of a minute (another integration is using it).
MAX_RATE_LIMIT_WAITS = 5
# Longest wait for the shared budget before a call gives up: a full 10 s window plus
# room for a queue of instances.
MAX_BUDGET_WAIT_S = 60.0
# HubSpot's 423 Locked "will last for 2 seconds".
LOCKED_WAIT_S = 2.0
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 521, 523, 524})

# HubSpot's documented batch sizes.
BATCH_LIMIT = 100
# Reads that ask for property history: HubSpot documents that asking for it lowers how
# many records one request may return (50 for its list endpoint); batch read says no
# number, so it is kept to the documented one.
HISTORY_BATCH_LIMIT = 50
ASSOCIATION_BATCH_LIMIT = 2000
SEARCH_PAGE_LIMIT = 200

GENERAL_WINDOW_MS = 10_000
SEARCH_WINDOW_MS = 1_000
# HubSpot's association (v4) budget on Professional and Enterprise: 150 per 10 s.
ASSOCIATION_LIMIT = 150

# What the login needs to know about a contact (credits, names, exam date).
CONTACT_PROPERTIES = (
    "student_id",
    "email",
    "firstname",
    "lastname",
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
    "ndecc_exam_date",
    "hs_lastmodifieddate",
)


# ------------------------------------------------------------------ errors


class HubSpotError(Exception):
    """HubSpot refused a call, or it could not be made.

    `status` is HubSpot's HTTP status (0: no answer); `category` its error category
    (VALIDATION_ERROR, CONFLICT, RATE_LIMIT, ...); `correlation_id` the id to quote
    to HubSpot support and to record in the sync's run record."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        correlation_id: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(f"HubSpot {status} {category}: {message}")
        self.status = status
        self.category = category
        self.message = message
        self.correlation_id = correlation_id
        self.errors = list(errors)


class HubSpotUnavailable(HubSpotError):
    """HubSpot did not answer usefully (outage, 5xx, timeouts) after our retries.

    The login endpoint answers 503 with `Retry-After: retry_after_s`. When
    `write_may_have_applied`, a create may or may not exist in HubSpot now: find out
    (by a unique property) before creating again."""

    def __init__(
        self,
        status: int,
        message: str,
        correlation_id: str | None = None,
        *,
        write_may_have_applied: bool = False,
        retry_after_s: int = 10,
    ) -> None:
        super().__init__(status, "UNAVAILABLE", message, correlation_id)
        self.write_may_have_applied = write_may_have_applied
        self.retry_after_s = retry_after_s


class HubSpotDailyLimit(HubSpotError):
    """The account's daily call budget is spent (resets at midnight, account time).
    A sync run stops cleanly on this and records it."""


class HubSpotRateLimited(HubSpotError):
    """Still rate limited after waiting (the app's budget is being used elsewhere),
    or the shared budget had no slot within the call's longest wait."""


# ------------------------------------------------------------------ budgets


def _padded(window_ms: int) -> int:
    # A slot is taken just before a request leaves, but HubSpot counts it when it
    # arrives; a window 2% (at least 50 ms) longer than HubSpot's absorbs the
    # difference in network delay between two requests.
    return window_ms + max(50, window_ms // 50)


class Budget(Protocol):
    """A call budget shared by whoever holds it. Thread-safe."""

    def reserve(self, kind: Kind) -> int:
        """Take one call: 0 means go now (counted), else the milliseconds to wait
        before asking again (nothing counted)."""
        ...

    def lower(self, kind: Kind, limit: int, window_ms: int) -> None:
        """HubSpot says at most `limit` calls per `window_ms`: adopt that if it is
        less than the current budget (never raises it)."""
        ...


@dataclass
class _Limit:
    limit: int
    window_ms: int

    def lower(self, limit: int, window_ms: int) -> bool:
        if limit > 0 and window_ms > 0 and limit * self.window_ms < self.limit * window_ms:
            self.limit, self.window_ms = limit, window_ms
            return True
        return False


class LocalBudget:
    """A budget for one process (tests, the command line, or when Redis is down):
    a sliding log of call times per kind."""

    def __init__(
        self,
        *,
        general_limit: int = 190,
        general_window_ms: int = GENERAL_WINDOW_MS,
        search_limit: int = 5,
        search_window_ms: int = SEARCH_WINDOW_MS,
        association_limit: int = ASSOCIATION_LIMIT,
        association_window_ms: int = GENERAL_WINDOW_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {
            "general": _Limit(general_limit, general_window_ms),
            "search": _Limit(search_limit, search_window_ms),
            "associations": _Limit(association_limit, association_window_ms),
        }
        self._log: dict[str, deque[float]] = {kind: deque() for kind in self._limits}
        self._clock = clock
        self._lock = threading.Lock()

    def reserve(self, kind: Kind) -> int:
        with self._lock:
            limit = self._limits[kind]
            window_s = _padded(limit.window_ms) / 1000
            now = self._clock()
            calls = self._log[kind]
            while calls and calls[0] <= now - window_s:
                calls.popleft()
            if len(calls) < limit.limit:
                calls.append(now)
                return 0
            # The oldest calls leave the window first; with a lowered limit several
            # may have to leave before there is room.
            oldest = calls[len(calls) - limit.limit]
            return max(1, int((oldest + window_s - now) * 1000) + 1)

    def lower(self, kind: Kind, limit: int, window_ms: int) -> None:
        with self._lock:
            if self._limits[kind].lower(limit, window_ms):
                log.info("hubspot %s budget lowered to %d per %d ms", kind, limit, window_ms)

    def limit(self, kind: Kind) -> tuple[int, int]:
        """(calls, window in ms) as currently enforced."""
        with self._lock:
            current = self._limits[kind]
            return current.limit, current.window_ms


TakeBudget = Callable[..., int]


class RedisBudget:
    """A budget shared by every function instance: lib.redis_scripts.take_budget,
    one sliding log per kind in Redis (by Redis's clock, one round trip per call).

    When Redis cannot answer, this process falls back to a LocalBudget with the same
    limits: HubSpot's own 429s remain the safety net, and a sync should not stop
    because the fast path is down. `take` replaces take_budget (tests)."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        name: str = "hubspot",
        general_limit: int = 190,
        general_window_ms: int = GENERAL_WINDOW_MS,
        search_limit: int = 5,
        search_window_ms: int = SEARCH_WINDOW_MS,
        association_limit: int = ASSOCIATION_LIMIT,
        association_window_ms: int = GENERAL_WINDOW_MS,
        take: TakeBudget | None = None,
    ) -> None:
        self._redis = redis
        self._name = name
        self._take = take
        self._limits = {
            "general": _Limit(general_limit, general_window_ms),
            "search": _Limit(search_limit, search_window_ms),
            "associations": _Limit(association_limit, association_window_ms),
        }
        self._lock = threading.Lock()
        self._fallback = LocalBudget(
            general_limit=general_limit,
            general_window_ms=general_window_ms,
            search_limit=search_limit,
            search_window_ms=search_window_ms,
            association_limit=association_limit,
            association_window_ms=association_window_ms,
        )

    def reserve(self, kind: Kind) -> int:
        from lib.redis_client import RedisUnavailable
        from lib.redis_scripts import budget_key, take_budget

        with self._lock:
            limit = self._limits[kind].limit
            window_ms = _padded(self._limits[kind].window_ms)
        take = self._take or take_budget
        try:
            return take(
                self._redis,
                key=budget_key(f"{self._name}:{kind}"),
                limit=limit,
                window_ms=window_ms,
            )
        except RedisUnavailable as exc:
            log.warning("hubspot budget: redis unavailable (%s); using a local budget", exc)
            return self._fallback.reserve(kind)

    def lower(self, kind: Kind, limit: int, window_ms: int) -> None:
        with self._lock:
            lowered = self._limits[kind].lower(limit, window_ms)
        if lowered:
            log.info("hubspot %s budget lowered to %d per %d ms", kind, limit, window_ms)
        self._fallback.lower(kind, limit, window_ms)


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class RecordError:
    """One input HubSpot did not accept.

    `id`: the input's id (upsert, update, read) or, for a create, its
    objectWriteTraceId; None when HubSpot named no input. `status`: 207 for an entry
    of a multi-status answer, 409 or 400 for a conflict or a refused value isolated by
    splitting the batch."""

    id: str | None
    status: int
    category: str
    message: str
    correlation_id: str | None
    code: str | None = None


@dataclass
class BatchResult:
    """What a batch helper did: HubSpot's result objects, and the inputs it refused."""

    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


@dataclass(frozen=True)
class SearchPage:
    results: list[dict[str, Any]]
    total: int
    after: str | None  # pass to the next search() for the next page; None: last page


@dataclass(frozen=True)
class Stats:
    """Counters for a sync's run record."""

    calls: int  # HTTP requests sent, retries included
    rate_limited: int  # 429 answers
    retries: int  # requests sent again after a 429, 5xx, timeout or dropped connection
    splits: int  # whole-batch 409s split in two
    budget_wait_ms: int  # time spent waiting for the shared budget
    daily_remaining: int | None  # X-HubSpot-RateLimit-Daily-Remaining, last seen
    daily_limit: int | None = None  # X-HubSpot-RateLimit-Daily, last seen


@dataclass
class _Counters:
    calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    splits: int = 0
    budget_wait_ms: int = 0
    daily_remaining: int | None = None
    daily_limit: int | None = None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    correlation_id: str | None


# ------------------------------------------------------------------ the client


class HubSpotClient:
    """HubSpot's CRM API over one requests.Session. See the module docstring."""

    def __init__(
        self,
        token: str,
        base_url: str = "https://api.hubapi.com",
        *,
        budget: Budget | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        search_read_timeout_s: float = SEARCH_READ_TIMEOUT_S,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        max_rate_limit_waits: int = MAX_RATE_LIMIT_WAITS,
        max_budget_wait_s: float = MAX_BUDGET_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        if not token:
            raise ConfigError("HUBSPOT_ACCESS_TOKEN is not set")
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._budget: Budget = budget if budget is not None else LocalBudget()
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._search_read_timeout_s = search_read_timeout_s
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._max_rate_limit_waits = max_rate_limit_waits
        self._max_budget_wait_s = max_budget_wait_s
        self._sleep = sleep
        # Jitter only: spreads retries of many instances apart; not a secret.
        self._random = random.Random(seed)  # noqa: S311
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._counters = _Counters()

    @classmethod
    def from_settings(
        cls, config: Settings | None = None, *, budget: Budget | None = None
    ) -> HubSpotClient:
        """The client the configuration describes. Without a budget: one shared
        through Redis when Redis is configured, else a budget for this process."""
        config = config or settings()
        if not config.hubspot_access_token:
            raise ConfigError("HUBSPOT_ACCESS_TOKEN is not set")
        if budget is None:
            from lib.redis_client import from_settings as redis_from_settings

            redis = redis_from_settings(config)
            general, search = config.hubspot_rate_limit_per_10s, config.hubspot_search_per_s
            associations = config.hubspot_associations_per_10s
            budget = (
                RedisBudget(
                    redis,
                    general_limit=general,
                    search_limit=search,
                    association_limit=associations,
                )
                if redis
                else LocalBudget(
                    general_limit=general, search_limit=search, association_limit=associations
                )
            )
        return cls(config.hubspot_access_token, config.hubspot_base_url, budget=budget)

    # ---- counters and lifetime

    @property
    def stats(self) -> Stats:
        with self._lock:
            c = self._counters
            return Stats(
                c.calls,
                c.rate_limited,
                c.retries,
                c.splits,
                c.budget_wait_ms,
                c.daily_remaining,
                c.daily_limit,
            )

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self._counters, name, getattr(self._counters, name) + amount)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def _http(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                import requests
                from requests.adapters import HTTPAdapter

                session = requests.Session()
                # No urllib3 retries: this class decides what may be repeated. A pool
                # as large as the threads a function instance runs keeps them from
                # queueing for a connection.
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=16, max_retries=0)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers.update(
                    {
                        "Authorization": f"Bearer {self._token}",
                        "Accept": "application/json",
                        "User-Agent": "mock-exam-booking/1 (+requests)",
                    }
                )
                self._session = session
            return self._session

    # ---- one request

    def _take_budget(self, kind: Kind, max_wait_s: float) -> None:
        waited_ms = 0
        while (wait_ms := self._budget.reserve(kind)) > 0:
            if (waited_ms + wait_ms) / 1000 > max_wait_s:
                self._count("budget_wait_ms", waited_ms)
                raise HubSpotRateLimited(
                    429, "RATE_LIMIT", f"no {kind} budget within {max_wait_s:.0f} s"
                )
            self._sleep(wait_ms / 1000)
            waited_ms += wait_ms
        if waited_ms:
            self._count("budget_wait_ms", waited_ms)

    def _backoff(self, failures: int) -> float:
        # Full jitter (uniform from 0 to the exponential cap): retries from many
        # instances do not arrive together.
        cap = min(self._backoff_cap_s, self._backoff_base_s * 2 ** (failures - 1))
        return self._random.uniform(0, cap)

    def _request(
        self,
        method: str,
        path: str,
        *,
        kind: Kind = "general",
        retry_safe: bool,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        read_timeout_s: float | None = None,
        attempts: int | None = None,
        max_budget_wait_s: float | None = None,
    ) -> _Answer:
        """Send one API call with budget, 429 waits and (if retry_safe) retries.
        Returns any answer that is not a 429 or a retried failure."""
        import requests

        attempts = attempts or self._max_attempts
        timeout = (
            self._connect_timeout_s,
            read_timeout_s
            or (self._search_read_timeout_s if kind == "search" else self._read_timeout_s),
        )
        failures = rate_waits = 0
        while True:
            self._take_budget(kind, max_budget_wait_s or self._max_budget_wait_s)
            self._count("calls")
            try:
                response = self._http().request(
                    method, self._base_url + path, json=body, params=params, timeout=timeout
                )
            except requests.RequestException as exc:
                sent = not _never_sent(exc)
                if (sent and not retry_safe) or failures + 1 >= attempts:
                    raise HubSpotUnavailable(
                        0,
                        f"{method} {path}: {type(exc).__name__} after {failures + 1} tries",
                        write_may_have_applied=sent and not retry_safe,
                    ) from exc
                failures += 1
                self._count("retries")
                self._sleep(self._backoff(failures))
                continue
            answer = _answer(response)
            self._observe(path, kind, response)
            if answer.status == 429:
                rate_waits += 1
                self._count("rate_limited")
                wait_s = self._rate_limit_wait(answer, response, kind, rate_waits)
                self._count("retries")
                self._sleep(wait_s)
                continue
            if answer.status in RETRYABLE_STATUSES or answer.status in (423, 477):
                if not retry_safe or failures + 1 >= attempts:
                    raise HubSpotUnavailable(
                        answer.status,
                        f"{method} {path}: {_message(answer)}",
                        answer.correlation_id,
                        write_may_have_applied=not retry_safe,
                    )
                failures += 1
                self._count("retries")
                self._sleep(self._failure_wait(answer, response, failures))
                continue
            return answer

    def _rate_limit_wait(
        self, answer: _Answer, response: requests.Response, kind: Kind, waits: int
    ) -> float:
        body = answer.body if isinstance(answer.body, dict) else {}
        policy = str(body.get("policyName") or "")
        message = mask_emails(str(body.get("message") or "rate limited"))
        if policy == "DAILY":
            raise HubSpotDailyLimit(429, "RATE_LIMIT", message, answer.correlation_id)
        if waits > self._max_rate_limit_waits:
            raise HubSpotRateLimited(429, "RATE_LIMIT", message, answer.correlation_id)
        retry_after = _number(response.headers.get("Retry-After"))
        if retry_after is not None:
            wait_s = retry_after
        elif policy == "SECONDLY" or kind == "search":
            wait_s = SEARCH_WINDOW_MS / 1000
        else:
            # A rolling window: after one whole interval every counted call has left.
            interval = _number(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
            wait_s = (interval or GENERAL_WINDOW_MS) / 1000
        # Up to 10% more, so instances told to wait together do not return together.
        return wait_s * (1 + self._random.random() / 10)

    def _failure_wait(self, answer: _Answer, response: requests.Response, failures: int) -> float:
        retry_after = _number(response.headers.get("Retry-After"))
        if answer.status == 477 and retry_after is not None:
            return retry_after
        if answer.status == 423:
            return max(LOCKED_WAIT_S, self._backoff(failures))
        return self._backoff(failures)

    def _observe(self, path: str, kind: Kind, response: requests.Response) -> None:
        headers = response.headers
        daily = _number(headers.get("X-HubSpot-RateLimit-Daily-Remaining"))
        daily_limit = _number(headers.get("X-HubSpot-RateLimit-Daily"))
        if daily is not None or daily_limit is not None:
            with self._lock:
                if daily is not None:
                    self._counters.daily_remaining = int(daily)
                if daily_limit is not None:
                    self._counters.daily_limit = int(daily_limit)
        # Search answers carry no rate headers; association answers describe the
        # association budget, every other answer the general one.
        if kind == "search":
            return
        limit = _number(headers.get("X-HubSpot-RateLimit-Max"))
        interval = _number(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        if limit and interval:
            self._budget.lower(kind, int(limit), int(interval))

    # ---- batches

    def _chunk(
        self,
        path: str,
        inputs: list[dict[str, Any]],
        wrap: Callable[[list[dict[str, Any]]], dict[str, Any]],
        ids: Callable[[Mapping[str, Any]], str | None],
        *,
        retry_safe: bool,
        result: BatchResult,
        kind: Kind = "general",
    ) -> None:
        """Send one chunk; split it in halves when HubSpot refuses it whole for what one
        of its records holds: a 409 (a unique value taken), or a 400 naming a property
        (a value outside an enumeration's options, a read-only property). HubSpot
        answers per record (207) only for batch create; an update or upsert with one
        bad record fails whole, and without the split that record would block its
        neighbours on every run. The halves go on until the bad records stand alone,
        each then reported as a RecordError; the rest are written in the same call."""
        answer = self._request("POST", path, kind=kind, body=wrap(inputs), retry_safe=retry_safe)
        if answer.status == 409 or _refuses_a_value(answer):
            if len(inputs) == 1:
                result.errors.append(
                    RecordError(
                        ids(inputs[0]),
                        answer.status,
                        _category(answer.body) if answer.status == 400 else "CONFLICT",
                        _message(answer),
                        answer.correlation_id,
                        _code(answer.body),
                    )
                )
                return
            self._count("splits")
            middle = len(inputs) // 2
            for half in (inputs[:middle], inputs[middle:]):
                self._chunk(path, half, wrap, ids, retry_safe=retry_safe, result=result, kind=kind)
            return
        if answer.status not in (200, 201, 207) or not isinstance(answer.body, dict):
            raise HubSpotError(
                answer.status,
                _category(answer.body),
                _message(answer),
                answer.correlation_id,
                errors=_details(answer.body),
            )
        result.results.extend(answer.body.get("results") or [])
        traces = {str(i.get("objectWriteTraceId")): ids(i) for i in inputs}
        for item in answer.body.get("errors") or []:
            result.errors.extend(_record_errors(item, traces, answer.correlation_id))

    def _batches(
        self,
        path: str,
        inputs: list[dict[str, Any]],
        wrap: Callable[[list[dict[str, Any]]], dict[str, Any]],
        ids: Callable[[Mapping[str, Any]], str | None],
        *,
        size: int,
        retry_safe: bool,
        kind: Kind = "general",
    ) -> BatchResult:
        result = BatchResult()
        for start in range(0, len(inputs), size):
            chunk = inputs[start : start + size]
            self._chunk(path, chunk, wrap, ids, retry_safe=retry_safe, result=result, kind=kind)
        return result

    def batch_upsert(
        self, object_type: str, inputs: Iterable[Mapping[str, Any]], id_property: str
    ) -> BatchResult:
        """Create or update by a unique-value property (`email` for contacts).

        Each input: {"id": <id_property value>, "properties": {...}}. Safe to retry, so
        it is retried: this is how records are written without duplicates. Results
        carry `new` (created or updated); input ids double as objectWriteTraceIds."""
        prepared = []
        for item in _last_wins(inputs, lambda i: _key(id_property, i["id"])):
            prepared.append(
                {
                    "id": str(item["id"]),
                    "idProperty": id_property,
                    "properties": _strings(item.get("properties", {})),
                    "objectWriteTraceId": str(item.get("objectWriteTraceId") or item["id"]),
                }
            )
        return self._batches(
            f"/crm/v3/objects/{object_type}/batch/upsert",
            prepared,
            lambda chunk: {"inputs": chunk},
            lambda i: str(i["id"]),
            size=BATCH_LIMIT,
            retry_safe=True,
        )

    def batch_update(
        self,
        object_type: str,
        inputs: Iterable[Mapping[str, Any]],
        id_property: str | None = None,
    ) -> BatchResult:
        """Update existing records: {"id": <record id or id_property value>,
        "properties": {...}}. Missing records come back as OBJECT_NOT_FOUND errors."""
        prepared = []
        for item in _last_wins(inputs, lambda i: str(i["id"])):
            entry: dict[str, Any] = {
                "id": str(item["id"]),
                "properties": _strings(item.get("properties", {})),
                "objectWriteTraceId": str(item.get("objectWriteTraceId") or item["id"]),
            }
            if id_property:
                entry["idProperty"] = id_property
            prepared.append(entry)
        return self._batches(
            f"/crm/v3/objects/{object_type}/batch/update",
            prepared,
            lambda chunk: {"inputs": chunk},
            lambda i: str(i["id"]),
            size=BATCH_LIMIT,
            retry_safe=True,
        )

    def batch_read(
        self,
        object_type: str,
        ids: Iterable[str],
        properties: Sequence[str],
        id_property: str | None = None,
        with_history: Sequence[str] = (),
    ) -> BatchResult:
        """Read records by id (or a unique property); not-found ids are errors.
        `with_history`: properties whose changes come back too, in each result's
        `propertiesWithHistory` ({name: [{value, timestamp, sourceType, sourceId, ...}],
        newest first})."""
        prepared = [{"id": i} for i in dict.fromkeys(str(i) for i in ids)]

        def wrap(chunk: list[dict[str, Any]]) -> dict[str, Any]:
            body: dict[str, Any] = {"inputs": chunk, "properties": list(properties)}
            if with_history:
                body["propertiesWithHistory"] = list(with_history)
            if id_property:
                body["idProperty"] = id_property
            return body

        return self._batches(
            f"/crm/v3/objects/{object_type}/batch/read",
            prepared,
            wrap,
            lambda i: str(i["id"]),
            size=HISTORY_BATCH_LIMIT if with_history else BATCH_LIMIT,
            retry_safe=True,
        )

    def batch_create(self, object_type: str, inputs: Iterable[Mapping[str, Any]]) -> BatchResult:
        """Create records: {"properties": {...}, "associations"?: [...],
        "objectWriteTraceId"?: ...}. NOT retried after it may have reached HubSpot
        (raises HubSpotUnavailable(write_may_have_applied=True)): prefer batch_upsert.
        Inputs without a trace id get their position as one, so failures are per
        record (207) rather than the whole batch."""
        prepared = []
        for position, item in enumerate(inputs):
            entry: dict[str, Any] = {
                "properties": _strings(item.get("properties", {})),
                "objectWriteTraceId": str(item.get("objectWriteTraceId") or position),
            }
            if item.get("associations"):
                entry["associations"] = list(item["associations"])
            prepared.append(entry)
        return self._batches(
            f"/crm/v3/objects/{object_type}/batch/create",
            prepared,
            lambda chunk: {"inputs": chunk},
            lambda i: str(i["objectWriteTraceId"]),
            size=BATCH_LIMIT,
            retry_safe=False,
        )

    def associate_default(
        self, from_type: str, to_type: str, pairs: Iterable[tuple[str, str]]
    ) -> BatchResult:
        """Link (from id, to id) pairs with the default association type. Creating
        an existing association is harmless, so this is retried."""
        prepared = [
            {"from": {"id": f}, "to": {"id": t}}
            for f, t in dict.fromkeys((str(f), str(t)) for f, t in pairs)
        ]
        return self._batches(
            f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default",
            prepared,
            lambda chunk: {"inputs": chunk},
            _pair_id,
            size=ASSOCIATION_BATCH_LIMIT,
            retry_safe=True,
            kind="associations",
        )

    def create_associations(
        self,
        from_type: str,
        to_type: str,
        links: Iterable[tuple[str, str, int]],
        category: str = "USER_DEFINED",
    ) -> BatchResult:
        """Link (from id, to id, association type id) with labelled types; the type
        ids are per portal (association_labels). One input per pair."""
        grouped: dict[tuple[str, str], list[int]] = {}
        for from_id, to_id, type_id in links:
            types = grouped.setdefault((str(from_id), str(to_id)), [])
            if type_id not in types:
                types.append(type_id)
        prepared = [
            {
                "from": {"id": f},
                "to": {"id": t},
                "types": [
                    {"associationCategory": category, "associationTypeId": type_id}
                    for type_id in types
                ],
            }
            for (f, t), types in grouped.items()
        ]
        return self._batches(
            f"/crm/v4/associations/{from_type}/{to_type}/batch/create",
            prepared,
            lambda chunk: {"inputs": chunk},
            _pair_id,
            size=ASSOCIATION_BATCH_LIMIT,
            retry_safe=True,
            kind="associations",
        )

    def association_labels(self, from_type: str, to_type: str) -> list[dict[str, Any]]:
        """The association types between two object types: [{category, typeId,
        label}] (label None for the default one)."""
        answer = self._request(
            "GET",
            f"/crm/v4/associations/{from_type}/{to_type}/labels",
            kind="associations",
            retry_safe=True,
        )
        return list(_ok(answer).get("results") or [])

    # ---- single records and search

    def get(
        self,
        object_type: str,
        record_id: str,
        properties: Sequence[str] = (),
        id_property: str | None = None,
    ) -> dict[str, Any] | None:
        """One record, or None when HubSpot has no such record."""
        params = {"properties": ",".join(properties)} if properties else {}
        if id_property:
            params["idProperty"] = id_property
        answer = self._request(
            "GET", f"/crm/v3/objects/{object_type}/{record_id}", params=params, retry_safe=True
        )
        if answer.status == 404:
            return None
        return _ok(answer)

    def search(
        self,
        object_type: str,
        filter_groups: Sequence[Mapping[str, Any]],
        properties: Sequence[str],
        limit: int = 100,
        after: str | None = None,
        sorts: Sequence[Mapping[str, str]] = (),
    ) -> SearchPage:
        """One page of a CRM search. Search lags writes by seconds: never use it to
        decide whether to create (upsert instead)."""
        if not 0 < limit <= SEARCH_PAGE_LIMIT:
            raise ValueError(f"limit must be 1..{SEARCH_PAGE_LIMIT}")
        body: dict[str, Any] = {
            "filterGroups": [dict(g) for g in filter_groups],
            "properties": list(properties),
            "limit": limit,
        }
        if after:
            body["after"] = after
        if sorts:
            body["sorts"] = [dict(s) for s in sorts]
        return self._search(object_type, body)

    def _search(
        self,
        object_type: str,
        body: dict[str, Any],
        *,
        read_timeout_s: float | None = None,
        attempts: int | None = None,
        max_budget_wait_s: float | None = None,
    ) -> SearchPage:
        answer = self._request(
            "POST",
            f"/crm/v3/objects/{object_type}/search",
            kind="search",
            retry_safe=True,
            body=body,
            read_timeout_s=read_timeout_s,
            attempts=attempts,
            max_budget_wait_s=max_budget_wait_s,
        )
        data = _ok(answer)
        after = ((data.get("paging") or {}).get("next") or {}).get("after")
        return SearchPage(list(data.get("results") or []), int(data.get("total") or 0), after)

    def find_contact(self, student_id: str, email: str) -> dict[str, Any] | None:
        """The contact with this student_id AND email (the login look-up), with its
        credit properties; None when HubSpot has none. Bounded for a waiting student:
        raises HubSpotUnavailable / HubSpotRateLimited rather than hang."""
        page = self._search(
            CONTACTS,
            {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "student_id", "operator": "EQ", "value": student_id},
                            {
                                "propertyName": "email",
                                "operator": "EQ",
                                # HubSpot keeps emails lower-case.
                                "value": email.strip().lower(),
                            },
                        ]
                    }
                ],
                "properties": list(CONTACT_PROPERTIES),
                # Two would mean a duplicate contact in HubSpot; the oldest wins.
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "limit": 2,
            },
            read_timeout_s=FIND_CONTACT_READ_TIMEOUT_S,
            attempts=FIND_CONTACT_ATTEMPTS,
            max_budget_wait_s=FIND_CONTACT_BUDGET_WAIT_S,
        )
        return page.results[0] if page.results else None


# ------------------------------------------------------------------ helpers


def _never_sent(exc: Exception) -> bool:
    """The request cannot have reached HubSpot (no connection was made), so even a
    create may be sent again."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _answer(response: requests.Response) -> _Answer:
    try:
        body: Any = response.json() if response.content else None
    except ValueError:
        body = None
    correlation = body.get("correlationId") if isinstance(body, dict) else None
    return _Answer(
        response.status_code,
        body,
        correlation or response.headers.get("X-HubSpot-Correlation-Id"),
    )


def _ok(answer: _Answer) -> dict[str, Any]:
    if answer.status >= 300 or not isinstance(answer.body, dict):
        raise HubSpotError(
            answer.status,
            _category(answer.body),
            _message(answer),
            answer.correlation_id,
            errors=_details(answer.body),
        )
    return answer.body


def _message(answer: _Answer) -> str:
    """HubSpot's message, emails masked: a 409's message quotes the conflicting email,
    and this text is logged, stored in sync_run_errors and shown on the dashboard."""
    if isinstance(answer.body, dict) and answer.body.get("message"):
        return mask_emails(str(answer.body["message"]))
    return f"HTTP {answer.status}"


def _category(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("category") or body.get("errorType") or "UNKNOWN")
    return "UNKNOWN"


def _refuses_a_value(answer: _Answer) -> bool:
    """A whole-batch 400 that names a property: one record's value was refused (a
    request-shape error names none, and splitting it would only repeat it)."""
    return answer.status == 400 and any(
        isinstance(detail.get("context"), dict) and detail["context"].get("propertyName")
        for detail in _details(answer.body)
    )


def _details(body: Any) -> list[Mapping[str, Any]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _code(body: Any) -> str | None:
    for detail in _details(body):
        if detail.get("code"):
            return str(detail["code"])
    return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _record_errors(
    item: Mapping[str, Any], traces: Mapping[str, str | None], correlation_id: str | None
) -> Iterator[RecordError]:
    """One RecordError per input a 207 error entry names."""
    context = item.get("context") or {}
    if context.get("objectWriteTraceId"):
        named = [traces.get(str(t), str(t)) for t in context["objectWriteTraceId"]]
    elif context.get("ids"):
        named = [str(i) for i in context["ids"]]
    elif context.get("from") and context.get("to"):
        named = [f"{context['from'][0]}:{context['to'][0]}"]
    else:
        named = [None]
    for record_id in named:
        yield RecordError(
            record_id,
            207,
            str(item.get("category") or "UNKNOWN"),
            mask_emails(str(item.get("message") or "")),
            correlation_id,
            _code(item),
        )


def _pair_id(item: Mapping[str, Any]) -> str:
    return f"{item['from']['id']}:{item['to']['id']}"


def _key(id_property: str, value: Any) -> str:
    # HubSpot matches emails without regard to case: two spellings are one record.
    return str(value).lower() if id_property == "email" else str(value)


def _last_wins(
    inputs: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], str]
) -> list[Mapping[str, Any]]:
    """Inputs with one per key: HubSpot rejects a whole batch naming a record twice,
    and the latest change is the one to keep."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for item in inputs:
        k = key(item)
        chosen.pop(k, None)  # re-inserted: the survivor takes the later position
        chosen[k] = item
    return list(chosen.values())


def _strings(properties: Mapping[str, Any]) -> dict[str, str]:
    """Property values as HubSpot carries them: strings ("" clears a value)."""
    out: dict[str, str] = {}
    for name, value in properties.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif value is None:
            out[name] = ""
        else:
            out[name] = str(value)
    return out
