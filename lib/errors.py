"""Every error code the system can answer with, its HTTP status and whether a retry
may succeed. One exception type, AppError, carries them from the database layer to
the HTTP layer.

Business rejections come back from the SQL functions as codes (see
supabase/migrations/*_booking_functions.sql); infrastructure failures are raised by
lib/db.py with the same type. tests/sql/test_error_codes.py checks that every code
the SQL can return is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorKind:
    status: int
    retryable: bool
    message: str
    # Seconds a client should wait before retrying (sent as Retry-After), for the
    # retryable kinds.
    retry_after_s: int = 0


ERRORS: dict[str, ErrorKind] = {
    # Input and protocol
    "INVALID_INPUT": ErrorKind(400, False, "The request is not valid"),
    "VALIDATION_ERROR": ErrorKind(400, False, "The request is not valid"),
    "INVALID_JSON": ErrorKind(400, False, "The request body is not valid JSON"),
    "UNAUTHORIZED": ErrorKind(401, False, "Sign in first"),
    "FORBIDDEN": ErrorKind(403, False, "Not allowed"),
    "NOT_FOUND": ErrorKind(404, False, "Not found"),
    "METHOD_NOT_ALLOWED": ErrorKind(405, False, "Method not allowed"),
    "PAYLOAD_TOO_LARGE": ErrorKind(413, False, "The request body is too large"),
    "UNSUPPORTED_MEDIA_TYPE": ErrorKind(415, False, "Send the body as application/json"),
    # One second: a window of the per-client limit is at most a minute, and the
    # exact wait is computed per request (lib/http.py); this is only the floor.
    "RATE_LIMITED": ErrorKind(429, True, "Too many requests; please slow down", 1),
    # Not found (another student's booking is reported exactly like a missing one)
    "CONTACT_NOT_FOUND": ErrorKind(404, False, "No student with this student_id and email"),
    # Login's name for the same thing, kept for the existing frontend.
    "STUDENT_NOT_FOUND": ErrorKind(
        404, False, "Student not found. Please check your Student ID and email."
    ),
    "EXAM_NOT_FOUND": ErrorKind(404, False, "Mock exam not found"),
    "BOOKING_NOT_FOUND": ErrorKind(404, False, "Booking not found"),
    # Business rules
    "INSUFFICIENT_CREDITS": ErrorKind(402, False, "Not enough credits for this exam type"),
    "CREDITS_WOULD_BE_NEGATIVE": ErrorKind(
        409, False, "This change would take a balance below zero"
    ),
    "PREREQUISITE_NOT_MET": ErrorKind(403, False, "A prerequisite mock exam was not attended"),
    "EXAM_FULL": ErrorKind(409, False, "This mock exam is fully booked"),
    "DUPLICATE_BOOKING": ErrorKind(409, False, "Already booked for this date and exam type"),
    "EXAM_NOT_ACTIVE": ErrorKind(409, False, "This mock exam is not open for booking"),
    "EXAM_STARTED": ErrorKind(409, False, "This mock exam has already started"),
    "BOOKING_NOT_CANCELLABLE": ErrorKind(409, False, "Only an active booking can be cancelled"),
    "IDEMPOTENCY_KEY_REUSED": ErrorKind(
        409, False, "This Idempotency-Key was already used for a different request"
    ),
    # A duplicate click while the first is still in flight: retrying after a second
    # with the same Idempotency-Key returns the booking the first one made.
    "BOOKING_IN_PROGRESS": ErrorKind(
        409, True, "A booking for you is already in progress; please retry", 1
    ),
    # Infrastructure
    # Busy: a lock queue or a lost race; a second later the queue has moved on.
    "DATABASE_BUSY": ErrorKind(503, True, "The service is busy; please retry shortly", 1),
    # Unavailable: the pool timed out or the server is down; give it a few seconds.
    "DATABASE_UNAVAILABLE": ErrorKind(
        503, True, "The service is temporarily unavailable; please retry", 5
    ),
    # A required environment variable is missing or malformed (lib/config.ConfigError):
    # the deployment, not the request, is wrong. The log names the variable; the
    # client learns only that the service cannot serve, and retrying will not help.
    "SERVICE_MISCONFIGURED": ErrorKind(
        503, False, "The service is not configured correctly; the operators have been told"
    ),
    # HubSpot is only asked at a student's first login; its outages last minutes.
    "HUBSPOT_UNAVAILABLE": ErrorKind(
        503, True, "We cannot verify new students right now; please retry shortly", 30
    ),
    # The HubSpot sync: another run holds the lease (runs never overlap); the next
    # scheduled run, or a retry once the current one is done, will do the work.
    "SYNC_IN_PROGRESS": ErrorKind(409, True, "A HubSpot sync is already running", 60),
    # A sync call from a run whose lease another run has taken (it was presumed dead).
    "SYNC_LEASE_LOST": ErrorKind(409, False, "This sync run no longer holds the lease"),
    "INTERNAL_ERROR": ErrorKind(500, False, "Something went wrong on our side"),
}


class AppError(Exception):
    """An error with a stable code, an HTTP status and a retry hint.

    `message` is safe to show to a user; internals (SQL text, stack traces) never go in
    it. `field` names the offending input where there is one.
    """

    def __init__(self, code: str, message: str | None = None, field: str | None = None) -> None:
        kind = ERRORS.get(code, ERRORS["INTERNAL_ERROR"])
        self.code = code if code in ERRORS else "INTERNAL_ERROR"
        self.status = kind.status
        self.retryable = kind.retryable
        self.retry_after_s = kind.retry_after_s
        self.message = message or kind.message
        self.field = field
        self.details: list[dict[str, str]] | None = None
        super().__init__(f"{self.code}: {self.message}")


class DatabaseBusy(AppError):
    """Lock timeout, deadlock or serialization failure that outlived our retries."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__("DATABASE_BUSY", message)


class DatabaseUnavailable(AppError):
    """The database (or the pooler / PostgREST in front of it) cannot be reached."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__("DATABASE_UNAVAILABLE", message)


class DatabaseFailure(AppError):
    """Anything else the database raised: a bug, not a user error. Logged, answered 500."""

    def __init__(self, sqlstate: str | None, detail: str) -> None:
        super().__init__("INTERNAL_ERROR")
        self.sqlstate = sqlstate
        self.detail = detail


def rejection(result: dict[str, object]) -> AppError:
    """The AppError for a function's {"ok": false, "code", "message", "field"?} answer."""
    field = result.get("field")
    return AppError(
        str(result.get("code", "INTERNAL_ERROR")),
        str(result["message"]) if result.get("message") else None,
        str(field) if field else None,
    )
