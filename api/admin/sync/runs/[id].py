"""GET /api/admin/sync/runs/[id]: one run in detail: phases, counts, API calls, 429s,
and the records it could not bring across with HubSpot's correlation ids."""

from urllib.parse import unquote

from lib import admin_sync
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.http import Request


def get(request: Request, who: Admin) -> object:
    del who
    return admin_sync.run(unquote(request.segment(-1)))  # /api/admin/sync/runs/<id>


app = admin_function("admin.sync.runs.item", GET=get)
