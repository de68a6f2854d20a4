"""`./run dev`'s development admin sign-in: a secret of its own per run and a token
the API server accepts as an admin's, printed with a link to the dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from lib import admin_auth, config
from lib.errors import AppError
from lib.http import Request
from local.dev import dev_admin


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("SUPABASE_JWT_SECRET", "SUPABASE_URL", "SUPABASE_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    config.settings.cache_clear()
    yield monkeypatch
    config.settings.cache_clear()


def _as_server_sees_it(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], token: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    request = Request({"HTTP_AUTHORIZATION": f"Bearer {token}"}, "dev-admin-test")
    return admin_auth.require_admin(request).actor


def test_the_dev_token_is_an_admin_token_for_this_run_only(
    clean_settings: pytest.MonkeyPatch,
) -> None:
    first, second = dev_admin({}), dev_admin({})
    assert first.env["SUPABASE_JWT_SECRET"] != second.env["SUPABASE_JWT_SECRET"]
    assert _as_server_sees_it(clean_settings, first.env, first.token) == "admin@localhost"
    # The next run's server does not accept this run's token.
    with pytest.raises(AppError) as refused:
        _as_server_sees_it(clean_settings, second.env, first.token)
    assert refused.value.status == 401


def test_the_dev_token_carries_the_issuer_when_the_project_url_is_set(
    clean_settings: pytest.MonkeyPatch,
) -> None:
    project = "https://example-project.supabase.co"
    admin = dev_admin({"SUPABASE_URL": project})
    clean_settings.setenv("SUPABASE_URL", project)
    assert _as_server_sees_it(clean_settings, admin.env, admin.token) == "admin@localhost"


def test_the_instructions_link_to_the_dashboard_with_the_token() -> None:
    admin = dev_admin({})
    text = admin.instructions("http://localhost:3000")
    assert f"http://localhost:3000/admin/#token={admin.token}" in text
    assert "12 h" in text


def test_run_dev_prints_a_working_sign_in_link(
    clean_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve() hands the secret to the API server and prints a link whose token that
    server accepts (the stack, the stand-in and gunicorn replaced by stubs)."""
    from local import dev, hubspot_demo, server

    class Process:
        def wait(self) -> int:
            return 0

    class HubSpot:
        url = "http://127.0.0.1:9"
        token = "stub"
        app_id = "3100001"

        def stop(self) -> None:
            pass

    handed: dict[str, str] = {}

    def start(options: server.Options, env: dict[str, str]) -> Process:
        handed.update(env)
        return Process()

    clean_settings.setattr(hubspot_demo, "start", lambda **_: HubSpot())
    clean_settings.setattr(server, "start", start)
    clean_settings.setattr(server, "stop", lambda process: None)
    with pytest.raises(server.ServerError):
        dev.serve(dev.Services("postgresql://stub", "redis://stub"), server.Options(port=3999))

    printed = capsys.readouterr().out
    link = re.search(r"http://localhost:3999/admin/#token=(\S+)", printed)
    assert link, printed
    secret = {"SUPABASE_JWT_SECRET": handed["SUPABASE_JWT_SECRET"]}
    assert _as_server_sees_it(clean_settings, secret, link.group(1)) == "admin@localhost"
