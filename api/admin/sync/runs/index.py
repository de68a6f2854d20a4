"""GET /api/admin/sync/runs?page=&limit=&include_refused=: sync runs, newest first.
POST: start a run now ({"mode": "delta" | "full"}); 409 SYNC_IN_PROGRESS while
another run holds the sync's lease."""

from lib import admin_sync
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.admin_models import RunsQuery, SyncTrigger
from lib.http import Request


def get(request: Request, who: Admin) -> object:
    del who
    query = request.query_model(RunsQuery)
    return admin_sync.runs(query.page, query.limit, query.include_refused)


def post(request: Request, who: Admin) -> object:
    return admin_sync.trigger(request.model(SyncTrigger).mode, who)


app = admin_function("admin.sync.runs", GET=get, POST=post)
