"""`./run sync`: the same run from a terminal, its progress bar and exit status."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from lib import config
from lib.hubspot import cli
from tests.sync.conftest import TOKEN, World


@pytest.fixture
def environment(world: World, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("HUBSPOT_BASE_URL", world.standin.url)
    monkeypatch.setenv("HUBSPOT_APP_ID", world.standin.app_id)
    monkeypatch.delenv("REDIS_URL", raising=False)
    config.settings.cache_clear()
    yield
    monkeypatch.undo()
    config.settings.cache_clear()


def test_a_run_from_the_command_line(
    environment: None, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.book(world.contact(), world.exam())

    status = cli.main(["--json"])

    assert status == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["status"], run["phases"]["bookings"]["created"]) == ("succeeded", 1)
    assert world.db.one("select trigger from hubspot_sync.sync_runs")["trigger"] == "cli"
    world.assert_consistent()


def test_exit_status_says_how_it_ended(environment: None, world: World) -> None:
    world.db.call(
        "sync_begin",
        p_run_id="00000000-0000-4000-8000-0000000000c1",
        p_mode="delta",
        p_trigger="test",
        p_lease_ttl_s=60,
    )
    assert cli.main(["--quiet"]) == 3  # refused: another run holds the lease


def test_without_a_hubspot_token_nothing_starts(
    environment: None,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    config.settings.cache_clear()

    assert cli.main([]) == 4
    assert "HUBSPOT_ACCESS_TOKEN" in capsys.readouterr().err
    assert world.db.count("sync_runs") == 0


def test_the_progress_bar() -> None:
    line = cli.render("bookings", 50, 200, 1.25)
    assert line.startswith("bookings  [#######-----------------------]      50/200 ")
    assert line.endswith(" 1.2 s")
    assert "12 records" in cli.render("credits", 12, None, 0.0)
    out = io.StringIO()
    bar = cli.Bar(out)
    bar("exams", 1, 2)
    bar("exams", 2, 2)
    bar("seats", 1, 1)
    bar.close()
    assert len(out.getvalue().splitlines()) == 3  # not a terminal: a line per batch
