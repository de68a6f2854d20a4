"""GET /api/cron/sync over HTTP, through the real function behind the local router:
no or wrong secret is 401 (and touches nothing), the right one runs the sync."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from lib import config
from tests.api.conftest import (
    api_server,  # noqa: F401 - the in-process API server
    check_against_spec,
)
from tests.sync.conftest import TOKEN, World

SECRET = "cron-test-secret-" + "x" * 24


@pytest.fixture
def cron(api_server: str, world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    """The cron URL, with the function's environment as on Vercel (secret, HubSpot)."""
    monkeypatch.setenv("CRON_SECRET", SECRET)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("HUBSPOT_BASE_URL", world.standin.url)
    monkeypatch.setenv("HUBSPOT_APP_ID", world.standin.app_id)
    config.settings.cache_clear()
    yield f"{api_server}/api/cron/sync"
    monkeypatch.undo()
    config.settings.cache_clear()


def _get(url: str, authorization: str | None = None) -> requests.Response:
    """The call as Vercel's cron makes it; every answer checked against openapi.yaml."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = requests.get(url, headers=headers, timeout=60)
    check_against_spec("GET", "/api/cron/sync", response)
    return response


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {SECRET}", f"Bearer {SECRET}x", SECRET],
)
def test_no_or_a_wrong_secret_is_401_and_runs_nothing(
    cron: str, world: World, authorization: str | None
) -> None:
    world.book(world.contact(), world.exam())

    response = _get(cron, authorization)

    assert response.status_code == 401
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "UNAUTHORIZED"
    assert world.standin.requests() == []
    assert world.db.count("sync_runs") == 0


def test_without_a_configured_secret_every_call_is_refused(
    cron: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRON_SECRET")
    config.settings.cache_clear()

    assert _get(cron, "Bearer ").status_code == 401
    assert _get(cron, f"Bearer {SECRET}").status_code == 401


def test_the_right_secret_runs_the_sync(cron: str, world: World) -> None:
    world.book(world.contact(), world.exam())

    response = _get(cron, f"Bearer {SECRET}")

    assert response.status_code == 200, response.text
    run = response.json()["data"]
    # No full pass has ever finished: the first cron run is the weekly full one.
    assert (run["status"], run["mode"]) == ("succeeded", "full")
    assert run["phases"]["bookings"]["created"] == 1
    recorded = world.db.one("select * from hubspot_sync.sync_runs where id = %s", run["run_id"])
    assert (recorded["trigger"], recorded["status"]) == ("cron", "succeeded")
    world.assert_consistent()

    again = _get(cron, f"bearer {SECRET}").json()["data"]
    assert (again["status"], again["mode"]) == ("succeeded", "delta")


def test_a_run_while_another_holds_the_lease_is_409(cron: str, world: World) -> None:
    world.db.call(
        "sync_begin",
        p_run_id=str(uuid.uuid4()),
        p_mode="delta",
        p_trigger="test",
        p_lease_ttl_s=60,
    )

    response = _get(cron, f"Bearer {SECRET}")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SYNC_IN_PROGRESS"
    assert response.headers["Retry-After"] == "60"
