"""One sync run in a process of its own, for the torture to SIGKILL mid-run:

    DATABASE_URL=... HUBSPOT_BASE_URL=... HUBSPOT_ACCESS_TOKEN=... HUBSPOT_APP_ID=... \
        python -m reliability.sync_child LEASE_TTL_S

The production run (lib.hubspot.sync.run_once) with small batches, so a run has many
checkpoints for a kill to fall between, and a short lease: a killed run holds the lease
until it expires (360 s in production, where the next cron comes 2 hours later), and
the torture should not wait that long to sync again.
"""

from __future__ import annotations

import os
import sys
import time

from lib.hubspot.client import HubSpotClient, LocalBudget
from lib.hubspot.sync import run_once
from lib.hubspot.sync_run import SyncOptions

BATCH_SIZE = 5
RUN_BUDGET_S = 60


def main(argv: list[str]) -> int:
    lease_ttl_s = int(argv[0]) if argv else 10
    client = HubSpotClient(
        os.environ["HUBSPOT_ACCESS_TOKEN"],
        os.environ["HUBSPOT_BASE_URL"],
        budget=LocalBudget(general_limit=10_000, search_limit=10_000, association_limit=10_000),
    )
    result = run_once(
        "delta",
        time.monotonic() + RUN_BUDGET_S,
        trigger="torture",
        client=client,
        options=SyncOptions(
            batch_size=BATCH_SIZE,
            association_group=BATCH_SIZE,
            lease_ttl_s=lease_ttl_s,
            create_recovery_after_s=2,  # the stand-in's search has no lag
            app_id=os.environ["HUBSPOT_APP_ID"],
        ),
    )
    client.close()
    print(result.status, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
