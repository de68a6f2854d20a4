"""The torture at its short size, as the test command runs it: the real server under
concurrent clients, every fault injected once (Redis and PostgreSQL really stopped
and started, HubSpot slow, failing, rate-limiting and losing answers, sync processes
SIGKILLed), then the checker (tests/reliability/test_checker.py shows it can fail).

`./run reliability torture` runs the long size and writes RELIABILITY.md."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reliability import checker, torture
from reliability.__main__ import DEFAULT_SEED
from reliability.outcome import RunSettings

EVERY_FAULT = {
    "redis_down",
    "postgres_restart",
    "hubspot_slow",
    "hubspot_failing",
    "hubspot_429",
    "hubspot_lost",
    "sync_killed",
}


@pytest.fixture(scope="module")
def result() -> Iterator[torture.TortureResult]:
    yield torture.torture(RunSettings(seed=DEFAULT_SEED, long=False))


@pytest.mark.slow
def test_no_invariant_is_violated_and_no_fault_breaks_a_promise(
    result: torture.TortureResult,
) -> None:
    assert result.passed, "\n".join(result.problems)
    assert {w.fault.name for w in result.windows} == EVERY_FAULT
    assert result.final.count == 0 and result.hubspot.count == 0


@pytest.mark.slow
def test_the_run_did_real_work_under_every_fault(result: torture.TortureResult) -> None:
    kinds = {op.kind for op in result.history.answered() if op.outcome == "ok"}
    assert {"book", "replay", "cancel", "admin_cancel", "adjust", "login"} <= kinds
    assert {"read.capacity", "read.available", "read.list", "read.validate"} <= kinds
    for window in result.windows:
        assert window.student_ok > 0, f"nothing succeeded around {window.fault.name}"
    assert result.kills["killed"] >= 1, "no sync was killed mid-run"
    assert result.purchases > 0, "no HubSpot-side change was merged"
    # Each check looked at something: a check that examines nothing passes vacuously.
    for check in checker.CHECKS:
        assert result.final.examined[check] > 0, check
    for check in checker.HUBSPOT_CHECKS:
        assert result.hubspot.examined[check] > 0, check


@pytest.mark.slow
def test_students_never_see_a_5xx_while_redis_or_hubspot_fail(
    result: torture.TortureResult,
) -> None:
    # The promise each fault makes is checked inside the run (FaultWindow.problems);
    # here, the figures that show it was exercised: answers came during each fault.
    for window in result.windows:
        if window.fault.name != "postgres_restart":
            assert not any(status.startswith("5") for status in window.during), window.during
            assert "no answer" not in window.during, window.during


@pytest.fixture(scope="module")
def pooled_result() -> Iterator[torture.TortureResult]:
    yield torture.torture(RunSettings(seed=DEFAULT_SEED, long=False), torture.SHORT_POOLED)


@pytest.mark.slow
def test_through_a_transaction_pooler_nothing_is_violated_and_nothing_breaks(
    pooled_result: torture.TortureResult,
) -> None:
    # The functions and the sync reach PostgreSQL through PgBouncer in transaction mode,
    # as production reaches Supabase: a prepared statement or session state leaking
    # between transactions would show as 5xx (a broken promise) or a server-log error.
    assert pooled_result.passed, "\n".join(pooled_result.problems)
    assert {w.fault.name for w in pooled_result.windows} == EVERY_FAULT
    assert pooled_result.final.count == 0 and pooled_result.hubspot.count == 0
    kinds = {op.kind for op in pooled_result.history.answered() if op.outcome == "ok"}
    assert {"book", "replay", "cancel", "admin_cancel", "adjust", "login"} <= kinds
    assert pooled_result.server_log["tracebacks"] == 0
    assert "PgBouncer" in torture.render(pooled_result)


def test_the_report_names_the_seed_the_faults_and_the_checks(
    result: torture.TortureResult,
) -> None:
    text = torture.render(result)
    assert f"--seed {DEFAULT_SEED}" in text
    for name in EVERY_FAULT:
        assert name in text
    assert "bank_balance" in text and "hubspot_credits" in text


def test_a_second_torture_waits_for_the_first() -> None:
    """Two runs on one machine would restart the embedded servers under each other."""
    import threading
    import time

    entered = threading.Event()
    release = threading.Event()

    def first() -> None:
        with torture._one_torture_at_a_time():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=first)
    holder.start()
    assert entered.wait(5)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    with torture._one_torture_at_a_time():
        waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.4
