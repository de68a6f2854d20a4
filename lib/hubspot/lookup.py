"""The one HubSpot call a student can ever wait on: the contact search at a first
login (PostgreSQL did not know the student). Bounded: HubSpot trouble becomes a
clean 503 HUBSPOT_UNAVAILABLE with Retry-After, never a hang; search calls share the
5-per-second budget of the account through Redis (lib.hubspot.client.RedisBudget).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from lib import log
from lib.config import settings
from lib.errors import AppError

if TYPE_CHECKING:
    from lib.hubspot.client import HubSpotClient

logger = logging.getLogger(__name__)
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


def find_contact(student_id: str, email: str) -> dict[str, Any] | None:
    """The HubSpot contact with this student_id and email, or None. Raises
    AppError(HUBSPOT_UNAVAILABLE) when HubSpot cannot answer in time."""
    from lib.hubspot.client import HubSpotError

    hubspot = client()
    if hubspot is None:
        log.event(logger, logging.WARNING, "hubspot not configured; unknown student not looked up")
        return None
    try:
        return hubspot.find_contact(student_id, email)
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
