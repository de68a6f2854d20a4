"""The sync benchmark, end to end at the smallest scale, on the test server. Never
asserts timing (figures from a shared test machine mean nothing): only that the
harness loads, syncs, reads the stand-in's log, checks every booking and reports."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import report
from bench import sync as bench_sync


@pytest.mark.slow
def test_a_small_run_syncs_every_booking_and_reports(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    from lib import migrations

    url = new_database()
    migrations.up(url)

    outcome = bench_sync.measure(url, bookings=300, rate=1000)

    assert outcome.checks_ok, outcome
    assert (outcome.synced, outcome.in_hubspot, outcome.associated) == (300, 300, 300)
    assert outcome.writes == 3  # creates of 100 a call
    assert outcome.associations == 0  # made inline, with each create
    assert outcome.peak_rss_mib > 0
    section = bench_sync.render(outcome, "./run bench sync --smoke")
    assert section.startswith("## HubSpot sync: booking throughput")
    path = tmp_path / "BENCHMARKS.md"
    report.update_section(path, bench_sync.SECTION, section)
    start, end = report.markers("sync")
    assert (start, end) == ("<!-- bench:sync:start -->", "<!-- bench:sync:end -->")
    text = path.read_text()
    assert text.index(start) < text.index("calls per booking") < text.index(end)


def test_command_line() -> None:
    parser = argparse.ArgumentParser()
    bench_sync.add_arguments(parser)
    args = parser.parse_args(["--smoke"])
    assert args.smoke and args.bookings == bench_sync.DEFAULT_BOOKINGS and args.rate == 190
