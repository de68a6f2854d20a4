"""`./run vercel-dev` serves the app through Vercel's own dev server, with the answers
of the local server.

The command is started as a user would (`./run vercel-dev --port P`), pointed at a fresh
database of the test PostgreSQL and at the test Redis through DATABASE_URL / REDIS_URL,
which it migrates and loads with the demo data. The same walk (the student flow, the cron
route, an admin route) then runs against it and against local/server.py on another
fresh database loaded the same way, and the two answer alike: same statuses, same
envelopes, same values once ids, codes, times and request ids are masked.

The first request to each function makes `vercel dev` build it (~15 s each here), so
this test takes a few minutes; the functions are warmed one by one first.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from local import dev, hubspot_demo, server
from local.server import ROOT
from local.stack import free_port
from tests.security.logscan import child_output

pytestmark = pytest.mark.slow

CRON_SECRET = "vercel-dev-test-cron-secret"
DEMO = {"student_id": "DEMO001", "email": "demo001@example.com"}
# Installing the CLI (first run on a machine: ~20 s), migrating and seeding (~5 s), and
# the dev server's own start (~3 s); five minutes means it is stuck.
START_TIMEOUT_S = 300.0
# A function's first request waits for its build (~15 s here, one venv per function).
FIRST_REQUEST_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
TOKEN_LINE = re.compile(r"or paste the token: (\S+)")


# Each server gets a Redis database of its own: the demo data gives both databases the
# same exam ids, so shared seat counters would mix one server's counts into the other's.
VERCEL_DEV_REDIS_DB = 14
LOCAL_SERVER_REDIS_DB = 15


def _redis_db(redis_url: str, number: int) -> str:
    """redis_url on database `number`, emptied first."""
    import redis

    split = urlsplit(redis_url)
    url = urlunsplit((split.scheme, split.netloc, f"/{number}", split.query, ""))
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@dataclass
class Served:
    base: str
    admin_token: str
    log: Callable[[], str] = str  # the server's output so far, for failure messages


class _Output:
    """A child's output, read in the background: kept for the log scan and searched."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def join(self) -> None:
        self._thread.join(STOP_TIMEOUT_S)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], process: subprocess.Popen[str]) -> re.Match[str]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = pattern.search(self.text())
            if found:
                return found
            if process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"never saw {pattern.pattern}:\n{self.text()[-4000:]}")


@pytest.fixture(scope="module")
def vercel_dev(new_database: Callable[[], str], redis_url: str) -> Iterator[Served]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": new_database(),
        "REDIS_URL": _redis_db(redis_url, VERCEL_DEV_REDIS_DB),
        "CRON_SECRET": CRON_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [str(ROOT / "run"), "vercel-dev", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = _Output(process)
    try:
        token = output.wait_for(TOKEN_LINE, process).group(1)
        output.wait_for(re.compile(r"Ready! Available at"), process)
        yield Served(f"http://127.0.0.1:{port}", token, output.text)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.join()
        assert process.stdout is not None
        process.stdout.close()
        # The banner prints this run's secrets for the developer (as ./run dev does); the
        # functions' own logs after it are scanned like every other child's.
        text = output.text()
        child_output("vercel dev functions", text.split("Ready! Available at", 1)[-1])
    assert process.returncode == 0, output.text()[-4000:]
    assert not (ROOT / ".env").exists(), "./run vercel-dev leaves no .env behind"


@pytest.fixture(scope="module")
def local_server(new_database: Callable[[], str], redis_url: str) -> Iterator[Served]:
    """local/server.py on a database prepared as ./run dev prepares it."""
    services = dev.Services(
        database_url=new_database(), redis_url=_redis_db(redis_url, LOCAL_SERVER_REDIS_DB)
    )
    dev.prepare_database(services, load_demo_data=True)
    hubspot = hubspot_demo.start(0, database_url=services.database_url)
    admin = dev.dev_admin({})
    env = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "HUBSPOT_BASE_URL": hubspot.url,
        "HUBSPOT_ACCESS_TOKEN": hubspot.token,
        "HUBSPOT_APP_ID": hubspot.app_id,
        "CRON_SECRET": CRON_SECRET,
        **admin.env,
    }
    options = server.Options(port=free_port(), workers=1, threads=4)
    with open(os.devnull, "wb") as quiet:
        process = server.start(options, env, output=quiet)
        try:
            yield Served(f"http://127.0.0.1:{options.port}", admin.token)
        finally:
            server.stop(process)
            hubspot.stop()


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CODE = re.compile(r"^BK-\d{8}-[0-9A-Z]{6}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
VOLATILE_KEYS = frozenset(
    {"request_id", "duration_ms", "latency_ms", "hubspot_id", "run_id", "started_at"}
)


def masked(value: Any) -> Any:
    """The answer with what differs between two databases masked: ids, codes, times."""
    if isinstance(value, dict):
        return {
            key: "<volatile>" if key in VOLATILE_KEYS else masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, str):
        for pattern, mask in ((UUID, "<uuid>"), (CODE, "<code>"), (TIME, "<time>")):
            if pattern.match(value):
                return mask
    return value


def walk(served: Served) -> list[tuple[str, int, Any]]:
    """The student flow, the cron route and an admin route; each answer as
    (step, status, body)."""
    session = requests.Session()
    steps: list[tuple[str, int, Any]] = []

    def call(step: str, method: str, path: str, **kwargs: Any) -> Any:
        response = session.request(
            method, served.base + path, timeout=FIRST_REQUEST_TIMEOUT_S, **kwargs
        )
        assert response.headers["Content-Type"].startswith("application/json"), (
            step,
            response.text[:300],
        )
        assert response.headers.get("X-Request-Id"), step
        body = response.json()
        steps.append((step, response.status_code, body))
        return body

    call("login", "POST", "/api/user/login", json=DEMO)
    sessions = call(
        "available",
        "GET",
        "/api/mock-exams/available?mock_type=Clinical%20Skills&include_capacity=true",
    )["data"]
    exam = next(s for s in sessions if s["available_slots"] > 0)
    created = call(
        "create",
        "POST",
        "/api/bookings/create",
        json={**DEMO, "mock_exam_id": exam["id"], "dominant_hand": "right"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )["data"]
    call("get by uuid", "GET", f"/api/bookings/{created['id']}", params=DEMO)
    call("get by code", "GET", f"/api/bookings/{created['booking_id']}", params=DEMO)
    call("capacity", "GET", f"/api/mock-exams/{exam['id']}/capacity")
    call("cancel", "DELETE", f"/api/bookings/{created['id']}", json=DEMO)
    call("list", "GET", "/api/bookings/list", params={**DEMO, "filter": "all"})
    call("cron without secret", "GET", "/api/cron/sync")
    call("cron", "GET", "/api/cron/sync", headers={"Authorization": f"Bearer {CRON_SECRET}"})
    call(
        "admin me",
        "GET",
        "/api/admin/me",
        headers={"Authorization": f"Bearer {served.admin_token}"},
    )
    call("admin without token", "GET", "/api/admin/sync/status")
    # Functions whose file names repeat in other folders (`[id].py`, `index.py`): each
    # URL must reach its own file, whatever the dev server's build cache calls them.
    call("admin cancel without token", "DELETE", f"/api/admin/bookings/{created['booking_id']}")
    call("admin run without token", "GET", f"/api/admin/sync/runs/{created['id']}")
    call("admin student without token", "GET", f"/api/admin/students/{created['id']}")
    return steps


WARM_PATHS = (
    ("POST", "/api/user/login"),
    ("GET", "/api/mock-exams/available"),
    ("POST", "/api/bookings/create"),
    ("GET", "/api/bookings/x"),
    ("GET", "/api/mock-exams/x/capacity"),
    ("GET", "/api/bookings/list"),
    ("GET", "/api/cron/sync"),
    ("GET", "/api/admin/me"),
    ("GET", "/api/admin/sync/status"),
    ("DELETE", "/api/admin/bookings/x"),
    ("GET", "/api/admin/sync/runs/x"),
    ("GET", "/api/admin/students/x"),
)


def _warm(served: Served) -> None:
    """One request per function: `vercel dev` builds each on first use. One at a time,
    as a developer's clicks reach them: parallel first requests race in the dev
    server's build cache."""

    def one(call: tuple[str, str]) -> int:
        method, path = call
        return requests.request(
            method, served.base + path, json={}, timeout=FIRST_REQUEST_TIMEOUT_S
        ).status_code

    statuses = [one(call) for call in WARM_PATHS]
    if any(status >= 500 for status in statuses):
        pytest.fail(
            f"warming answered {statuses}; the dev server's output is in {_keep_log(served)}"
        )


def _keep_log(served: Served) -> Path:
    """The dev server's output so far, written where a failed run can be read."""
    log = ROOT / ".local" / "test-vercel-dev.log"
    log.write_text(served.log())
    return log


def test_the_walk_answers_alike_on_vercel_dev_and_the_local_server(
    vercel_dev: Served, local_server: Served
) -> None:
    _warm(vercel_dev)
    try:
        on_vercel = walk(vercel_dev)
    except requests.RequestException as exc:
        # Seen in a fresh-clone CI and once more alone: a walk request unanswered for 180 s
        # after the warm-up answered every function; the dev server's output says why.
        pytest.fail(f"{exc!r}; the dev server's output is in {_keep_log(vercel_dev)}")
    on_local = walk(local_server)
    expected = {
        "login": 200,
        "available": 200,
        "create": 201,
        "get by uuid": 200,
        "get by code": 200,
        "capacity": 200,
        "cancel": 200,
        "list": 200,
        "cron without secret": 401,
        "cron": 200,
        "admin me": 200,
        "admin without token": 401,
        "admin cancel without token": 401,
        "admin run without token": 401,
        "admin student without token": 401,
    }
    assert {step: status for step, status, _ in on_vercel} == expected, on_vercel
    assert {step: status for step, status, _ in on_local} == expected, on_local
    for (step, _, vercel_body), (_, _, local_body) in zip(on_vercel, on_local, strict=True):
        if step == "cron":
            # The sync's counts depend on what each HubSpot stand-in held; the shape and
            # the outcome must agree.
            assert vercel_body["success"] is local_body["success"] is True
            assert set(vercel_body["data"]) == set(local_body["data"]), step
            continue
        assert masked(vercel_body) == masked(local_body), step
    created = next(body for step, _, body in on_vercel if step == "create")["data"]
    assert created["credits_after"]["cs_credits"] == 4
    cancelled = next(body for step, _, body in on_vercel if step == "cancel")["data"]
    assert cancelled["credits"]["cs_credits"] == 5


def test_an_unknown_api_path_is_vercels_own_404(vercel_dev: Served) -> None:
    # Documented in the README: Vercel answers a path no function serves itself.
    response = requests.get(vercel_dev.base + "/api/nope", timeout=30)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")
