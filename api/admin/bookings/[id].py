"""GET /api/admin/bookings/[id]: any student's booking by UUID, HubSpot id or booking
code, with its owner, its HubSpot state and its history. DELETE: cancel it on the
student's behalf, with or without giving the credit back ({"refund", "reason"})."""

from urllib.parse import unquote

from lib import admin
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.admin_models import AdminCancellation
from lib.http import Request


def _ref(request: Request) -> str:
    return unquote(request.segment(-1))  # /api/admin/bookings/<id>


def get(request: Request, who: Admin) -> object:
    del who
    return admin.booking(_ref(request))


def delete(request: Request, who: Admin) -> object:
    return admin.cancel_booking(_ref(request), request.model(AdminCancellation), who)


app = admin_function("admin.bookings.item", GET=get, DELETE=delete)
