"""Size limits and floods.

* Bodies: every endpoint that takes one (each POST and DELETE the api/ files serve,
  found from their Allow headers, so a new one fails here until listed) answers 413
  PAYLOAD_TOO_LARGE one byte over 16 KB and writes nothing; exactly 16 KB is read.
  Sent chunked (no Content-Length) to the production-like server (gunicorn, as
  `./run dev` runs it), the same.
* Headers and query strings: that server refuses a header over Vercel's 16 KB and
  over a hundred header fields before any function runs, and keeps serving. Query
  values the functions take are bounded by their models: over-long ones are 400
  naming the field, never a 500. The URL's own length is Vercel's edge's to limit
  (14 KB, 414); the local server passes any on, like Vercel up to that size.
* Floods: one client address over a route's budget is answered 429 with Retry-After
  before any work (nothing booked, nothing adjusted), while another address is
  served, on every rate-limited route, student and admin. Most routes' budgets are
  hundreds a minute (lib/limits.py: a campus behind one address), so the client is
  given a head start in Redis (its counter set to budget - 1, as if it had sent that
  many this minute); the admin budget is flooded for real here, the login budget in
  tests/api/test_student_flow.py, and every budget for real in the long run
  (`./run reliability security`, SECURITY_LONG=1).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from lib import limits
from lib import redis_client as lib_redis
from lib.admin_http import ADMIN_LIMIT
from lib.http import MAX_BODY_BYTES, RateLimit
from lib.redis_scripts import rate_key
from local.admin_token import sign
from local.server import API_DIR, discover_routes
from reliability.stack import api_server as child_api_server
from tests.admin.conftest import SECRET, AdminApi
from tests.admin.test_admin_access import ENDPOINTS as ADMIN_ENDPOINTS
from tests.admin.test_admin_access import send
from tests.api.conftest import Api
from tests.helpers import TABLES, Db
from tests.security.logscan import child_output

LONG = os.environ.get("SECURITY_LONG") == "1"
SOME_UUID = "00000000-0000-4000-8000-0000000000bb"


def _counts(db: Db) -> dict[str, int]:
    return {table: db.count(table.split(".")[1]) for table in TABLES}


def _error(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False, response.text
    return dict(body["error"])


@dataclass
class Student:
    contact: dict[str, Any]
    exam: dict[str, Any]
    booking: dict[str, Any]

    @property
    def identity(self) -> dict[str, str]:
        return {"student_id": self.contact["student_id"], "email": self.contact["email"]}


@pytest.fixture
def student(db: Db) -> Student:
    contact = db.contact(cs_credits=5)
    booked = db.book(contact, db.exam(exam_date=date.today() + timedelta(days=30)))
    exam = db.exam(exam_date=date.today() + timedelta(days=31))
    return Student(contact, exam, booked["booking"])


# ------------------------------------------------------------------ bodies


@dataclass(frozen=True)
class BodyEndpoint:
    method: str
    path: str  # {booking}, {contact}: filled from the fixtures
    body: Callable[[Student], dict[str, Any]]
    admin: bool = False

    def url(self, student: Student) -> str:
        return self.path.format(booking=student.booking["id"], contact=student.contact["id"])


BODY_ENDPOINTS = (
    BodyEndpoint("POST", "/api/user/login", lambda s: s.identity),
    BodyEndpoint(
        "POST",
        "/api/mock-exams/validate-credits",
        lambda s: {**s.identity, "mock_type": "Clinical Skills"},
    ),
    BodyEndpoint(
        "POST",
        "/api/bookings/create",
        lambda s: {**s.identity, "mock_exam_id": str(s.exam["id"]), "dominant_hand": "right"},
    ),
    BodyEndpoint("DELETE", "/api/bookings/{booking}", lambda s: s.identity),
    BodyEndpoint("POST", "/api/admin/sync/runs", lambda s: {"mode": "delta"}, admin=True),
    BodyEndpoint(
        "POST",
        "/api/admin/students/{contact}/credits",
        lambda s: {"deltas": {"sj_credits": 1}, "reason": "size test"},
        admin=True,
    ),
    BodyEndpoint(
        "DELETE", "/api/admin/bookings/{booking}", lambda s: {"reason": "size test"}, admin=True
    ),
)
BODY_IDS = [f"{e.method} {e.path}" for e in BODY_ENDPOINTS]


def _padded(body: dict[str, Any], size: int) -> bytes:
    """`body` as JSON, padded with trailing spaces (still valid JSON) to `size` bytes."""
    import json

    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@pytest.fixture
def client(api: Api, client_for: Any) -> Callable[[bool], Api]:
    def make(admin: bool) -> Api:
        return client_for(sign(SECRET, email="ops@school.example")) if admin else api

    return make


def test_every_endpoint_taking_a_body_is_listed() -> None:
    """The table above is every POST and DELETE the api/ files serve."""
    served = set()
    for route in discover_routes(API_DIR):
        text = route.file.read_text()
        for method in ("POST", "DELETE"):
            if f"{method}=" in text:
                served.add((method, route.path))
    listed = {
        (e.method, e.path.replace("{booking}", "[id]").replace("{contact}", "[id]"))
        for e in BODY_ENDPOINTS
    }
    assert served == listed, served ^ listed


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=BODY_IDS)
def test_a_body_over_16_kb_is_413_and_writes_nothing(
    client: Callable[[bool], Api], db: Db, student: Student, endpoint: BodyEndpoint
) -> None:
    before = _counts(db), db.credits(student.contact)
    sender = client(endpoint.admin)

    response = sender.call(
        endpoint.method,
        endpoint.url(student),
        data=_padded(endpoint.body(student), MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )

    assert (response.status_code, _error(response)["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert (_counts(db), db.credits(student.contact)) == before


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=BODY_IDS)
def test_a_body_of_exactly_16_kb_is_read(
    client: Callable[[bool], Api], student: Student, endpoint: BodyEndpoint
) -> None:
    """The limit is where it says: 16 KB of valid JSON is answered as it would be
    without the padding."""
    response = client(endpoint.admin).call(
        endpoint.method,
        endpoint.url(student),
        data=_padded(endpoint.body(student), MAX_BODY_BYTES),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code != 413, response.text
    assert response.status_code < 500 or endpoint.path == "/api/admin/sync/runs", response.text


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=BODY_IDS)
def test_a_body_nested_1500_deep_is_400_invalid_json_and_writes_nothing(
    client: Callable[[bool], Api], db: Db, student: Student, endpoint: BodyEndpoint
) -> None:
    """Deep nesting was a RecursionError, a 500, on every one (issue 15 item 4)."""
    before = _counts(db), db.credits(student.contact)

    response = client(endpoint.admin).call(
        endpoint.method,
        endpoint.url(student),
        data="[" * 1500 + "]" * 1500,
        headers={"Content-Type": "application/json"},
    )

    assert (response.status_code, _error(response)["code"]) == (400, "INVALID_JSON")
    assert (_counts(db), db.credits(student.contact)) == before


# ------------------------------------------------------------------ the gunicorn server


@pytest.fixture(scope="module")
def production_server(database_url: str, redis_url: str, tmp_path_factory: Any) -> Iterator[str]:
    """The local server as `./run dev` runs it (gunicorn, Vercel's routing) in a child
    process, its output kept for the log scan."""
    output_path = Path(tmp_path_factory.mktemp("server")) / "output.log"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SUPABASE_JWT_SECRET": SECRET,
        "DB_POOL_MAX_SIZE": "2",
    }
    with output_path.open("wb") as output:
        try:
            with child_api_server(env, workers=1, threads=4, output=output) as url:
                yield url
        finally:
            output.flush()
            child_output("local server (gunicorn)", output_path.read_bytes())


def _chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=BODY_IDS)
def test_a_chunked_body_over_16_kb_is_413(
    production_server: str, db: Db, student: Student, endpoint: BodyEndpoint
) -> None:
    before = _counts(db)
    headers = {"Content-Type": "application/json", "X-Real-IP": f"10.9.{uuid.uuid4().int % 250}.1"}
    if endpoint.admin:
        headers["Authorization"] = f"Bearer {sign(SECRET)}"
    body = _padded(endpoint.body(student), MAX_BODY_BYTES + 1)

    response = requests.request(
        endpoint.method,
        production_server + endpoint.url(student),
        data=_chunks(body),  # a generator: requests sends it chunked
        headers=headers,
        timeout=30,
    )

    assert response.status_code == 413, response.text
    assert _error(response)["code"] == "PAYLOAD_TOO_LARGE"
    assert _counts(db) == before


def test_over_long_headers_are_refused_by_the_server_and_it_keeps_serving(
    production_server: str,
) -> None:
    health = production_server + "/api/health"
    one_big = requests.get(health, headers={"X-Padding": "x" * (16 * 1024 + 1)}, timeout=30)
    many = requests.get(health, headers={f"X-Field-{n}": "x" for n in range(120)}, timeout=30)
    huge_auth = requests.get(
        production_server + "/api/admin/me",
        headers={"Authorization": "Bearer " + "e" * (16 * 1024)},
        timeout=30,
    )

    assert one_big.status_code in (400, 431), one_big.text
    assert many.status_code in (400, 431), many.text
    assert huge_auth.status_code in (400, 431), huge_auth.text
    assert requests.get(health, timeout=30).status_code == 200


QUERY_ENDPOINTS: list[tuple[str, dict[str, str], str]] = [
    ("/api/mock-exams/available", {"mock_type": "x" * 10_000}, "mock_type"),
    ("/api/bookings/list", {"student_id": "S" * 10_000, "email": "a@b.co"}, "student_id"),
    ("/api/bookings/list", {"student_id": "S1", "email": "a@b." + "c" * 10_000}, "email"),
    ("/api/bookings/list", {"student_id": "S1", "email": "a@b.co", "page": "9" * 5000}, "page"),
    (f"/api/bookings/{SOME_UUID}", {"student_id": "S1", "email": "e" * 10_000}, "email"),
]


@pytest.mark.parametrize(("path", "params", "field"), QUERY_ENDPOINTS)
def test_an_over_long_query_value_is_400_naming_it(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    response = api.get(path, params=params)

    assert response.status_code == 400, response.text
    assert _error(response)["field"] == field


ADMIN_QUERIES: list[tuple[str, dict[str, str]]] = [
    ("/api/admin/search", {"q": "q" * 10_000}),
    ("/api/admin/sync/runs", {"page": "9" * 5000}),
    ("/api/admin/sync/history", {"days": "9" * 5000}),
    ("/api/admin/students/" + "u" * 5000, {}),
    ("/api/admin/sync/runs/" + "u" * 5000, {}),
    ("/api/admin/bookings/" + "b" * 5000, {}),
]


@pytest.mark.parametrize(("path", "params"), ADMIN_QUERIES, ids=[p[:30] for p, _ in ADMIN_QUERIES])
def test_an_over_long_admin_query_value_or_id_is_refused(
    admin: AdminApi, path: str, params: dict[str, str]
) -> None:
    response = admin.get(path, params=params)

    assert response.status_code in (400, 404), response.text


# ------------------------------------------------------------------ floods


@dataclass(frozen=True)
class Limited:
    name: str
    limit: RateLimit
    call: Call
    admin: bool = False
    writes: tuple[str, ...] = field(default_factory=tuple)


Call = Callable[[Api, Student], requests.Response]


def _post(path: str, body: Callable[[Student], dict[str, Any]]) -> Call:
    return lambda api, s: api.post(path, body(s))


def _admin(endpoint: Any) -> Call:
    def call(api: Api, student: Student) -> requests.Response:
        assert isinstance(api, AdminApi)
        response: requests.Response = send(api, endpoint)
        return response

    return call


LIMITED = (
    Limited("login", limits.LOGIN, _post("/api/user/login", lambda s: s.identity)),
    Limited(
        "validate-credits",
        limits.VALIDATE,
        _post(
            "/api/mock-exams/validate-credits",
            lambda s: {**s.identity, "mock_type": "Clinical Skills"},
        ),
    ),
    Limited(
        "available",
        limits.AVAILABLE,
        lambda api, s: api.get("/api/mock-exams/available", params={"mock_type": "Mini-mock"}),
    ),
    Limited(
        "capacity",
        limits.CAPACITY,
        lambda api, s: api.get(f"/api/mock-exams/{s.exam['id']}/capacity"),
    ),
    Limited(
        "create",
        limits.CREATE,
        _post(
            "/api/bookings/create",
            lambda s: {**s.identity, "mock_exam_id": str(s.exam["id"]), "dominant_hand": "right"},
        ),
        writes=("hubspot_bookings",),
    ),
    Limited(
        "booking GET",
        limits.BOOKING,
        lambda api, s: api.get(f"/api/bookings/{s.booking['id']}", params=s.identity),
    ),
    Limited(
        "booking DELETE",
        limits.BOOKING,
        lambda api, s: api.delete(f"/api/bookings/{s.booking['id']}", s.identity),
        writes=("supabase_audit_log",),
    ),
    Limited(
        "list",
        limits.LIST,
        lambda api, s: api.get("/api/bookings/list", params=s.identity),
    ),
    *(
        Limited(
            f"admin {e.method} {e.path}",
            ADMIN_LIMIT,
            _admin(e),
            admin=True,
            writes=("supabase_audit_log", "sync_runs"),
        )
        for e in ADMIN_ENDPOINTS
    ),
)


def _head_start(api: Api, limit: RateLimit, used: int) -> None:
    """As if this client had sent `used` requests to the bucket this minute."""
    redis = lib_redis.redis()
    assert redis is not None
    redis.set(rate_key(limit.bucket, api.client_ip), str(used), ex=limit.window_s)


def _assert_limited(response: requests.Response, limit: RateLimit) -> None:
    assert response.status_code == 429, response.text
    assert _error(response)["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= limit.window_s


@pytest.mark.parametrize("route", LIMITED, ids=[r.name for r in LIMITED])
def test_a_client_over_its_budget_is_429_before_any_work_and_others_are_served(
    client: Callable[[bool], Api],
    api_server: str,
    db: Db,
    student: Student,
    route: Limited,
) -> None:
    flooder = client(route.admin)
    if LONG:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: route.call(flooder, student), range(route.limit.limit))
            )
        assert 429 not in [a.status_code for a in answers]
    else:
        _head_start(flooder, route.limit, route.limit.limit - 1)
        assert route.call(flooder, student).status_code != 429  # the budget's last request
    before = {table: db.count(table) for table in route.writes}

    limited = route.call(flooder, student)

    _assert_limited(limited, route.limit)
    assert {table: db.count(table) for table in route.writes} == before
    neighbour = Api(api_server) if not route.admin else client(True)
    try:
        assert route.call(neighbour, student).status_code != 429
    finally:
        neighbour.session.close()


def test_a_flood_of_token_guesses_is_stopped_and_admins_elsewhere_are_served(
    client_for: Any, api_server: str
) -> None:
    """The admin budget flooded for real: 300 guesses a minute from one address, then
    429, even with a valid token; an admin at another address is served."""
    guesser: AdminApi = client_for("not-a-token")
    statuses = [guesser.get("/api/admin/me").status_code for _ in range(ADMIN_LIMIT.limit)]
    assert statuses == [401] * ADMIN_LIMIT.limit

    _assert_limited(guesser.get("/api/admin/me"), ADMIN_LIMIT)
    guesser.token = sign(SECRET)
    _assert_limited(guesser.get("/api/admin/me"), ADMIN_LIMIT)
    elsewhere: AdminApi = client_for(sign(SECRET))
    assert elsewhere.get("/api/admin/me").status_code == 200


def test_x_forwarded_for_does_not_make_a_limited_client_another_one(
    api: Api, student: Student
) -> None:
    """The address is Vercel's X-Real-IP; a client-supplied X-Forwarded-For is no way
    around its budget."""
    _head_start(api, limits.LOGIN, limits.LOGIN.limit)
    response = api.post(
        "/api/user/login", student.identity, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    _assert_limited(response, limits.LOGIN)


def test_a_head_start_in_one_bucket_limits_only_that_bucket(api: Api, student: Student) -> None:
    """Negative control of the head start: a client at its login budget still reads
    capacity (another bucket), so each 429 above is its own route's budget at work."""
    _head_start(api, limits.LOGIN, limits.LOGIN.limit)

    assert api.get(f"/api/mock-exams/{student.exam['id']}/capacity").status_code == 200
    _assert_limited(api.post("/api/user/login", student.identity), limits.LOGIN)
