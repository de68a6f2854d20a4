"""`./run sync [--mode delta|full]`: one sync run from a terminal, with a progress bar.

The same run as the cron's (lib.hubspot.sync.run_once), configured by the same
environment: DATABASE_URL (or SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY),
HUBSPOT_ACCESS_TOKEN, HUBSPOT_BASE_URL, REDIS_URL for the shared HubSpot budget. Against
`./run dev`'s local stack, export the variables it prints.

Exit status: 0 every record went through; 1 finished, some records failed (see the
run's errors); 2 stopped early (time budget, HubSpot's daily limit or 429s: the next
run continues); 3 refused (another run holds the lease); 4 failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, TextIO

from lib.config import ConfigError, settings

if TYPE_CHECKING:
    from lib.hubspot.sync import SyncResult

EXIT = {
    "succeeded": 0,
    "partial": 1,
    "deadline": 2,
    "daily_limit": 2,
    "rate_limited": 2,
    "refused": 3,
    "failed": 4,
    "lease_lost": 4,
}
BAR_WIDTH = 30


class Bar:
    """One line per phase, redrawn in place on a terminal (a plain line per batch
    otherwise, so a log file stays readable)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.phase: str | None = None
        self.started = time.monotonic()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase != self.phase:
            if self.phase is not None and self.tty:
                self.out.write("\n")
            self.phase = phase
        line = render(phase, done, total, time.monotonic() - self.started)
        self.out.write(f"\r{line}" if self.tty else f"{line}\n")
        self.out.flush()

    def close(self) -> None:
        if self.phase is not None and self.tty:
            self.out.write("\n")
            self.out.flush()


def render(phase: str, done: int, total: int | None, elapsed_s: float) -> str:
    """`bookings  [##########----------]   500/1000  12.3 s`; without a known total
    (HubSpot-side changes are found as the run goes) just the count."""
    if total:
        filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{phase:<9} [{bar}] {done:>7}/{total:<7} {elapsed_s:6.1f} s"
    return f"{phase:<9} {done:>7} records{' ' * (BAR_WIDTH - 5)} {elapsed_s:6.1f} s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./run sync",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=(__doc__ or "").split("\n\n", 2)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mode",
        choices=("delta", "full"),
        default="delta",
        help="delta: what changed (default); full: re-send everything (weekly reconciliation)",
    )
    parser.add_argument(
        "--time-budget",
        type=int,
        metavar="SECONDS",
        help="stop cleanly after this long (default SYNC_TIME_BUDGET_S, 240)",
    )
    parser.add_argument("--json", action="store_true", help="print the run as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from lib import log

    log.configure()
    try:
        config = settings()
        config.db_backend  # noqa: B018 - fails loudly here when no database is configured
        if not config.hubspot_access_token:
            raise ConfigError("HUBSPOT_ACCESS_TOKEN is not set")
    except ConfigError as exc:
        print(f"./run sync: {exc}", file=sys.stderr)
        return 4
    from lib.hubspot.sync import run_once

    budget = args.time_budget if args.time_budget is not None else config.sync_time_budget_s
    bar = None if args.quiet or args.json else Bar(sys.stderr)
    try:
        result = run_once(args.mode, time.monotonic() + budget, trigger="cli", progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(result.as_dict(), default=str, indent=2))
    else:
        print(summary(result))
    return EXIT.get(result.status, 4)


def summary(result: SyncResult) -> str:
    """The run in a few lines: status, per-phase counts, the first failed records."""
    lines = [
        f"run {result.run_id} ({result.mode}): {result.status} in"
        f" {result.duration_ms / 1000:.1f} s, {result.api_calls} HubSpot calls,"
        f" {result.rate_limited} answered 429"
    ]
    for name, counts in result.phases.items():
        lines.append(
            f"  {name:<9} created {counts.created:>6}  updated {counts.updated:>6}"
            f"  unchanged {counts.unchanged:>6}  failed {counts.failed:>6}  calls {counts.calls:>5}"
        )
    if result.message:
        lines.append(f"  {result.message}")
    if result.errors:
        lines.append(
            f"  {result.error_count} records failed, {result.warning_count} warnings; first ones:"
        )
        lines.extend(
            f"    {e.phase} {e.record_id or e.hubspot_id}: {e.category}: {e.message}"
            for e in result.errors[:10]
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
