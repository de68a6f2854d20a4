"""Booking and cancelling: Redis admission around one database call.

    book:   1 Redis round trip (rate limit, sold-out fast path, per-student lock)
            1 database call (hubspot_sync.book: every rule, atomically)
            1 Redis round trip (release the lock, store the database's seat count)
            0 HubSpot calls (the 2-hourly sync carries the booking there)

Redis only spares the database work; it never decides. When Redis is down, slow or
wrong, bookings go straight to the database, which alone decides seats and credits.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from lib import db, exams, limits
from lib.errors import AppError, rejection
from lib.models import BookingCreate, BookingListQuery, Cancellation, Student

# The per-student lock only has to outlive one booking call: the database statement
# timeout (8 s) plus a margin. If a function dies holding it, the student waits at
# most this long before a retry goes through.
LOCK_TTL_S = 10


def _admit(request: BookingCreate, client_id: str) -> tuple[Any, str, str, str] | None:
    """Ask Redis to admit this booking. Returns what finishing needs, or None when
    Redis is absent or down (then the database alone decides, a little slower)."""
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import admit_booking, booking_lock_key, rate_key, seats_key

    client = redis()
    if client is None:
        return None
    lock_key = booking_lock_key(request.student_id, request.email)
    token = os.urandom(16).hex()  # not uuid: its import costs ~13 ms of a cold start
    # Seat counters are keyed by the exam's UUID; a request naming the exam by its
    # HubSpot id skips the sold-out fast path and lets the database answer.
    exam_key = (
        seats_key(request.mock_exam_id.lower()) if exams.is_uuid(request.mock_exam_id) else ""
    )
    try:
        admission = admit_booking(
            client,
            lock_key=lock_key,
            token=token,
            lock_ttl_s=LOCK_TTL_S,
            seats_key=exam_key,
            rate_key=rate_key(limits.CREATE.bucket, client_id),
            rate_limit=limits.CREATE.limit,
            rate_window_s=limits.CREATE.window_s,
        )
    except RedisUnavailable:
        return None
    if admission.outcome == "rate_limited":
        error = AppError("RATE_LIMITED")
        error.retry_after_s = max(1, admission.retry_after_s)
        raise error
    if admission.outcome == "full":
        raise AppError("EXAM_FULL")
    if admission.outcome == "locked":
        raise AppError("BOOKING_IN_PROGRESS")
    return client, lock_key, token, exam_key


def _finish(admitted: tuple[Any, str, str, str] | None, result: dict[str, Any] | None) -> None:
    from lib.redis_client import RedisUnavailable
    from lib.redis_scripts import SeatCount, finish_booking, seats_key

    if admitted is None:
        if result and result.get("seats"):
            exams.remember_seats([result["seats"]])
        return
    client, lock_key, token, exam_key = admitted
    seats = (result or {}).get("seats")
    count = None
    if seats:
        count = SeatCount(
            version=int(seats["version"]),
            booked=int(seats["booked"]),
            capacity=int(seats["capacity"]),
        )
        exam_key = seats_key(str(seats["exam_id"]))
    # If Redis fails here the lock expires on its own and the counter is refreshed
    # by the next writer. The reply is waited for: sending the finish and reading its
    # reply on the connection's next use saved ~2 us of CPU a booking (issue 16,
    # measured on a loopback socket), not worth a reply left in flight; nor is releasing
    # the lock after the response, which Vercel may freeze before it happens.
    with contextlib.suppress(RedisUnavailable):
        finish_booking(
            client,
            lock_key=lock_key,
            token=token,
            seats_key=exam_key,
            seats=count,
            seats_ttl_s=exams.SEATS_TTL_S,
        )


def book(request: BookingCreate, idempotency_key: str | None, client_id: str) -> dict[str, Any]:
    """Book one seat. Returns the database's answer (booking, credits, seats,
    replayed); raises AppError for every rejection."""
    admitted = _admit(request, client_id)
    result: dict[str, Any] | None = None
    try:
        result = db.rpc(
            "book",
            {
                "p_student_id": request.student_id,
                "p_email": request.email,
                "p_exam_id": request.mock_exam_id,
                "p_attending_location": request.attending_location,
                "p_dominant_hand": request.dominant_hand,
                "p_idempotency_key": idempotency_key,
            },
        )
    finally:
        _finish(admitted, result)
    if not result["ok"]:
        raise rejection(result)
    return result


def cancel(booking_ref: str, request: Cancellation) -> dict[str, Any]:
    result = db.rpc(
        "cancel_booking",
        {
            "p_booking_ref": booking_ref,
            "p_student_id": request.student_id,
            "p_email": request.email,
            "p_reason": request.reason,
        },
    )
    if not result["ok"]:
        raise rejection(result)
    if result.get("seats"):
        exams.remember_seats([result["seats"]])
    return result


def find(booking_ref: str, student: Student) -> dict[str, Any]:
    result = db.rpc(
        "find_booking",
        {"p_ref": booking_ref, "p_student_id": student.student_id, "p_email": student.email},
    )
    if not result["ok"]:
        raise rejection(result)
    booking: dict[str, Any] = result["booking"]
    return booking


def list_for(query: BookingListQuery) -> dict[str, Any]:
    result = db.rpc(
        "list_bookings",
        {
            "p_student_id": query.student_id,
            "p_email": query.email,
            "p_filter": query.filter,
            "p_page": query.page,
            "p_limit": query.limit,
        },
    )
    if not result["ok"]:
        raise rejection(result)
    return {
        "bookings": result["bookings"],
        "pagination": result["pagination"],
        "credits": result["credits"],
    }
