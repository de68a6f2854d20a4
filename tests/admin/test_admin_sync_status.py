"""The sync as the dashboard reads it: backlog per table and its age against the
2-hour goal, the last runs, rate-limit use, the alert conditions, the runs list and
one run in detail. Runs are recorded here the way the sync records them (rows of
sync_runs, sync_run_errors, sync_lease), so every state can be set up exactly."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from tests.admin.conftest import AdminApi
from tests.helpers import Db

HOUR = 3600


def data(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def phases(**records: tuple[int, int]) -> dict[str, Any]:
    """{"bookings": (created, updated)} -> sync_runs.phases as the sync writes them."""
    return {
        name: {
            "created": created,
            "updated": updated,
            "unchanged": 0,
            "failed": 0,
            "calls": 1,
            "duration_ms": 10,
        }
        for name, (created, updated) in records.items()
    }


def record_run(
    db: Db,
    *,
    status: str = "succeeded",
    mode: str = "delta",
    ago_s: int = 600,
    duration_ms: int | None = 20_000,
    **values: Any,
) -> str:
    run_id = str(uuid.uuid4())
    row: dict[str, Any] = {
        "id": run_id,
        "mode": mode,
        "trigger": "cron",
        "status": status,
        "phases": json.dumps(values.pop("phases", phases(bookings=(3, 1)))),
        "duration_ms": duration_ms,
        "errors": json.dumps(values.pop("errors", [])),
        **values,
    }
    columns = ", ".join(row)
    placeholders = ", ".join(f"%({k})s" for k in row)
    db.conn.execute(
        f"insert into hubspot_sync.sync_runs ({columns}, started_at, finished_at, last_progress_at)"
        f" values ({placeholders}, now() - make_interval(secs => %(ago)s),"
        f" case when %(status)s = 'running' then null"
        f"      else now() - make_interval(secs => %(ago)s) + make_interval(secs => 20) end,"
        f" now() - make_interval(secs => %(ago)s))",
        {**row, "ago": ago_s},
    )
    return run_id


def alerts(status: dict[str, Any]) -> dict[str, bool]:
    return {alert["code"]: alert["active"] for alert in status["alerts"]}


def test_an_empty_system_is_healthy_with_nothing_pending(admin: AdminApi, db: Db) -> None:
    status = data(admin.get("/api/admin/sync/status"))
    assert status["pending"] == {"total": 0, "oldest_age_s": None, "oldest_table": None}
    assert status["lag"] == {"seconds": 0, "goal_s": 7200, "fraction_of_goal": 0, "state": "ok"}
    assert status["last_runs"] == {"delta": None, "full": None}
    assert status["running"] is None
    assert status["rate_limit"] is None
    assert alerts(status) == {
        "OLDEST_PENDING_OVER_GOAL": False,
        "LAST_RUN_FAILED": False,
        "DAILY_BUDGET_LOW": False,
    }
    assert status["healthy"] is True


def test_the_backlog_per_table_with_the_age_of_the_oldest(admin: AdminApi, db: Db) -> None:
    synced = db.contact(sj_credits=2, cs_credits=2)
    new_contact = db.contact(hubspot_id=None, cs_credits=1)
    db.conn.execute(
        "update hubspot_sync.hubspot_contact_credits set created_at = now() - interval '3 hours'"
        " where id = %s",
        (new_contact["id"],),
    )
    exam = db.exam(mock_type="Clinical Skills")
    # A booking HubSpot has not got (its contact has no HubSpot id yet either), and one
    # HubSpot has, changed since it was pushed.
    db.book(new_contact, exam)
    pushed = db.book(synced, exam)["booking"]
    db.conn.execute(
        "update hubspot_sync.hubspot_bookings set hubspot_id = '990001',"
        " hubspot_last_sync_at = updated_at - interval '1 minute' where id = %s",
        (pushed["id"],),
    )
    # The seat count of the exam was pushed at an older version.
    db.conn.execute(
        "insert into hubspot_sync.sync_exam_seats (exam_id, pushed_seats_version, pushed_total)"
        " select id, seats_version - 1, 0 from hubspot_sync.hubspot_mock_exams where id = %s",
        (exam["id"],),
    )
    # synced's balance moved with its booking: the merge has not settled it.

    status = data(admin.get("/api/admin/sync/status"))

    contacts, bookings, exams = (
        status["tables"][t] for t in ("contacts", "bookings", "mock_exams")
    )
    assert (contacts["awaiting_hubspot_id"], contacts["changed_since_sync"]) == (1, 1)
    assert 3 * HOUR - 60 <= contacts["oldest_awaiting_age_s"] <= 3 * HOUR + 60
    assert (bookings["awaiting_hubspot_id"], bookings["changed_since_sync"]) == (1, 1)
    assert bookings["oldest_awaiting_age_s"] < 60
    assert (exams["awaiting_hubspot_id"], exams["changed_since_sync"]) == (0, 1)
    assert status["pending"]["total"] == 5
    assert status["pending"]["oldest_table"] == "contacts"
    assert status["lag"]["state"] == "over"
    assert alerts(status)["OLDEST_PENDING_OVER_GOAL"] is True
    assert status["healthy"] is False


def test_the_lag_turns_amber_before_the_goal(admin: AdminApi, db: Db) -> None:
    contact = db.contact(hubspot_id=None)
    db.conn.execute(
        "update hubspot_sync.hubspot_contact_credits"
        " set created_at = now() - interval '100 minutes' where id = %s",
        (contact["id"],),
    )
    status = data(admin.get("/api/admin/sync/status"))
    assert status["lag"]["state"] == "near"
    assert alerts(status)["OLDEST_PENDING_OVER_GOAL"] is False


@pytest.mark.parametrize(
    ("last", "failed"),
    [
        ("succeeded", False),
        ("partial", False),
        ("deadline", False),
        ("failed", True),
        ("abandoned", True),
        ("rate_limited", True),
        ("lease_lost", True),
        ("daily_limit", True),
    ],
)
def test_the_last_run_failed_alert(admin: AdminApi, db: Db, last: str, failed: bool) -> None:
    record_run(db, status="failed", ago_s=3 * HOUR)
    record_run(db, status=last, ago_s=HOUR, message="HubSpot 502 (correlation id abc)")
    record_run(db, status="refused", ago_s=60)  # a refused attempt did nothing: ignored
    status = data(admin.get("/api/admin/sync/status"))
    assert status["last_finished"]["status"] == last
    assert alerts(status)["LAST_RUN_FAILED"] is failed
    detail = next(a for a in status["alerts"] if a["code"] == "LAST_RUN_FAILED")["detail"]
    assert detail.startswith("The last run (delta) ")
    assert ("HubSpot 502 (correlation id abc)" in detail) is failed


def test_the_last_run_of_each_mode_and_the_running_one(admin: AdminApi, db: Db) -> None:
    full = record_run(db, mode="full", status="succeeded", ago_s=5 * HOUR)
    delta = record_run(db, mode="delta", status="partial", ago_s=2 * HOUR, error_count=2)
    running = record_run(db, mode="delta", status="running", ago_s=30, duration_ms=None)
    db.conn.execute(
        "insert into hubspot_sync.sync_lease (name, run_id, expires_at, ttl_s)"
        " values ('hubspot', %s, now() + interval '5 minutes', 360)",
        (running,),
    )
    status = data(admin.get("/api/admin/sync/status"))
    assert status["last_runs"]["full"]["id"] == full
    assert status["last_runs"]["delta"]["id"] == running
    assert status["last_finished"]["id"] == delta
    assert status["last_finished"]["records_synced"] == 4
    assert status["running"]["id"] == running
    assert status["running"]["duration_ms"] >= 29_000  # so far
    assert status["lease"]["run_id"] == running


def test_a_run_whose_lease_expired_is_not_shown_as_running(admin: AdminApi, db: Db) -> None:
    stale = record_run(db, status="running", ago_s=HOUR, duration_ms=None)
    db.conn.execute(
        "insert into hubspot_sync.sync_lease (name, run_id, expires_at, ttl_s)"
        " values ('hubspot', %s, now() - interval '50 minutes', 360)",
        (stale,),
    )
    status = data(admin.get("/api/admin/sync/status"))
    assert status["running"] is None
    assert status["lease"] is None


def test_rate_limit_use_of_the_last_run(admin: AdminApi, db: Db) -> None:
    record_run(
        db,
        duration_ms=40_000,
        api_calls=380,
        rate_limited=3,
        retries=4,
        budget_wait_ms=1500,
    )
    use = data(admin.get("/api/admin/sync/status"))["rate_limit"]
    assert use["api_calls"] == 380
    assert use["rate_limited"] == 3
    assert use["retries"] == 4
    assert use["budget_wait_ms"] == 1500
    assert use["calls_per_10s"] == 95.0
    assert use["limit_per_10s"] == 190
    assert use["use_fraction"] == 0.5
    # A run shorter than the 10 s window: all its calls fit in one window.
    record_run(db, ago_s=10, duration_ms=500, api_calls=16)
    assert data(admin.get("/api/admin/sync/status"))["rate_limit"]["calls_per_10s"] == 16.0


def test_runs_are_listed_newest_first_a_page_at_a_time(admin: AdminApi, db: Db) -> None:
    ids = [record_run(db, ago_s=(30 - n) * 60) for n in range(25)]  # ids[-1] is newest
    record_run(db, status="refused", ago_s=1)

    first = data(admin.get("/api/admin/sync/runs"))
    assert [r["id"] for r in first["runs"]] == ids[::-1][:20]
    assert first["pagination"] == {
        "page": 1,
        "limit": 20,
        "total": 25,
        "total_pages": 2,
        "has_next": True,
        "has_previous": False,
    }
    second = data(admin.get("/api/admin/sync/runs", params={"page": 2}))
    assert [r["id"] for r in second["runs"]] == ids[::-1][20:]
    assert second["pagination"]["has_next"] is False
    with_refused = data(admin.get("/api/admin/sync/runs", params={"include_refused": "true"}))
    assert with_refused["runs"][0]["status"] == "refused"
    assert with_refused["pagination"]["total"] == 26
    small = data(admin.get("/api/admin/sync/runs", params={"limit": 5, "page": 6}))
    assert small["runs"] == []


@pytest.mark.parametrize("query", [{"page": "0"}, {"limit": "101"}, {"limit": "x"}])
def test_bad_paging_is_400(admin: AdminApi, db: Db, query: dict[str, str]) -> None:
    response = admin.get("/api/admin/sync/runs", params=query)
    assert response.status_code == 400
    assert response.json()["error"]["field"] in query


def test_the_last_page_the_document_allows_is_the_last_the_api_takes(
    admin: AdminApi, db: Db
) -> None:
    """The document gave `page` no maximum; the API's is 100,000, so the fuzzer's valid
    page 35968360277937932 was refused (reliability/fuzz.py)."""
    from tests.api.conftest import SPEC

    parameters = SPEC["paths"]["/api/admin/sync/runs"]["get"]["parameters"]
    maximum = next(p for p in parameters if p["name"] == "page")["schema"]["maximum"]

    assert admin.get("/api/admin/sync/runs", params={"page": maximum}).status_code == 200
    beyond = admin.get("/api/admin/sync/runs", params={"page": maximum + 1})
    assert (beyond.status_code, beyond.json()["error"]["field"]) == (400, "page")


def test_one_run_in_detail_with_its_errors_and_correlation_ids(admin: AdminApi, db: Db) -> None:
    run_id = record_run(
        db,
        status="partial",
        api_calls=12,
        rate_limited=2,
        error_count=2,
        phases=phases(exams=(1, 0), bookings=(40, 2), seats=(0, 3)),
    )
    for n, (phase, correlation) in enumerate((("bookings", "c0ffee-1"), ("seats", None))):
        db.conn.execute(
            "insert into hubspot_sync.sync_run_errors"
            " (run_id, phase, record_id, hubspot_id, category, message, correlation_id)"
            " values (%s, %s, %s, %s, 'VALIDATION_ERROR', 'Property values were not valid', %s)",
            (run_id, phase, f"rec-{n}", f"hs-{n}", correlation),
        )

    detail = data(admin.get(f"/api/admin/sync/runs/{run_id}"))

    assert detail["run"]["status"] == "partial"
    assert detail["run"]["records_synced"] == 46
    assert detail["run"]["phases"]["bookings"]["created"] == 40
    assert detail["run"]["rate_limited"] == 2
    assert detail["rate_limit"]["api_calls"] == 12
    assert detail["errors_total"] == 2
    assert [(e["phase"], e["correlation_id"]) for e in detail["errors"]] == [
        ("bookings", "c0ffee-1"),
        ("seats", None),
    ]
    assert detail["holds_lease"] is False


def test_an_unknown_run_is_404_and_a_malformed_id_400(admin: AdminApi, db: Db) -> None:
    missing = admin.get(f"/api/admin/sync/runs/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    bad = admin.get("/api/admin/sync/runs/yesterday", check=False)
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "id"


def test_the_history_behind_the_chart(admin: AdminApi, db: Db) -> None:
    old = record_run(db, ago_s=10 * 24 * HOUR)
    first = record_run(db, ago_s=3 * 24 * HOUR, duration_ms=61_000, phases=phases(seats=(0, 9)))
    second = record_run(db, ago_s=HOUR, duration_ms=12_000, status="failed")
    record_run(db, status="refused", ago_s=60)

    week = data(admin.get("/api/admin/sync/history"))
    assert [r["id"] for r in week["runs"]] == [first, second]
    assert week["runs"][0]["duration_ms"] == 61_000
    assert week["runs"][0]["records_synced"] == 9
    assert week["runs"][1]["status"] == "failed"
    month = data(admin.get("/api/admin/sync/history", params={"days": 31}))
    assert [r["id"] for r in month["runs"]] == [old, first, second]
    assert admin.get("/api/admin/sync/history", params={"days": 32}).status_code == 400


def test_mock_exam_pulls_show_when_definitions_last_came_from_hubspot(
    admin: AdminApi, db: Db
) -> None:
    db.exam(exam_date=date.today() + timedelta(days=3))
    db.conn.execute(
        "insert into hubspot_sync.sync_state (key, value) values ('exams_watermark', '1')"
    )
    exams = data(admin.get("/api/admin/sync/status"))["tables"]["mock_exams"]
    assert exams["pulled_at"] is not None
    assert exams["total"] == 1


def test_the_daily_budget_alert_at_ninety_percent_used(admin: AdminApi, db: Db) -> None:
    record_run(db, ago_s=HOUR, daily_limit=500_000, daily_remaining=75_000)
    status = data(admin.get("/api/admin/sync/status"))
    assert status["rate_limit"]["daily_used_fraction"] == 0.85
    assert alerts(status)["DAILY_BUDGET_LOW"] is False

    record_run(db, ago_s=60, daily_limit=500_000, daily_remaining=40_000)
    status = data(admin.get("/api/admin/sync/status"))
    budget = next(a for a in status["alerts"] if a["code"] == "DAILY_BUDGET_LOW")
    assert budget["active"] is True
    assert budget["value"] == 0.92
    assert budget["threshold"] == 0.9
    assert "92.0% of the daily budget used" in budget["detail"]
    assert status["healthy"] is False
