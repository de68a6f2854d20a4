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


ERRORS: dict[str, ErrorKind] = {
    # Input
    "INVALID_INPUT": ErrorKind(400, False, "The request is not valid"),
    "VALIDATION_ERROR": ErrorKind(400, False, "The request is not valid"),
    # Not found (another student's booking is reported exactly like a missing one)
    "CONTACT_NOT_FOUND": ErrorKind(404, False, "No student with this student_id and email"),
    "EXAM_NOT_FOUND": ErrorKind(404, False, "Mock exam not found"),
    "BOOKING_NOT_FOUND": ErrorKind(404, False, "Booking not found"),
    # Business rules
    "INSUFFICIENT_CREDITS": ErrorKind(402, False, "Not enough credits for this exam type"),
    "PREREQUISITE_NOT_MET": ErrorKind(403, False, "A prerequisite mock exam was not attended"),
    "EXAM_FULL": ErrorKind(409, False, "This mock exam is fully booked"),
    "DUPLICATE_BOOKING": ErrorKind(409, False, "Already booked for this date and exam type"),
    "EXAM_NOT_ACTIVE": ErrorKind(409, False, "This mock exam is not open for booking"),
    "EXAM_STARTED": ErrorKind(409, False, "This mock exam has already started"),
    "BOOKING_NOT_CANCELLABLE": ErrorKind(409, False, "Only an active booking can be cancelled"),
    "IDEMPOTENCY_KEY_REUSED": ErrorKind(
        409, False, "This Idempotency-Key was already used for a different booking"
    ),
    # Infrastructure
    "DATABASE_BUSY": ErrorKind(503, True, "The service is busy; please retry shortly"),
    "DATABASE_UNAVAILABLE": ErrorKind(503, True, "The database is unavailable; please retry"),
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
        self.message = message or kind.message
        self.field = field
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
