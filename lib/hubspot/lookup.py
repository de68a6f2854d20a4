"""The one HubSpot call a student can ever wait on: the contact search at a first
login (PostgreSQL did not know the student). Bounded: HubSpot trouble becomes a
clean 503 HUBSPOT_UNAVAILABLE with Retry-After, never a hang; search calls share the
5-per-second budget of the account through Redis (lib.hubspot.client.RedisBudget).

Anyone can ask for a login with made-up details, and each unknown pair would cost a
search of the school's account (5/s, shared with the sync; a daily quota). So, in
Redis, shared by every instance:
  * a miss is remembered for MISS_TTL_S: the same pair asked again costs nothing;
  * each client address may make LOOKUPS_PER_CLIENT look-ups that reach HubSpot per
    LOOKUP_WINDOW_S (far below the login limit); beyond that, 429 with Retry-After;
  * all look-ups together use at most HUBSPOT_LOOKUP_SEARCH_PER_S of the account's
    searches per second: the rest is kept for the sync's own searches.
Without Redis none of this holds (as for every rate limit here): the look-up goes to
HubSpot, whose own 429s still bound it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from lib import log
from lib.config import settings
from lib.errors import AppError

if TYPE_CHECKING:
    from lib.hubspot.client import HubSpotClient

logger = logging.getLogger(__name__)

# A student told "not found" who is then enrolled in HubSpot waits at most this long
# before a login finds them; a flood repeating one pair costs one search per this.
MISS_TTL_S = 300
# Look-ups reaching HubSpot per client address per window: a class behind one campus
# address has few HubSpot-only students (most were migrated with the database), and
# each looks up once; a script inventing pairs is stopped after these.
LOOKUPS_PER_CLIENT = 10
LOOKUP_WINDOW_S = 600
# How long a look-up waits for the look-ups' share of the search budget: a few
# students arriving in the same second get their turn in the next.
SHARE_WAIT_S = 2.5
_SHARE_WINDOW_MS = 1000

_client: HubSpotClient | None = None
_lock = threading.Lock()


def client() -> HubSpotClient | None:
    """The process-wide client, or None when no HubSpot token is configured."""
    global _client  # noqa: PLW0603 - one connection pool per process
    if _client is None and settings().hubspot_access_token:
        with _lock:
            if _client is None:
                from lib.hubspot.client import HubSpotClient

                _client = HubSpotClient.from_settings()
    return _client


def use_client(replacement: HubSpotClient | None) -> HubSpotClient | None:
    """Swap the process-wide client (tests). Returns the old one."""
    global _client
    with _lock:
        previous, _client = _client, replacement
    return previous


def find_contact(student_id: str, email: str, client_id: str) -> dict[str, Any] | None:
    """The HubSpot contact with this student_id and email, or None. Raises
    AppError(RATE_LIMITED) when `client_id` has used its look-ups, and
    AppError(HUBSPOT_UNAVAILABLE) when HubSpot cannot answer in time."""
    from lib.hubspot.client import HubSpotError

    hubspot = client()
    if hubspot is None:
        log.event(logger, logging.WARNING, "hubspot not configured; unknown student not looked up")
        return None
    if _remembered_miss(student_id, email):
        return None
    _admit(client_id)
    try:
        found = hubspot.find_contact(student_id, email)
    except HubSpotError as exc:
        # Outage, rate limit, daily budget or a configuration problem (401): the
        # student can do nothing about any of them but retry later.
        log.event(
            logger,
            logging.ERROR,
            "hubspot contact search failed",
            error=type(exc).__name__,
            status=getattr(exc, "status", None),
            correlation_id=getattr(exc, "correlation_id", None),
        )
        raise AppError("HUBSPOT_UNAVAILABLE") from exc
    if found is None:
        _remember_miss(student_id, email)
    return found


def _remembered_miss(student_id: str, email: str) -> bool:
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import lookup_miss_key

    r = redis()
    if r is None:
        return False
    try:
        return r.get(lookup_miss_key(student_id, email)) is not None
    except RedisUnavailable:
        return False


def _remember_miss(student_id: str, email: str) -> None:
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import lookup_miss_key

    r = redis()
    if r is not None:
        with contextlib.suppress(RedisUnavailable):
            r.set(lookup_miss_key(student_id, email), "1", ex=MISS_TTL_S)


def _admit(client_id: str) -> None:
    """Count one look-up against the client's allowance, then take a slot of the
    look-ups' share of the search budget; AppError when either is spent."""
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import budget_key, hit_rate_limit, rate_key, take_budget

    r = redis()
    if r is None:
        return
    try:
        decision = hit_rate_limit(
            r,
            key=rate_key("hubspot-lookup", client_id),
            limit=LOOKUPS_PER_CLIENT,
            window_s=LOOKUP_WINDOW_S,
        )
        if not decision.allowed:
            log.event(logger, logging.WARNING, "hubspot look-ups of one client stopped")
            error = AppError("RATE_LIMITED")
            error.retry_after_s = max(1, decision.retry_after_s)
            raise error
        config = settings()
        share = max(1, min(config.hubspot_lookup_search_per_s, config.hubspot_search_per_s - 1))
        waited_s = 0.0
        while (
            wait_ms := take_budget(
                r, key=budget_key("hubspot:lookup"), limit=share, window_ms=_SHARE_WINDOW_MS
            )
        ) > 0:
            if waited_s + wait_ms / 1000 > SHARE_WAIT_S:
                log.event(logger, logging.WARNING, "hubspot look-up share spent")
                error = AppError("HUBSPOT_UNAVAILABLE")
                error.retry_after_s = 1
                raise error
            time.sleep(wait_ms / 1000)
            waited_s += wait_ms / 1000
    except RedisUnavailable:
        return
