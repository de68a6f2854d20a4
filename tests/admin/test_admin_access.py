"""Every admin endpoint, every method: no token, a malformed one, an expired one, one
signed with another key → 401; a valid token without the admin role → 403. Nothing
is read or written for a refused request. The table of endpoints is checked against
the api/admin/ files themselves (their Allow headers), so a new endpoint or method
fails here until it is listed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.admin_token import sign
from local.server import API_DIR, ROOT, discover_routes
from tests.admin.conftest import OTHER_SECRET, SECRET, AdminApi
from tests.helpers import Db

SOME_UUID = "00000000-0000-4000-8000-0000000000aa"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)


ENDPOINTS = (
    Endpoint("GET", "/api/admin/me"),
    Endpoint("GET", "/api/admin/sync/status"),
    Endpoint("GET", "/api/admin/sync/runs"),
    Endpoint("POST", "/api/admin/sync/runs", {"mode": "delta"}),
    Endpoint("GET", f"/api/admin/sync/runs/{SOME_UUID}"),
    Endpoint("GET", "/api/admin/sync/history"),
    Endpoint("GET", "/api/admin/search", query={"q": "DEMO001"}),
    Endpoint("GET", f"/api/admin/students/{SOME_UUID}"),
    Endpoint(
        "POST",
        f"/api/admin/students/{SOME_UUID}/credits",
        {"deltas": {"sj_credits": 5}, "reason": "goodwill"},
    ),
    Endpoint("GET", "/api/admin/bookings/BK-20261203-7QK2MX"),
    Endpoint("DELETE", "/api/admin/bookings/BK-20261203-7QK2MX", {"reason": "duplicate"}),
)
IDS = [f"{e.method} {e.path}" for e in ENDPOINTS]


def send(client: AdminApi, endpoint: Endpoint, **kwargs: Any) -> Any:
    if endpoint.body is not None:
        return getattr(client, endpoint.method.lower())(
            endpoint.path, endpoint.body, params=endpoint.query, **kwargs
        )
    return client.call(endpoint.method, endpoint.path, params=endpoint.query, **kwargs)


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]


def _template(route_path: str) -> str:
    return "/".join("{id}" if p.startswith("[") else p for p in route_path.split("/"))


def test_every_admin_endpoint_and_method_is_in_the_table(client_for: Any) -> None:
    """Each api/admin/ function's methods (its OPTIONS answer's Allow header) are
    exactly those listed in ENDPOINTS."""
    client: AdminApi = client_for(None)
    listed = {(e.method, _template(e.path.replace(SOME_UUID, "[id]"))) for e in ENDPOINTS}
    listed = {(m, p.replace("BK-20261203-7QK2MX", "{id}")) for m, p in listed}
    served = set()
    for route in discover_routes(API_DIR):
        if not route.file.relative_to(ROOT).as_posix().startswith("api/admin/"):
            continue
        path = route.path.replace("[id]", SOME_UUID)
        allow = client.call("OPTIONS", path, check=False).headers["Allow"]
        for method in allow.split(", "):
            if method != "OPTIONS":
                served.add((method, _template(route.path)))
    assert served == listed


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_no_token_is_401(client_for: Any, endpoint: Endpoint) -> None:
    assert_refused(send(client_for(None), endpoint), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_token_that_is_not_a_bearer_token_is_401(client_for: Any, endpoint: Endpoint) -> None:
    client: AdminApi = client_for(None)
    token = sign(SECRET)
    response = send(client, endpoint, headers={"Authorization": f"Basic {token}"})
    assert_refused(response, 401, "UNAUTHORIZED")
    assert_refused(send(client_for("not-a-jwt"), endpoint), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_an_expired_token_is_401(client_for: Any, endpoint: Endpoint) -> None:
    response = send(client_for(sign(SECRET, ttl_s=-3600)), endpoint)
    assert_refused(response, 401, "UNAUTHORIZED")
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_token_signed_with_another_key_is_401(client_for: Any, endpoint: Endpoint) -> None:
    assert_refused(send(client_for(sign(OTHER_SECRET)), endpoint), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_student_token_is_403(client_for: Any, endpoint: Endpoint) -> None:
    response = send(client_for(sign(SECRET, role="student")), endpoint)
    assert_refused(response, 403, "FORBIDDEN")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_token_without_any_role_is_403(client_for: Any, endpoint: Endpoint) -> None:
    assert_refused(send(client_for(sign(SECRET, role=None)), endpoint), 403, "FORBIDDEN")


def test_refused_requests_change_nothing(client_for: Any, db: Db) -> None:
    """A 401 or 403 on a writing endpoint leaves credits, bookings and runs untouched."""
    contact = db.contact(sj_credits=1, cs_credits=1)
    exam = db.exam(mock_type="Clinical Skills")
    booked = db.book(contact, exam)
    before = db.credits(contact)
    audit_rows = db.count("supabase_audit_log")
    for token in (None, sign(OTHER_SECRET), sign(SECRET, ttl_s=-3600), sign(SECRET, role="x")):
        client: AdminApi = client_for(token)
        adjust = client.post(
            f"/api/admin/students/{contact['id']}/credits",
            {"deltas": {"sj_credits": 50}, "reason": "should not happen"},
        )
        assert adjust.status_code in (401, 403)
        cancel = client.delete(
            f"/api/admin/bookings/{booked['booking']['id']}", {"reason": "should not happen"}
        )
        assert cancel.status_code in (401, 403)
        run = client.post("/api/admin/sync/runs", {"mode": "full"})
        assert run.status_code in (401, 403)
    assert db.credits(contact) == before
    assert (
        db.one(
            "select is_active from hubspot_sync.hubspot_bookings where id = %s",
            booked["booking"]["id"],
        )["is_active"]
        == "Active"
    )
    assert db.count("supabase_audit_log") == audit_rows
    assert db.count("sync_runs") == 0


def test_the_preflight_needs_no_token(client_for: Any) -> None:
    """Browsers send OPTIONS without credentials; it says which methods and headers."""
    response = client_for(None).call(
        "OPTIONS", f"/api/admin/students/{uuid.uuid4()}/credits", check=False
    )
    assert response.status_code == 204
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_an_admin_token_is_accepted_everywhere(admin: AdminApi) -> None:
    """The same table with a valid admin token: never 401/403 (each endpoint's own
    answers are tested in test_admin_api.py)."""
    for endpoint in ENDPOINTS:
        if endpoint.method == "POST" and endpoint.path == "/api/admin/sync/runs":
            continue  # starts a run against HubSpot: test_admin_sync_runs.py
        response = send(admin, endpoint)
        assert response.status_code not in (401, 403), (endpoint, response.text)
