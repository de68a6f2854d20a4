"""Faults the torture injects while its clients run, and what each promises.

Each fault is a window: `inject()` at its start, `heal()` at its end. What clients may
see during a window, and must not:
* no fault may ever produce a bare 500 (an unexpected error) or a violated invariant;
* `redis_down`: Redis is a helper, not a dependency: students' operations go on with
  no 5xx at all;
* `postgres_restart`: the database is: requests fail with 503 and Retry-After
  (DATABASE_UNAVAILABLE / DATABASE_BUSY) while it is down, and succeed again after;
* the HubSpot faults (`hubspot_slow`, `hubspot_failing`, `hubspot_429`,
  `hubspot_lost`) and `sync_killed` touch only the sync: students see no 5xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from local.standins.hubspot import Faults, HubSpotStandIn
from reliability.stack import Services
from reliability.sync_driver import SyncDriver

# Statuses a client may see during a fault window, beyond 2xx and 4xx.
DEPENDS_ON_POSTGRES = frozenset({503})
KILLS_PER_WINDOW = 3
# How long the end of a kill window waits for its first kill (a sync run in flight may
# first have to finish).
KILL_WAIT_S = 60.0
# Late HubSpot writes (held "timeouts") land this long after the request.
HOLD_S = 3.0


@dataclass(frozen=True)
class Fault:
    name: str
    what: str  # one line for RELIABILITY.md
    inject: Callable[[], None]
    heal: Callable[[], None]
    # 5xx statuses students may see while it lasts (and shortly after).
    student_5xx_allowed: frozenset[int] = frozenset()


def schedule(services: Services, standin: HubSpotStandIn, driver: SyncDriver) -> list[Fault]:
    """Every fault once, in a fixed order."""
    calm_limits = standin.limits

    def pause_purchases() -> None:
        driver.pause_purchases()

    def resume_purchases() -> None:
        driver.resume_purchases(after_s=HOLD_S + 1.0)

    def redis_down() -> None:
        services.stop_redis()

    def redis_up() -> None:
        services.start_redis()

    def postgres_down() -> None:
        # Not in the middle of a sync run: it would keep its lease for 360 s.
        with driver.lock:
            services.stop_postgres()

    def postgres_up() -> None:
        services.start_postgres()

    def hubspot(**faults: object) -> Callable[[], None]:
        def inject() -> None:
            pause_purchases()
            standin.set_faults(Faults(**faults))  # type: ignore[arg-type]

        return inject

    def hubspot_calm() -> None:
        standin.set_faults(Faults())
        standin.set_limits(
            per_interval=calm_limits.per_interval, search_per_s=calm_limits.search_per_s
        )
        resume_purchases()

    def rate_limited() -> None:
        pause_purchases()
        standin.set_limits(per_interval=6, search_per_s=1)

    def kill_syncs() -> None:
        pause_purchases()
        # Latency stretches each run over many requests, so kills land mid-run.
        standin.set_faults(Faults(latency_ms=20))
        driver.kills_wanted = KILLS_PER_WINDOW

    def stop_killing() -> None:
        # At least one kill per window, however busy the driver was.
        deadline = time.monotonic() + KILL_WAIT_S
        while driver.kills_wanted == KILLS_PER_WINDOW and time.monotonic() < deadline:
            time.sleep(0.05)
        driver.kills_wanted = 0
        with driver.lock:  # the run in flight, if any, ends before HubSpot calms down
            hubspot_calm()

    return [
        Fault("redis_down", "Redis stopped, then started again empty", redis_down, redis_up),
        Fault(
            "postgres_restart",
            "PostgreSQL stopped (fast shutdown: every session cut), then started",
            postgres_down,
            postgres_up,
            student_5xx_allowed=DEPENDS_ON_POSTGRES,
        ),
        Fault(
            "hubspot_slow",
            "HubSpot answers every request 1.5 s late",
            hubspot(latency_ms=1500),
            hubspot_calm,
        ),
        Fault(
            "hubspot_failing",
            "HubSpot answers half of all requests 502/503/504",
            hubspot(error_rate=0.5),
            hubspot_calm,
        ),
        Fault(
            "hubspot_429",
            "HubSpot's budget cut to 6 requests per window: 429s",
            rate_limited,
            hubspot_calm,
        ),
        Fault(
            "hubspot_lost",
            "HubSpot applies writes but loses 30% of answers and holds 10% past the timeout",
            hubspot(lost_rate=0.3, timeout_rate=0.1, hold_s=HOLD_S),
            hubspot_calm,
        ),
        Fault(
            "sync_killed",
            "sync processes SIGKILLed mid-run (up to 3 per window, at least 1)",
            kill_syncs,
            stop_killing,
        ),
    ]
