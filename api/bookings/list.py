"""GET /api/bookings/list?student_id=&email=&filter=&page=&limit=: my bookings."""

from lib import limits
from lib.bookings import list_for
from lib.http import Request, function
from lib.models import BookingListQuery


def get(request: Request) -> object:
    return list_for(request.query_model(BookingListQuery))


app = function("bookings.list", GET=get, rate_limit=limits.LIST)
