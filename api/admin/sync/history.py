"""GET /api/admin/sync/history?days=7: every run of the last days, oldest first, with
its duration and records synced (the dashboard's chart)."""

from lib import admin_sync
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.admin_models import HistoryQuery
from lib.http import Request


def get(request: Request, who: Admin) -> object:
    del who
    return admin_sync.history(request.query_model(HistoryQuery).days)


app = admin_function("admin.sync.history", GET=get)
