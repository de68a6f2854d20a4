"""Credentials over HTTP, beyond what tests/sync/test_cron.py and
tests/admin/test_admin_access.py already refuse (no secret, a wrong one, a Basic
one; no token, expired, another key, no admin role, on every admin route and method).

* cron: the secret cut short or lengthened, one character changed at either end, in
  another scheme, in another header, in the query string, Vercel's own header
  without it: all 401 with one and the same answer (nothing says how close a guess
  came), and no run starts.
* admin, every route and method: an unsigned token (alg none), a student's token
  whose payload was edited into an admin's, a token for another audience, one not
  valid yet, a token sent in the query string or a cookie instead of the header:
  all 401 and nothing is read or written.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
import requests

from lib import config
from local.admin_token import sign
from tests.admin.conftest import SECRET, AdminApi
from tests.admin.test_admin_access import ENDPOINTS, IDS, assert_refused, send
from tests.api.conftest import Api
from tests.helpers import Db
from tests.security.logscan import check_error_body, register_secret

CRON_SECRET = "cron-security-" + "k" * 32


@pytest.fixture
def cron(api: Api, db: Db, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The API with CRON_SECRET set and a HubSpot that does not exist: a run that
    wrongly started would be recorded in sync_runs before its first HubSpot call."""
    monkeypatch.setenv("CRON_SECRET", CRON_SECRET)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-security-unreachable")
    monkeypatch.setenv("HUBSPOT_BASE_URL", "http://127.0.0.1:9")
    config.settings.cache_clear()
    db.conn.execute("truncate hubspot_sync.sync_runs, hubspot_sync.sync_lease")
    yield api
    monkeypatch.undo()
    config.settings.cache_clear()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


WRONG_CRON_CALLS: dict[str, dict[str, Any]] = {
    "missing": {},
    "empty": {"headers": {"Authorization": ""}},
    "bearer-alone": {"headers": {"Authorization": "Bearer "}},
    "prefix": {"headers": {"Authorization": f"Bearer {CRON_SECRET[:-1]}"}},
    "half": {"headers": {"Authorization": f"Bearer {CRON_SECRET[: len(CRON_SECRET) // 2]}"}},
    "suffix": {"headers": {"Authorization": f"Bearer {CRON_SECRET}0"}},
    "doubled": {"headers": {"Authorization": f"Bearer {CRON_SECRET}{CRON_SECRET}"}},
    "first-char": {"headers": {"Authorization": f"Bearer X{CRON_SECRET[1:]}"}},
    "last-char": {"headers": {"Authorization": f"Bearer {CRON_SECRET[:-1]}X"}},
    "case": {"headers": {"Authorization": f"Bearer {CRON_SECRET.upper()}"}},
    "basic": {"headers": {"Authorization": f"Basic {_b64('cron:' + CRON_SECRET)}"}},
    "token-scheme": {"headers": {"Authorization": f"Token {CRON_SECRET}"}},
    "no-scheme": {"headers": {"Authorization": CRON_SECRET}},
    "other-header": {"headers": {"X-Cron-Secret": CRON_SECRET, "x-vercel-cron": "1"}},
    "vercel-header": {"headers": {"x-vercel-cron": "1", "User-Agent": "vercel-cron/1.0"}},
    "cookie": {"headers": {"Cookie": f"CRON_SECRET={CRON_SECRET}"}},
}


def _without_request_id(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body["error"].pop("request_id")
    return body


def _unlogged(
    base: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, Any]]:
    """A request sent with http.client, which logs nothing: for credentials in a URL,
    which every request log on the way would keep (the tests' HTTP client too)."""
    connection = http.client.HTTPConnection(urlsplit(base).netloc, timeout=30)
    try:
        connection.request(
            method,
            path,
            body=json.dumps(body) if body is not None else None,
            headers={"Content-Type": "application/json", **headers},
        )
        response = connection.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        connection.close()
    check_error_body(method, path.split("?", maxsplit=1)[0], status, json.dumps(answer))
    return status, answer


def test_every_wrong_cron_credential_is_the_same_401_and_runs_nothing(cron: Api, db: Db) -> None:
    register_secret(CRON_SECRET, "the cron secret")
    answers = {}
    for name, call in WRONG_CRON_CALLS.items():
        response = cron.get("/api/cron/sync", **call)
        assert response.status_code == 401, (name, response.text)
        answers[name] = _without_request_id(response)
    query = urlencode({"secret": CRON_SECRET, "CRON_SECRET": CRON_SECRET})
    status, answers["query"] = _unlogged(cron.base, "GET", f"/api/cron/sync?{query}", {})
    assert status == 401
    answers["query"]["error"].pop("request_id")
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1, answers
    assert answers["missing"]["error"]["code"] == "UNAUTHORIZED"
    assert db.count("sync_runs") == 0
    assert db.count("sync_lease") == 0


def test_the_right_cron_secret_gets_past_the_check(cron: Api, db: Db) -> None:
    """Control: the same fixture lets the right secret through (the run then fails
    against the HubSpot that does not exist, and is recorded)."""
    response = cron.get("/api/cron/sync", headers={"Authorization": f"Bearer {CRON_SECRET}"})

    assert response.status_code != 401, response.text
    assert db.count("sync_runs") == 1


# ------------------------------------------------------------------ admin


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned_admin_token() -> str:
    now = int(time.time())
    claims = {"sub": "x", "aud": "authenticated", "exp": now + 600, "user_role": "admin"}
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def _edited_into_an_admin() -> str:
    """A student's genuine token whose payload was rewritten to claim the admin role;
    the signature is the student token's own."""
    header, payload, signature = sign(SECRET, role="student").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_role"] = "admin"
    return f"{header}.{_segment(claims)}.{signature}"


FORGED: dict[str, Callable[[], str]] = {
    "alg-none": _unsigned_admin_token,
    "payload-edited": _edited_into_an_admin,
    "other-audience": lambda: sign(SECRET, audience="anon"),
    "not-valid-yet": lambda: sign(SECRET, extra={"nbf": int(time.time()) + 3600}),
    "no-expiry": lambda: jwt.encode(
        {"sub": "x", "aud": "authenticated", "user_role": "admin"}, SECRET, algorithm="HS256"
    ),
}


@pytest.mark.parametrize("forged", FORGED, ids=list(FORGED))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_forged_admin_token_is_401(client_for: Any, endpoint: Any, forged: str) -> None:
    response = send(client_for(FORGED[forged]()), endpoint)
    assert_refused(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_an_admin_token_anywhere_but_the_authorization_header_is_401(
    api_server: str, admin_settings: None, endpoint: Any
) -> None:
    token = sign(SECRET)
    query = urlencode({**endpoint.query, "access_token": token, "token": token})
    status, body = _unlogged(
        api_server,
        endpoint.method,
        f"{endpoint.path}?{query}",
        {"Cookie": f"sb-access-token={token}", "X-Access-Token": token, "X-Real-IP": "10.250.0.1"},
        endpoint.body,
    )
    assert status == 401
    assert body["error"]["code"] == "UNAUTHORIZED"


def test_forged_tokens_change_nothing(client_for: Any, db: Db) -> None:
    """The writing endpoints with each forged token: credits, bookings, runs and the
    audit trail stay as they were."""
    contact = db.contact(sj_credits=1, cs_credits=1)
    booked = db.book(contact, db.exam(mock_type="Clinical Skills"))["booking"]
    before = (db.credits(contact), db.count("supabase_audit_log"), db.count("sync_runs"))
    for make in FORGED.values():
        client: AdminApi = client_for(make())
        assert (
            client.post(
                f"/api/admin/students/{contact['id']}/credits",
                {"deltas": {"sj_credits": 50}, "reason": "forged"},
            ).status_code
            == 401
        )
        assert (
            client.delete(f"/api/admin/bookings/{booked['id']}", {"reason": "forged"}).status_code
            == 401
        )
        assert client.post("/api/admin/sync/runs", {"mode": "full"}).status_code == 401
    assert (db.credits(contact), db.count("supabase_audit_log"), db.count("sync_runs")) == before
    status = db.one(
        "select is_active from hubspot_sync.hubspot_bookings where id = %s", booked["id"]
    )
    assert status == {"is_active": "Active"}
