"""The wrapper every `api/admin/` file uses: lib.http.function with the admin check in
front of every handler, so no admin endpoint can forget it.

    app = admin_function("admin.sync.status", GET=status)   # status(request, admin)

Order per request: the per-client rate limit (so a script guessing tokens is slowed
before any signature is checked), then require_admin (401 / 403), then the handler
with the Admin it returned. OPTIONS (CORS preflight) answers without a token, as
browsers send it without one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from lib import log
from lib.admin_auth import Admin, require_admin
from lib.http import RateLimit, Request, Response, function

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

logger = logging.getLogger("admin")

AdminHandler = Callable[[Request, Admin], Response | Any]

# Per client address, shared by all instances. The dashboard polls about once a
# second while a run is in progress (~60 a minute) and a person adds a few clicks;
# 300 leaves room for two tabs, and still stops a token-guessing script within seconds.
ADMIN_LIMIT = RateLimit("admin", 300, 60)


def _guarded(route: str, handler: AdminHandler) -> Callable[[Request], Response | Any]:
    def run(request: Request) -> Response | Any:
        admin = require_admin(request)
        return handler(request, admin)

    run.__name__ = f"{route}.{handler.__name__}"
    return run


def admin_function(
    name: str, **handlers: AdminHandler
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    return function(
        name,
        rate_limit=ADMIN_LIMIT,
        **{method: _guarded(name, handler) for method, handler in handlers.items()},
    )


def audit(message: str, admin: Admin, **fields: Any) -> None:
    """Log an admin action: the admin's id and masked email, never a token or a full
    email; `fields` must hold ids and counts only."""
    log.event(
        logger,
        logging.INFO,
        message,
        admin_id=admin.user_id,
        admin_email=log.mask_email(admin.email),
        admin_role=admin.role,
        **fields,
    )
