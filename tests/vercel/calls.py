"""How to call each api/ function once, shared by the bootstrap test (the function run
from this checkout in Vercel's runtime) and the build test (the function run from the
bundle `vercel build` made). A new api/ file fails both until REQUESTS says how to call it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

EXAM_ID = "00000000-0000-4000-8000-000000000000"
BOOKING_ID = "00000000-0000-4000-8000-000000000001"
STUDENT = "student_id=S0000001&email=nobody%40example.com"
CRON_SECRET = "bootstrap-test-cron-secret"


@dataclass(frozen=True)
class Call:
    """How to call one function: the request a client sends, and what must come back.
    Any non-5xx JSON answer in our envelope is valid; status/field pin it further."""

    method: str
    path: str  # as the client sends it, query included; Vercel adds dynamic values
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    field: str | None = None  # the input named by a 400: the body reached the function


REQUESTS: dict[str, Call] = {
    "api/health.py": Call("GET", "/api/health", status=200),
    "api/user/login.py": Call(
        # A malformed email: rejected before any database or HubSpot call, and the 400
        # naming "email" (not "student_id") shows the body arrived and was parsed.
        "POST",
        "/api/user/login",
        body={"student_id": "S0000001", "email": "not-an-email"},
        status=400,
        field="email",
    ),
    "api/mock-exams/validate-credits.py": Call(
        "POST",
        "/api/mock-exams/validate-credits",
        body={"student_id": "S0000001", "email": "nobody@example.com", "mock_type": "Nope"},
        status=400,
        field="mock_type",
    ),
    "api/mock-exams/available.py": Call(
        "GET", "/api/mock-exams/available?mock_type=Situational%20Judgment", status=200
    ),
    "api/mock-exams/[id]/capacity.py": Call("GET", f"/api/mock-exams/{EXAM_ID}/capacity"),
    "api/bookings/create.py": Call(
        "POST",
        "/api/bookings/create",
        body={"student_id": "S0000001", "email": "nobody@example.com", "mock_exam_id": "!"},
        headers={"Idempotency-Key": "bootstrap-test"},
        status=400,
        field="mock_exam_id",
    ),
    "api/bookings/[id].py": Call("GET", f"/api/bookings/{BOOKING_ID}?{STUDENT}"),
    "api/bookings/list.py": Call("GET", f"/api/bookings/list?{STUDENT}&filter=all"),
    "api/cron/sync.py": Call(
        "GET", "/api/cron/sync", headers={"Authorization": "Bearer not-the-secret"}, status=401
    ),
    # Admin functions: no token is 401 before anything else is read; the dynamic id
    # and the body still reach the function (seen in the environ checks).
    "api/admin/me.py": Call("GET", "/api/admin/me", status=401),
    "api/admin/search.py": Call("GET", "/api/admin/search?q=DEMO001", status=401),
    "api/admin/sync/status.py": Call("GET", "/api/admin/sync/status", status=401),
    "api/admin/sync/history.py": Call("GET", "/api/admin/sync/history?days=7", status=401),
    "api/admin/sync/runs/index.py": Call(
        "POST", "/api/admin/sync/runs", body={"mode": "delta"}, status=401
    ),
    "api/admin/sync/runs/[id].py": Call("GET", f"/api/admin/sync/runs/{BOOKING_ID}", status=401),
    "api/admin/students/[id]/index.py": Call(
        "GET", f"/api/admin/students/{BOOKING_ID}", status=401
    ),
    "api/admin/students/[id]/credits.py": Call(
        "POST",
        f"/api/admin/students/{BOOKING_ID}/credits",
        body={"deltas": {"sj_credits": 1}, "reason": "bootstrap"},
        headers={"Authorization": "Bearer not-a-token"},
        status=401,
    ),
    "api/admin/bookings/[id].py": Call(
        "DELETE", "/api/admin/bookings/BK-20261203-7QK2MX", body={"reason": "x"}, status=401
    ),
}


def lambda_event(call: Call, target: str) -> dict[str, Any]:
    """The event Vercel's platform hands the function for `call`, routed to `target`
    (the client's path, with any dynamic value appended to the query)."""
    payload: dict[str, Any] = {
        "method": call.method,
        "path": target,
        "headers": {
            "host": "booking.example.com",
            "x-forwarded-for": "203.0.113.7",
            "x-real-ip": "203.0.113.7",
            "x-forwarded-proto": "https",
            **{name.lower(): value for name, value in call.headers.items()},
        },
    }
    if call.body is not None:
        # The platform's form for bodies: base64, marked as such.
        payload["body"] = base64.b64encode(json.dumps(call.body).encode()).decode()
        payload["encoding"] = "base64"
        payload["headers"]["content-type"] = "application/json"
    return {"body": json.dumps(payload)}


def check_answer(call: Call, status: int, headers: dict[str, list[str]], body: Any) -> None:
    """The function answered its normal envelope, as `call` expects."""
    assert status < 500, body
    assert isinstance(body, dict)
    assert isinstance(body.get("success"), bool), body
    assert body["success"] is (status < 400)
    if not body["success"]:
        assert {"code", "message"} <= set(body["error"]), body
    if call.status is not None:
        assert status == call.status, body
    if call.field is not None:
        assert body["error"].get("field") == call.field, body
    content_type = headers.get("Content-Type") or headers.get("content-type")
    assert content_type and content_type[0].startswith("application/json")
