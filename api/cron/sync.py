"""GET /api/cron/sync: the HubSpot sync, every 2 hours (vercel.json `crons`).

Vercel calls it with `Authorization: Bearer $CRON_SECRET` (lib/cron.py); anything
else is 401. One run, within SYNC_TIME_BUDGET_S (240 s of the function's 300 s): a
delta run, except once a week the full reconciliation (lib.hubspot.sync.scheduled_mode:
Vercel's crons carry no arguments, so the schedule is read from the runs table). The
answer is the run as recorded; 409 SYNC_IN_PROGRESS when another run holds the lease.
"""

from lib.cron import require_cron_secret
from lib.errors import AppError
from lib.http import Request, function


def get(request: Request) -> object:
    require_cron_secret(request.header("Authorization"))
    # Imported only for an authorised call: a 401 costs no HubSpot or sync import.
    from lib.hubspot.sync import run_once, scheduled_mode

    result = run_once(scheduled_mode(), trigger="cron")
    if result.status == "refused":
        raise AppError("SYNC_IN_PROGRESS", result.message)
    return result.as_dict()


app = function("cron.sync", GET=get)
