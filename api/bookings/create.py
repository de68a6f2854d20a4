"""POST /api/bookings/create: book one seat (201), or replay the original (200)."""

import re

from lib.bookings import book
from lib.errors import AppError
from lib.http import Request, Response, function
from lib.models import BookingCreate

_KEY = re.compile(r"^[!-~]{1,255}$")


def post(request: Request) -> Response:
    booking = request.model(BookingCreate)
    key = request.header("Idempotency-Key")
    if key is not None and not _KEY.match(key):
        raise AppError(
            "VALIDATION_ERROR",
            "Idempotency-Key must be 1-255 printable characters",
            "idempotency_key",
        )
    result = book(booking, key, request.client_id)
    data = {
        **result["booking"],
        "booking_record_id": result["booking"]["id"],
        "credits_after": result["credits"],
        "creditsAfterDeduction": result["credits"],
        "replayed": result["replayed"],
    }
    # The request's log line says what was booked (lib/http.py's Response.log).
    logged = {
        "booking_id": result["booking"]["id"],
        "exam_id": result["seats"]["exam_id"],
        "replayed": result["replayed"],
    }
    return Response(data, status=200 if result["replayed"] else 201, log=logged)


# Rate limiting happens inside book(): it shares the admission round trip to Redis.
app = function("bookings.create", POST=post)
