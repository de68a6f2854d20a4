"""`./run bench path-cpu` at the smallest scale, on the test servers.

Never asserts timing (figures from a shared test machine mean nothing): it holds the
harness to booking for real through every way, to checking each answer and the
database, and to leaving no scratch database behind, even when a run fails.
"""

from __future__ import annotations

import argparse
import functools
import uuid
from pathlib import Path

import psycopg
import pytest

from bench import load_data, path_cpu, report
from tests.bench.scratch import redis_db

CALLS = 5


def _exists(admin_url: str, database: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("select count(*) from pg_database where datname = %s", (database,))
        return bool(row.fetchone()[0])  # type: ignore[index]


def test_every_way_books_for_real_and_nothing_is_left(
    pg_admin_url: str, redis_url: str, tmp_path: Path
) -> None:
    database = f"bench_path_test_{uuid.uuid4().hex[:12]}"
    result = path_cpu.measure(
        pg_admin_url,
        redis_db(redis_url),
        calls=CALLS,
        rounds=1,
        log_dir=tmp_path,
        history=load_data.SMOKE_HISTORY_BOOKINGS,
        database=database,
    )
    assert [f.way for f in result.figures] == list(path_cpu.WAYS)
    for figure in result.figures:
        assert len(figure.cpu_us) == 1 and figure.cpu > 0 and figure.wall > 0
    # Every booking answered 201 was counted in the database, warm-up ones included.
    assert result.bookings == len(path_cpu.WAYS) * (path_cpu.WARM_UP + CALLS)
    assert result.redis_floor_us > 0 and result.log_write_us > 0
    assert result.floor_us > result.bare
    # The three function ways really ran the function: one log line per booking.
    lines = (tmp_path / "path-cpu.log").read_text().splitlines()
    booked = [line for line in lines if '"route":"bookings.create"' in line]
    assert len(booked) == 3 * (path_cpu.WARM_UP + CALLS)
    assert all('"status":201' in line for line in booked)
    assert not _exists(pg_admin_url, database)
    # The report: one row per way in order, the floor and the reading from the figures.
    text = path_cpu.report_section(result, CALLS)
    lines = text.splitlines()
    head = lines.index("| way | CPU us per booking | range | / bare | wall us per booking |")
    assert [row.split(" | ")[0].lstrip("| ") for row in lines[head + 2 : head + 6]] == [
        w.label for w in path_cpu.WAYS
    ]
    assert f"{result.floor_us / result.bare:.2f}x** the bare endpoint" in text
    plain = result.figures[1].cpu - result.bare
    assert f"costs {plain:.0f} us more than the bare endpoint without Redis" in text
    report_file = tmp_path / "BENCHMARKS.md"
    report.update_section(report_file, path_cpu.NAME, text)
    assert "<!-- bench:path-cpu:start -->" in report_file.read_text()


def test_a_run_whose_bookings_are_refused_fails_and_drops_its_database(
    pg_admin_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Negative control: students without a credit are answered 402, never 201.
    monkeypatch.setattr(load_data, "Population", functools.partial(load_data.Population, credits=0))
    database = f"bench_path_test_{uuid.uuid4().hex[:12]}"
    with pytest.raises(RuntimeError, match="not all 201"):
        path_cpu.measure(
            pg_admin_url,
            redis_db(redis_url),
            calls=CALLS,
            rounds=1,
            log_dir=tmp_path,
            ways=path_cpu.WAYS[:1],
            history=0,
            database=database,
        )
    assert not _exists(pg_admin_url, database)


def test_it_refuses_an_empty_measurement() -> None:
    args = argparse.Namespace(database_url="", redis_url="", calls=1, rounds=0)
    with pytest.raises(SystemExit, match="at least 1"):
        path_cpu.main(args)
