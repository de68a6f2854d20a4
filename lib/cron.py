"""Vercel cron calls: who may trigger them.

Vercel sends `Authorization: Bearer $CRON_SECRET` with every cron invocation; nothing
else about the request (user agent, the x-vercel-cron header) proves anything, since
anyone can send those. The secret is compared in constant time, so the time an answer
takes says nothing about how much of a guess was right. With CRON_SECRET unset every
call is refused: an endpoint that writes to HubSpot never runs for an anonymous caller.
"""

from __future__ import annotations

import hmac

from lib.config import settings
from lib.errors import AppError


def require_cron_secret(authorization: str | None) -> None:
    """Raise AppError(UNAUTHORIZED) unless `authorization` is `Bearer <CRON_SECRET>`."""
    secret = settings().cron_secret
    scheme, _, token = (authorization or "").strip().partition(" ")
    valid = (
        secret is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), secret.encode())
    )
    if not valid:
        raise AppError("UNAUTHORIZED", "This endpoint is for Vercel's cron")
