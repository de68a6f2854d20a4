"""Structured JSON logs, one object per line on stderr (Vercel collects stderr).

Nothing secret or personal goes in: callers pass fields, and `mask_email` exists so
that an email can be recognised by support without being written out in full.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_configured = False
_FIELDS = "fields"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            # The traceback stays in the logs; it never reaches a client.
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure() -> None:
    """Install the JSON handler on the root logger once per process."""
    global _configured  # noqa: PLW0603 - once per process
    if _configured:
        return
    # Every record would otherwise walk the stack for its caller's frame; the JSON
    # line does not use it (issue 16's profile: ~60 us a request line), and
    # tracebacks keep their line numbers. The logging HOWTO's "Optimization" switch.
    # Not logProcesses/logThreads: gunicorn's own formatter prints %(process)d, which
    # fails on the None they would leave (its log then fills with tracebacks).
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    _configured = True


def event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log `msg` with structured fields (they become top-level JSON keys)."""
    logger.log(level, msg, extra={_FIELDS: fields})


def mask_email(email: str | None) -> str | None:
    """'student@example.com' -> 's***@example.com'."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


# A full address inside free text (a third party's error message): local part, @, a
# dotted domain. Deliberately wide; masking a non-address costs nothing.
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def mask_emails(text: str) -> str:
    """Every email address in `text` masked as mask_email does. For text we do not
    write ourselves (HubSpot's error messages quote the conflicting email) before it
    is logged or stored."""
    return _EMAIL_IN_TEXT.sub(lambda found: mask_email(found.group(0)) or "", text)


# Credentials a driver's message may quote: a URL's user:password@, a DSN's password=.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
DETAIL_LIMIT = 1000


def scrub(text: str | None) -> str | None:
    """A third party's error text fit for the log: emails masked, passwords in URLs
    and DSNs replaced, at most DETAIL_LIMIT characters."""
    if not text:
        return None
    cleaned = _DSN_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))
    return mask_emails(cleaned)[:DETAIL_LIMIT]


def now_ms() -> float:
    return time.perf_counter() * 1000
