"""Starting a sync run from the admin API, against the HubSpot stand-in: the run goes
through and is recorded, its progress shows in the status while it works, a second
start is refused with 409 while one holds the lease, and a credit adjustment made by
an admin reaches HubSpot with the next run (the student saw it at once)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests

from lib import config
from local.standins.hubspot import CONTACTS, MOCK_EXAMS, Faults, HubSpotStandIn, serve
from tests.admin.conftest import ADMIN_EMAIL, AdminApi
from tests.helpers import CREDIT_KINDS, Db
from tests.sync.conftest import exam_properties

TOKEN = "pat-test-admin-standin"


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch, admin_settings: None) -> Iterator[HubSpotStandIn]:
    """A stand-in the API server's sync talks to during this test."""
    with serve(
        TOKEN, per_10s=10_000, interval_ms=1000, search_per_s=10_000, associations_per_10s=10_000
    ) as running:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("HUBSPOT_BASE_URL", running.url)
        monkeypatch.setenv("HUBSPOT_APP_ID", running.app_id)
        config.settings.cache_clear()
        yield running
    config.settings.cache_clear()


def in_both(db: Db, hubspot: HubSpotStandIn, **values: Any) -> dict[str, Any]:
    """A student PostgreSQL and HubSpot both hold, in step."""
    credits = {kind: int(values.pop(kind, 5)) for kind in CREDIT_KINDS}
    row = db.contact(**credits, **values)
    hubspot.put(
        CONTACTS,
        {"email": row["email"], "student_id": row["student_id"], **credits},
        id=row["hubspot_id"],
    )
    return row


def exam_in_both(db: Db, hubspot: HubSpotStandIn, days: int = 12) -> dict[str, Any]:
    row = db.exam(
        mock_type="Clinical Skills", capacity=500, exam_date=date.today() + timedelta(days)
    )
    hubspot.put(MOCK_EXAMS, exam_properties(row), id=row["hubspot_id"])
    return row


def hubspot_credits(hubspot: HubSpotStandIn, contact: dict[str, Any]) -> dict[str, int]:
    record = next(r for r in hubspot.objects(CONTACTS) if r["id"] == contact["hubspot_id"])
    return {kind: int(record["properties"].get(kind) or 0) for kind in CREDIT_KINDS}


def data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def test_run_now_syncs_and_records_the_run(
    admin: AdminApi, db: Db, hubspot: HubSpotStandIn
) -> None:
    exam = exam_in_both(db, hubspot)
    students = [in_both(db, hubspot, cs_credits=3) for _ in range(3)]
    for student in students:
        db.book(student, exam)
    before = data(admin.get("/api/admin/sync/status"))
    assert before["tables"]["bookings"]["awaiting_hubspot_id"] == 3

    run = data(admin.post("/api/admin/sync/runs", {"mode": "delta"}))

    assert run["status"] == "succeeded", run
    assert run["trigger"] == "admin"
    assert run["phases"]["bookings"]["created"] == 3
    assert run["records_synced"] >= 3 + 3  # the bookings and the balances they moved
    assert run["api_calls"] > 0
    # HubSpot reports its daily budget with every answer; the run keeps the last.
    assert run["daily_limit"] == 1_000_000
    assert 0 < run["daily_remaining"] < 1_000_000
    after = data(admin.get("/api/admin/sync/status"))
    assert after["tables"]["bookings"]["awaiting_hubspot_id"] == 0
    assert after["tables"]["contacts"]["changed_since_sync"] == 0
    assert after["last_finished"]["id"] == run["id"]
    assert after["rate_limit"]["daily_limit"] == 1_000_000
    assert {a["code"]: a["active"] for a in after["alerts"]} == {
        "OLDEST_PENDING_OVER_GOAL": False,
        "LAST_RUN_FAILED": False,
        "DAILY_BUDGET_LOW": False,
    }
    listed = data(admin.get("/api/admin/sync/runs"))["runs"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert data(admin.get(f"/api/admin/sync/runs/{run['id']}"))["errors"] == []


def test_a_full_pass_can_be_started_too(admin: AdminApi, db: Db, hubspot: HubSpotStandIn) -> None:
    exam_in_both(db, hubspot)
    in_both(db, hubspot)
    run = data(admin.post("/api/admin/sync/runs", {"mode": "full"}))
    assert (run["mode"], run["status"]) == ("full", "succeeded")
    assert data(admin.get("/api/admin/sync/status"))["last_runs"]["full"]["id"] == run["id"]


def test_run_now_is_refused_with_409_while_a_run_holds_the_lease(
    admin: AdminApi, db: Db, hubspot: HubSpotStandIn
) -> None:
    holder = str(uuid.uuid4())
    db.conn.execute(
        "insert into hubspot_sync.sync_lease (name, run_id, expires_at, ttl_s)"
        " values ('hubspot', %s, now() + interval '5 minutes', 360)",
        (holder,),
    )
    refused = admin.post("/api/admin/sync/runs", {"mode": "delta"})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "SYNC_IN_PROGRESS"
    assert holder in error["message"]
    assert refused.headers["Retry-After"] == "60"
    # Answered from the lease alone: no refused run recorded, HubSpot not called.
    assert db.count("sync_runs") == 0
    assert hubspot.requests() == []


def test_the_running_run_shows_its_progress_and_a_second_start_is_409(
    admin: AdminApi, db: Db, hubspot: HubSpotStandIn
) -> None:
    exam = exam_in_both(db, hubspot)
    for _ in range(6):
        db.book(in_both(db, hubspot, cs_credits=2), exam)
    # Every HubSpot answer takes 400 ms: the run lasts a few seconds.
    hubspot.set_faults(Faults(latency_ms=400))
    answers: list[requests.Response] = []
    starter = threading.Thread(
        target=lambda: answers.append(admin.post("/api/admin/sync/runs", {"mode": "delta"}))
    )
    starter.start()

    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while starter.is_alive() and time.monotonic() < deadline:
        status = data(admin.get("/api/admin/sync/status"))
        if status["running"] is not None:
            seen.append(status)
            if len(seen) == 2:
                second = admin.post("/api/admin/sync/runs", {"mode": "full"})
                assert second.status_code == 409
                assert second.json()["error"]["code"] == "SYNC_IN_PROGRESS"
        time.sleep(0.1)
    starter.join(timeout=60)

    assert seen, "the status never showed the run while it worked"
    running = seen[-1]["running"]
    assert running["status"] == "running"
    assert seen[-1]["lease"]["run_id"] == running["id"]
    assert running["duration_ms"] > 0
    assert set(running["phases"]) <= {"exams", "contacts", "credits", "bookings", "seats"}
    assert running["phases"], "phases are recorded as the run goes"
    finished = data(answers[0])
    assert finished["id"] == running["id"]
    assert finished["status"] == "succeeded"
    assert data(admin.get("/api/admin/sync/status"))["running"] is None


def test_concurrent_starts_run_once(admin: AdminApi, db: Db, hubspot: HubSpotStandIn) -> None:
    """Two clicks at the same moment: the lease lets one run; the other is 409."""
    exam = exam_in_both(db, hubspot)
    db.book(in_both(db, hubspot), exam)
    hubspot.set_faults(Faults(latency_ms=200))
    barrier = threading.Barrier(2)
    answers: list[requests.Response] = []

    def click() -> None:
        barrier.wait()
        answers.append(admin.post("/api/admin/sync/runs", {"mode": "delta"}))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(a.status_code for a in answers) == [200, 409]
    done = db.all("select status from hubspot_sync.sync_runs where status <> 'refused'")
    assert [r["status"] for r in done] == ["succeeded"]


def test_a_run_that_hits_the_daily_limit_raises_both_alerts(
    admin: AdminApi, db: Db, hubspot: HubSpotStandIn
) -> None:
    exam = exam_in_both(db, hubspot)
    db.book(in_both(db, hubspot), exam)
    hubspot.set_limits(daily=2)

    run = data(admin.post("/api/admin/sync/runs", {"mode": "delta"}))

    assert run["status"] == "daily_limit"
    status = data(admin.get("/api/admin/sync/status"))
    active = {a["code"] for a in status["alerts"] if a["active"]}
    assert {"LAST_RUN_FAILED", "DAILY_BUDGET_LOW"} <= active
    assert status["rate_limit"]["daily_remaining"] == 0
    assert status["healthy"] is False


def test_run_now_without_hubspot_configured_is_503(
    admin: AdminApi, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    config.settings.cache_clear()
    response = admin.post("/api/admin/sync/runs", {"mode": "delta"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "HUBSPOT_UNAVAILABLE"
    assert db.count("sync_runs") == 0


@pytest.mark.parametrize("body", [{"mode": "everything"}, {"mode": "delta", "dry_run": True}])
def test_a_bad_run_request_is_400(admin: AdminApi, db: Db, body: dict[str, Any]) -> None:
    response = admin.post("/api/admin/sync/runs", body)
    assert response.status_code == 400
    assert db.count("sync_runs") == 0


def test_a_credit_adjustment_reaches_hubspot_with_the_next_run(
    admin: AdminApi, db: Db, hubspot: HubSpotStandIn
) -> None:
    """The issue's end-to-end case: the admin adds credits; the student's login shows
    them at once; HubSpot shows them after the next run; the audit log says who, when
    and why."""
    student = in_both(db, hubspot, sj_credits=2, shared_mock_credits=1)
    adjusted = data(
        admin.post(
            f"/api/admin/students/{student['id']}/credits",
            {"deltas": {"sj_credits": 4, "shared_mock_credits": -1}, "reason": "Bought a 4-pack"},
        )
    )
    login = data(
        admin.post(
            "/api/user/login", {"student_id": student["student_id"], "email": student["email"]}
        )
    )
    assert login["credits"] == adjusted["contact"]["credits"]
    assert login["credits"]["sj_credits"] == 6
    assert hubspot_credits(hubspot, student)["sj_credits"] == 2  # not yet

    run = data(admin.post("/api/admin/sync/runs", {"mode": "delta"}))

    assert run["status"] == "succeeded"
    assert hubspot_credits(hubspot, student) == login["credits"]
    history = data(admin.get(f"/api/admin/students/{student['id']}"))["credit_history"]
    by_admin = [h for h in history if h["by"] == f"admin:{ADMIN_EMAIL}"]
    assert len(by_admin) == 1
    assert by_admin[0]["reason"] == "Bought a 4-pack"
    assert by_admin[0]["after"] == {"sj_credits": 6, "shared_mock_credits": 0}
    assert by_admin[0]["at"]
    # A purchase made in HubSpot afterwards is merged, not overwritten, by the next run.
    hubspot.put(CONTACTS, {"sj_credits": "9"}, id=student["hubspot_id"])
    data(admin.post("/api/admin/sync/runs", {"mode": "full"}))
    assert db.credits(student)["sj_credits"] == 9
