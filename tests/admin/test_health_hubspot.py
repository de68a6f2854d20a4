"""/api/health reports where the HubSpot sync stands, from the runs PostgreSQL
recorded (HubSpot itself is never called), without changing the overall status:
HubSpot is not on the booking path."""

from __future__ import annotations

from typing import Any

import pytest

from lib import config
from tests.admin.conftest import AdminApi
from tests.admin.test_admin_sync_status import record_run
from tests.helpers import Db


def hubspot_health(client: AdminApi) -> dict[str, Any]:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "ok"
    state: dict[str, Any] = response.json()["data"]["dependencies"]["hubspot"]
    return state


@pytest.fixture
def with_hubspot(monkeypatch: pytest.MonkeyPatch, admin_settings: None) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-health-test")
    config.settings.cache_clear()


def test_without_a_hubspot_token_it_is_absent(client_for: Any, db: Db) -> None:
    assert hubspot_health(client_for(None)) == {"status": "absent"}


@pytest.mark.usefixtures("with_hubspot")
def test_before_any_run_it_is_unknown(client_for: Any, db: Db) -> None:
    state = hubspot_health(client_for(None))
    assert state["status"] == "unknown"
    assert state["last_run"] is None


@pytest.mark.usefixtures("with_hubspot")
@pytest.mark.parametrize(
    ("last", "expected"),
    [("succeeded", "ok"), ("partial", "ok"), ("failed", "failing"), ("daily_limit", "failing")],
)
def test_the_last_run_decides(client_for: Any, db: Db, last: str, expected: str) -> None:
    record_run(db, status="succeeded", ago_s=7200)
    record_run(db, status=last, ago_s=60)
    record_run(db, status="refused", ago_s=5)
    state = hubspot_health(client_for(None))
    assert state["status"] == expected
    assert state["last_run"]["status"] == last
    assert state["last_success_at"] is not None
    assert state["sync_running"] is False
