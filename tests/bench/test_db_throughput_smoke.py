"""The throughput harness, end to end at the smallest scale, on the test server.

Never asserts timing: figures from a shared test machine mean nothing. What it holds
the harness to is that every transaction it measures is a real booking, that it
notices when one is not (negative controls), and that its report renders.
"""

from __future__ import annotations

import argparse
import math
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from bench import db_report, db_throughput, load_data, pgbench
from bench.db_throughput import Plan
from bench.stats import Percentiles


@pytest.fixture
def plan(pg_admin_url: str) -> Iterator[Plan]:
    """A smoke plan on a scratch database of this test's own, dropped afterwards."""
    name = f"bench_booking_test_{uuid.uuid4().hex[:12]}"
    smoke = db_throughput.smoke(Plan(admin_url=pg_admin_url, database=name))
    yield smoke
    db_throughput.drop_database(smoke)


@pytest.mark.slow
def test_smoke_run_measures_real_bookings_and_reports(plan: Plan) -> None:
    outcome = db_throughput.run(plan, progress=lambda _: None)

    assert [(r.scenario, r.clients, r.audit) for r in outcome.runs] == [
        ("hot", 1, True),
        ("hot", 4, True),
        ("spread", 1, True),
        ("spread", 4, True),
    ]
    for r in outcome.runs:
        assert r.problems == (), r
        assert r.bookings > 0
        assert r.bookings == r.transactions
        assert r.tps > 0
        assert not math.isnan(r.latency.p99)
    assert outcome.ok

    # The last run's state, read directly (the loaded history left out): one active
    # booking per student used, each paid with that student's one credit, every seat
    # counted on the exam booked.
    with psycopg.connect(plan.database_url, autocommit=True) as conn:
        row = conn.execute(
            f"""
            select count(*), count(distinct student_id), count(*) filter (where is_active = 'Active'),
                   (select sum(held) from hubspot_sync.exam_seat_shards),
                   (select count(*) from hubspot_sync.hubspot_contact_credits where cs_credits = 0),
                   (select last_value from public.bench_student_seq)
              from hubspot_sync.hubspot_bookings
             where {load_data.RUN_BOOKING}
            """
        ).fetchone()
    assert row is not None
    bookings, students, active, seats, spent, calls = row
    assert bookings == students == active == seats == spent == calls

    text = db_report.render(outcome, db_throughput.command_line(plan))
    assert "## Booking function throughput (database side)" in text
    assert "`./run bench db --report --duration 1 --warmup 1 --clients 1,4`" in text
    assert "| scenario | clients | threads | bookings/s |" in text
    for r in outcome.runs:
        assert f"| {r.scenario} | {r.clients} | {r.threads} |" in text
    assert "FAILED" not in text
    assert "seat shards" in text  # the reading is there
    assert "Target: the hot exam at 4 clients >= 90% of spread at 4 clients" in text
    assert "Before issue 16" in text


def _result(scenario: str, tps: float) -> db_throughput.RunResult:
    return db_throughput.RunResult(
        scenario=scenario, clients=32, threads=2, audit=True, transactions=1, bookings=1,
        tps=tps, latency_avg_ms=1.0, latency=Percentiles(1.0, 1.0, 1.0),
        wal_bytes=0, waits=(), tps_repeats=(tps,), other_transactions=0,
        other_active_backends=0.0, other_cpu_cores=0.0, problems=(),
    )  # fmt: skip


@pytest.mark.parametrize(("hot", "verdict"), [(900.0, "90.0%, met"), (899.0, "89.9%, NOT met")])
def test_hot_share_verdict_judges_the_runs_own_figures(hot: float, verdict: str) -> None:
    runs = [_result("hot", hot), _result("spread", 1000.0)]
    text = db_report.hot_share_verdict(runs, 32, audit=True)
    assert f"{hot:,.0f} / 1,000 = {verdict}" in text


def test_hot_share_verdict_needs_both_scenarios() -> None:
    assert db_report.hot_share_verdict([_result("hot", 900.0)], 32, audit=True) == ""


@pytest.mark.slow
def test_run_with_audit_trigger_off_writes_no_audit_rows(plan: Plan) -> None:
    db_throughput.create_database(plan)
    with psycopg.connect(plan.database_url, autocommit=True) as conn:
        result = db_throughput.measure(conn, plan, "spread", 2, audit=False)
        audit_rows = conn.execute("select count(*) from hubspot_sync.supabase_audit_log").fetchone()
    assert result.problems == ()
    assert result.bookings > 0
    assert audit_rows == (0,)


@pytest.mark.slow
def test_calls_that_book_nothing_are_reported(plan: Plan) -> None:
    """Negative control: replaying students already booked (the sequence restarted, so
    each call is an idempotent replay answering ok) writes nothing, and verify() must
    say so rather than count the replays as bookings."""
    db_throughput.create_database(plan)
    with psycopg.connect(plan.database_url, autocommit=True) as conn:
        db_throughput.reset(conn, plan, audit=True)

        def one_second() -> pgbench.PgbenchResult:
            return pgbench.run(
                plan.database_url,
                db_throughput.script("hot"),
                clients=1,
                threads=1,
                duration_s=1,
                protocol=plan.protocol,
                log_latencies=False,
            )

        def bookings() -> int:
            row = conn.execute(
                f"select count(*) from hubspot_sync.hubspot_bookings where {load_data.RUN_BOOKING}"
            ).fetchone()
            assert row is not None
            return int(row[0])

        first = one_second()
        booked = bookings()
        assert db_throughput.verify(first, booked, plan, conn) == []
        conn.execute("alter sequence public.bench_student_seq restart")
        replayed = one_second()
        problems = db_throughput.verify(replayed, bookings() - booked, plan, conn)
    assert any("rejected or replayed" in problem for problem in problems), problems


@pytest.mark.slow
def test_broken_invariants_are_reported(plan: Plan) -> None:
    """Negative control: a seat count out of step and a negative balance are caught
    (in the scratch database only)."""
    db_throughput.create_database(plan)
    with psycopg.connect(plan.database_url, autocommit=True) as conn:
        db_throughput.reset(conn, plan, audit=False)
        assert db_throughput.invariant_violations(conn, plan, audit=False) == []
        conn.execute(
            "update hubspot_sync.exam_seat_shards set held = 1 where shard = 0 and exam_id ="
            " (select id from hubspot_sync.hubspot_mock_exams where hubspot_id = 'BENCH-7')"
        )
        # The safety-net trigger already forbids it; the check must hold on its own too.
        conn.execute(
            "drop trigger contact_credits_non_negative on hubspot_sync.hubspot_contact_credits"
        )
        conn.execute(
            "update hubspot_sync.hubspot_contact_credits set sj_credits = -1"
            " where student_id = 'B3'"
        )
        problems = db_throughput.invariant_violations(conn, plan, audit=False)
    assert any("seat counts differ" in problem for problem in problems), problems
    assert any("negative credit" in problem for problem in problems), problems


def test_command_line_makes_the_plan_and_names_it_back() -> None:
    parser = argparse.ArgumentParser()
    db_throughput.add_arguments(parser)
    args = parser.parse_args(
        [
            "--database-url",
            "postgresql://u@db.example:6543/postgres",
            *("--clients", "2,3", "--audit", "both", "--repeat", "3"),
            *("--duration", "5", "--protocol", "simple"),
        ]
    )
    plan = db_throughput.plan_from(args)
    assert (plan.clients, plan.audit, plan.repeat, plan.duration_s, plan.protocol) == (
        (2, 3),
        (True, False),
        3,
        5,
        "simple",
    )
    assert psycopg.conninfo.conninfo_to_dict(plan.database_url) == {
        "host": "db.example",
        "port": "6543",
        "user": "u",
        "dbname": "bench_booking",
    }
    assert db_throughput.command_line(plan) == (
        "./run bench db --report --duration 5 --clients 2,3 --protocol simple --audit both"
        " --repeat 3"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--repeat", "0"])


def test_smoke_is_small_whatever_else_was_asked() -> None:
    plan = db_throughput.smoke(Plan(clients=(64,), duration_s=600, repeat=5))
    assert (plan.clients, plan.duration_s, plan.warmup_s, plan.repeat) == ((1, 4), 1, 1, 1)
    assert not plan.require_quiet


def test_a_run_that_shared_the_machine_is_recognised() -> None:
    quiet = db_throughput.RunResult(
        scenario="hot",
        clients=1,
        threads=1,
        audit=True,
        transactions=100,
        bookings=100,
        tps=100.0,
        latency_avg_ms=1.0,
        latency=Percentiles(1.0, 1.0, 1.0),
        wal_bytes=0,
        waits=(),
        tps_repeats=(100.0,),
        other_transactions=3,
        other_active_backends=0.0,
        other_cpu_cores=0.02,
        problems=(),
    )
    assert not quiet.shared
    assert replace(quiet, other_cpu_cores=None).shared is False  # unknown is not busy
    assert replace(quiet, other_transactions=5_000).shared
    assert replace(quiet, other_active_backends=0.8).shared
    assert replace(quiet, other_cpu_cores=1.0).shared
    assert "0.80 busy backends" in replace(quiet, other_active_backends=0.8).describe_sharing()
