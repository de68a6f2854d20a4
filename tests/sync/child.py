"""One sync run in a process of its own, for tests/sync/test_kills.py to kill:

    DATABASE_URL=... HUBSPOT_BASE_URL=... HUBSPOT_ACCESS_TOKEN=... HUBSPOT_APP_ID=... \
        python -m tests.sync.child

Small batches, so that a run has many checkpoints for a kill to fall between."""

from __future__ import annotations

import os
import sys
import time

from lib.hubspot.client import HubSpotClient, LocalBudget
from lib.hubspot.sync import run_once
from lib.hubspot.sync_run import SyncOptions


def main() -> int:
    client = HubSpotClient(
        os.environ["HUBSPOT_ACCESS_TOKEN"],
        os.environ["HUBSPOT_BASE_URL"],
        budget=LocalBudget(general_limit=10_000, search_limit=10_000, association_limit=10_000),
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
    )
    result = run_once(
        "delta",
        time.monotonic() + 60,
        trigger="test",
        client=client,
        options=SyncOptions(
            batch_size=4,
            association_group=12,
            lease_ttl_s=30,
            app_id=os.environ["HUBSPOT_APP_ID"],
        ),
    )
    client.close()
    print(result.status, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
