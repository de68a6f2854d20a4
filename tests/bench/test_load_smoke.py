"""The HTTP load benchmark, end to end at the smallest scale, on the test servers.

Never asserts timing: figures from a shared test machine mean nothing. What it holds
the harness to: every part runs against real servers and reports, the invariants it
checks hold after a correct run, and they catch a broken state when there is one
(negative controls), as does a generator that gets no answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench import load, load_client, load_data, load_report, load_stats, machine, report
from bench.load_client import Sample
from bench.load_data import Population
from local.server import port_in_use
from tests.bench.scratch import redis_db


def _free_port_pair() -> int:
    """A port p with p and p + 1 free (the API and the bare endpoint)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65535 and not port_in_use("127.0.0.1", port + 1):
            return port
    raise RuntimeError("no two adjacent free ports")


@pytest.fixture
def plan(pg_admin_url: str, redis_url: str) -> load.Plan:
    return load.smoke(
        load.Plan(
            admin_url=pg_admin_url,
            database=f"bench_load_test_{uuid.uuid4().hex[:12]}",
            redis_url=redis_db(redis_url),
            port=_free_port_pair(),
        )
    )


@pytest.fixture
def scratch(plan: load.Plan) -> Iterator[str]:
    """The plan's scratch database, migrated, dropped afterwards."""
    url = load_data.create_database(plan.admin_url, plan.database)
    yield url
    load_data.drop_database(plan.admin_url, plan.database)


@pytest.mark.slow
def test_smoke_run_measures_every_part_and_reports(plan: load.Plan, tmp_path: Path) -> None:
    lines: list[str] = []
    try:
        outcome = load.run(plan, progress=lines.append)
    finally:
        shutil.rmtree(load.LOGS_DIR / plan.database, ignore_errors=True)  # the servers' logs

    assert outcome.problems == [], outcome.problems
    [rush] = outcome.rushes
    by_endpoint = {e.endpoint: e for e in rush.endpoints}
    assert set(by_endpoint) == {*load_client.ENDPOINTS, "all"}
    assert by_endpoint["login"].requests == plan.rush_students
    cancels = round(plan.cancel_fraction * plan.rush_students)
    assert by_endpoint["cancel"].requests == cancels
    assert by_endpoint["create"].requests == plan.rush_students + cancels
    assert rush.checks.active == plan.rush_students
    assert rush.checks.cancelled == cancels
    assert by_endpoint["all"].errors == 0
    assert set(rush.in_function) == set(load_client.ENDPOINTS)  # read from the server's log
    # The same rush at half the arrival rate: half the students, all answered.
    [(share, lighter)] = outcome.lighter_rushes
    assert share == 0.5
    half = round(plan.rush_students * share)
    assert lighter.checks.active == half
    assert {e.endpoint: e.requests for e in lighter.endpoints}["login"] == half

    assert [(s.target, [lv.concurrency for lv in s.levels]) for s in outcome.sweeps] == [
        ("api", list(plan.levels)),
        ("bare", list(plan.levels)),
    ]
    for sweep in outcome.sweeps:
        assert all(lv.requests > 0 and lv.bookings_per_s > 0 for lv in sweep.levels), sweep

    [stampede] = outcome.stampedes
    assert (stampede.booked, stampede.full, stampede.other) == (
        plan.stampede_seats,
        plan.stampede_creates - plan.stampede_seats,
        (),
    )
    assert outcome.db is not None and outcome.db.best > 0
    assert outcome.cold is not None
    assert [f.file for f in outcome.cold.functions] == ["api/health.py"]

    plots = load_report.plots(outcome, tmp_path)
    assert set(plots) == {"rush", "ceiling", "stampede"}
    for path in plots.values():
        assert Path(path).read_bytes().startswith(b"\x89PNG")
    text = load_report.render(outcome, load.command_line(plan), plots)
    for heading in ("### 1. Booking rush", "### 2. Throughput ceiling", "### 3. Stampede"):
        assert heading in text
    assert "### 4. Sync rate" in text and "### 5. Cold start" in text
    assert "API / bare" in text and "API / function" in text
    # Issue 16's ratios are computed from this run's own figures, not left out.
    assert "rush P95 create / unloaded P95 = **" in text
    assert "The same rush at lower arrival rates" in text
    assert "| 50% |" in text and "| 100% |" in text
    assert "Server CPU per booking, API / bare: **" in text and "nanx" not in text
    assert "**Problems:**" not in text

    # The scratch database is gone.
    with psycopg.connect(plan.admin_url, autocommit=True) as conn:
        row = conn.execute("select 1 from pg_database where datname = %s", (plan.database,))
        assert row.fetchone() is None


def test_checks_catch_oversold_unpaid_and_unanswered_bookings(
    plan: load.Plan, scratch: str
) -> None:
    """Negative control: a correct booking passes; an exam over capacity, a seat held
    by a completed booking, a credit appearing from nowhere, a booking nobody was told
    about and one the client was told about that does not exist are each reported."""
    population = Population(
        students=3, exams=1, capacity=1, history=load_data.SMOKE_HISTORY_BOOKINGS
    )
    [exam] = load_data.reset(scratch, plan.redis_url, population)
    with psycopg.connect(scratch, autocommit=True) as conn:
        row = conn.execute(
            "select hubspot_sync.book(p_student_id => %s, p_email => %s, p_exam_id => %s,"
            " p_dominant_hand => 'right')",
            (population.student_id(1), population.email(1), exam.id),
        ).fetchone()
        assert row is not None and row[0]["ok"], row
        booking = str(row[0]["booking"]["id"])
        assert load_data.check(scratch, population, {booking}).problems == []

        assert any("never answered" in p for p in load_data.check(scratch, population, ()).problems)
        phantom = load_data.check(scratch, population, {booking, str(uuid.uuid4())})
        assert any("not in the database" in p for p in phantom.problems)

        # A Completed booking holds no seat (20251203000900): marked so behind book()'s
        # back, the seat it still holds is a count that differs from the bookings.
        conn.execute("update hubspot_sync.hubspot_bookings set is_active = 'Completed'")
        completed = load_data.check(scratch, population, {booking}).problems
        assert any("seat counts differ" in p for p in completed), completed
        conn.execute("update hubspot_sync.hubspot_bookings set is_active = 'Active'")

        conn.execute("update hubspot_sync.hubspot_mock_exams set capacity = 0")
        conn.execute("update hubspot_sync.hubspot_contact_credits set cs_credits = cs_credits + 1")
        problems = load_data.check(scratch, population, {booking}).problems
    assert any("oversold" in p for p in problems), problems
    assert any("credits not conserved" in p for p in problems), problems


def _idempotency_lookup_plan(conn: psycopg.Connection) -> str:
    """How a session that has run book() a few times finds a booking by its key: the
    generic plan a plpgsql function keeps for its session."""
    conn.execute("set plan_cache_mode = force_generic_plan")
    conn.execute(
        "prepare by_key(text) as"
        " select * from hubspot_sync.hubspot_bookings where idempotency_key = $1"
    )
    rows = conn.execute("explain execute by_key('k')").fetchall()
    conn.execute("deallocate by_key")
    return "\n".join(str(r[0]) for r in rows)


def test_reset_loads_a_history_the_checks_leave_out_and_the_planner_indexes(
    plan: load.Plan, scratch: str
) -> None:
    """The school's past bookings are loaded (synced, on closed exams), a run's checks
    see none of them, and with them the planner looks a key up by index. Negative
    control: the same database without the history plans a sequential scan, the cost
    that grew with every booking of a run (bench/load_data.py, HISTORY_BOOKINGS)."""
    population = Population(students=3, exams=1, capacity=1, history=load_data.HISTORY_BOOKINGS)
    load_data.reset(scratch, plan.redis_url, population)
    with psycopg.connect(scratch, autocommit=True) as conn:
        row = conn.execute(
            "select count(*), count(*) filter (where hubspot_last_sync_at is null),"
            " count(distinct associated_mock_exam)"
            " from hubspot_sync.hubspot_bookings where associated_mock_exam like 'HIST-%'"
        ).fetchone()
        assert row == (load_data.HISTORY_BOOKINGS, 0, load_data.HISTORY_EXAMS)
        # Nothing for the sync to send, nothing a student of the run could book.
        pending = conn.execute("select hubspot_sync.sync_pending_counts(false)").fetchone()
        assert pending is not None and pending[0]["bookings"] == 0, pending
        checks = load_data.check(scratch, population, ())
        assert checks.problems == []
        assert checks.bookings == 0
        assert "Index Scan" in _idempotency_lookup_plan(conn)

        conn.execute("truncate hubspot_sync.hubspot_bookings cascade")
        conn.execute("vacuum (analyze) hubspot_sync.hubspot_bookings")
        assert "Seq Scan" in _idempotency_lookup_plan(conn)


def test_a_server_that_does_not_answer_is_reported() -> None:
    """Negative control: the generator records unanswered requests as such (status 0)
    rather than dropping them, and the rush's verdict counts them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])  # closed again: nothing listens there
    population = Population(
        students=3, exams=1, capacity=3, history=load_data.SMOKE_HISTORY_BOOKINGS
    )
    run = asyncio.run(
        load_client.rush(f"http://127.0.0.1:{port}", population, 0.1, 0.0, seed=1, connections=4)
    )
    assert [s.endpoint for s in run.samples] == ["login"] * 3
    assert all(not s.answered for s in run.samples)
    stats = load_stats.endpoint_stats(run.samples, run.duration_s)
    assert stats[-1].unanswered == stats[-1].errors == 3


def test_ceiling_is_the_best_level_within_the_bound() -> None:
    def level(concurrency: int, rate: float, p95: float, errors: int = 0) -> load_stats.Level:
        return load_stats.Level(concurrency, rate, 1.0, p95, p95, 100, errors, 1.0, ())

    levels = [level(1, 100, 5), level(8, 900, 150), level(16, 950, 250), level(32, 990, 90, 1)]
    best = load_stats.ceiling(levels)
    assert best is not None and best.concurrency == 8
    assert load_stats.ceiling([level(1, 10, 300)]) is None


def test_level_counts_bookings_answered_in_the_window() -> None:
    samples = [
        Sample("create", 0.5, 10, 201, None),  # warm-up: not counted
        Sample("create", 1.0, 10, 201, None),
        Sample("create", 1.5, 20, 409, "EXAM_FULL"),
        Sample("create", 2.9, 200, 201, None),  # ends after the window: latency only
    ]
    lv = load_stats.level(4, samples, (1.0, 3.0), 1.5, {"api": 1.0})
    assert (lv.requests, lv.errors, lv.bookings_per_s) == (3, 1, 0.5)
    assert not lv.within_bound


def test_sync_section_is_read_when_present(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    assert load.sync_section(path) is None
    report.update_section(path, "sync", "## Sync\n\n- 50,000 bookings")
    assert load.sync_section(path) == "## Sync\n\n- 50,000 bookings"


def test_command_line_makes_the_plan_and_names_it_back() -> None:
    parser = argparse.ArgumentParser()
    load.add_arguments(parser)
    args = parser.parse_args(
        ["--students", "500", "--arrival", "5", "--levels", "2,4", "--repeat", "1"]
    )
    plan = load.plan_from(args)
    assert (plan.rush_students, plan.rush_arrival_s, plan.levels, plan.repeat) == (
        500,
        5.0,
        (2, 4),
        1,
    )
    assert load.command_line(plan) == (
        "./run bench load --report --students 500 --arrival 5.0 --repeat 1 --levels 2,4"
    )
    smoke = load.plan_from(parser.parse_args(["--smoke", "--students", "5000"]))
    assert smoke.smoke and smoke.rush_students < 100 and smoke.repeat == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["--cancel-fraction", "2"])


def test_the_api_without_redis_is_an_experiment_named_as_such() -> None:
    parser = argparse.ArgumentParser()
    load.add_arguments(parser)
    plan = load.plan_from(parser.parse_args(["--api-without-redis", "--repeat", "1"]))
    caller = {"PATH": "/usr/bin", "REDIS_URL": "redis://elsewhere:6379/0"}
    # The servers get no Redis at all (lib.redis_client.redis() is then None and the
    # booking goes to the database alone); the normal plan passes its own Redis.
    assert "REDIS_URL" not in plan.setup().environment(caller)
    assert load.Plan().setup().environment(caller)["REDIS_URL"] == load.Plan().redis_url
    assert load.command_line(plan) == "./run bench load --repeat 1 --api-without-redis"
    with pytest.raises(SystemExit, match="experiment"):
        load.main(parser.parse_args(["--api-without-redis", "--report"]))


def test_quiet_needs_a_low_load_no_other_suite_and_few_database_sessions() -> None:
    assert machine.Quiet(0.1, ()).ok
    assert machine.Quiet(0.1, (), database_sessions=2).ok
    assert not machine.Quiet(0.9, ()).ok
    assert not machine.Quiet(0.1, ("python -m pytest",)).ok
    assert not machine.Quiet(0.1, (), database_sessions=40).ok
    assert "40 other PostgreSQL sessions" in machine.Quiet(0.1, (), 40).describe()


def test_cpu_meter_gives_this_process_its_cpu() -> None:
    meter = machine.CpuMeter({"me": lambda: [os.getpid()], "nobody": list})
    meter.start()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    use = meter.stop()
    assert use.groups["me"] > 0.1  # cores, over the wall-clock time measured
    assert use.groups["nobody"] == 0.0
    assert use.cores_busy >= use.groups["me"] * 0.5
    assert "me" in use.describe()
