"""GET /api/admin/sync/status: the backlog per table and its age against the 2-hour
goal, the running run, the last run of each mode, the last run's use of HubSpot's
budgets, and the alert conditions."""

from lib import admin_sync
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.http import Request


def get(request: Request, who: Admin) -> object:
    del request, who
    return admin_sync.status()


app = admin_function("admin.sync.status", GET=get)
