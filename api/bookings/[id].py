"""GET /api/bookings/[id]: one booking (owner only); DELETE: cancel it (owner only).
[id] is the booking's UUID, HubSpot id or booking code. Someone else's booking is
answered exactly like one that does not exist."""

from lib import limits
from lib.bookings import cancel, find
from lib.errors import AppError
from lib.http import Request, function
from lib.models import Cancellation, Student

_MAX_REF = 200


def _ref(request: Request) -> str:
    from urllib.parse import unquote

    ref = unquote(request.segment(-1))  # /api/bookings/<id>
    if len(ref) > _MAX_REF:
        raise AppError("VALIDATION_ERROR", "id is too long", "id")
    return ref


def get(request: Request) -> object:
    return find(_ref(request), request.query_model(Student))


def delete(request: Request) -> object:
    ref = _ref(request)
    body = request.json() or request.query  # a DELETE body is optional for some clients
    from lib.http import validate

    result = cancel(ref, validate(Cancellation, body))
    return {
        **result["booking"],
        "credits_restored": result["credits_restored"],
        "already_cancelled": result["already_cancelled"],
        "credits": result["credits"],
    }


app = function("bookings.item", GET=get, DELETE=delete, rate_limit=limits.BOOKING)
