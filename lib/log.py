"""Structured JSON logs, one object per line on stderr (Vercel collects stderr).

Nothing secret or personal goes in: callers pass fields, and `mask_email` exists so
that an email can be recognised by support without being written out in full.
"""

from __future__ import annotations

import json
import logging
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


def now_ms() -> float:
    return time.perf_counter() * 1000
