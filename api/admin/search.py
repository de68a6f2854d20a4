"""GET /api/admin/search?q=: students by student_id or email, and bookings by UUID,
HubSpot id or booking code, in one answer (the dashboard's search box)."""

from lib import admin
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.admin_models import SearchQuery
from lib.http import Request


def get(request: Request, who: Admin) -> object:
    del who
    return admin.search(request.query_model(SearchQuery).q)


app = admin_function("admin.search", GET=get)
