"""The student page (public/index.html) in real headless Chromium, driven by Playwright,
against the app served as `./run dev` serves it (local/server.py under gunicorn) on
this session's PostgreSQL and Redis, loaded with the demo data (local/seed.py).

Chromium is Debian's (`/usr/bin/chromium`, or `CHROMIUM_PATH`); Playwright never
downloads a browser. No Chromium means these tests fail, loudly: `./run test`
installs Debian's package when it runs as root (see `run`).

Artefacts (git-ignored) go to `artifacts/`: screenshots at phone and desktop widths
under `artifacts/screenshots/`, one axe-core report per screen under `artifacts/axe/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis as redis_py
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    ViewportSize,
    sync_playwright,
)

from lib.models import MOCK_TYPES
from lib.redis_scripts import exam_list_key, seats_key
from local import server
from local.seed import DEMO_EMAIL, DEMO_STUDENT_ID, seed
from tests.helpers import Db

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_REPORTS = ARTIFACTS / "axe"
AXE_FILE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
# What the page must meet: WCAG 2.2 A and AA, plus axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
# The issue asks for no serious or critical violation; the page meets axe's whole rule
# set, so any violation at all fails (a new minor one is fixed, not accumulated).
BLOCKING_IMPACTS = ("minor", "moderate", "serious", "critical")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS: dict[str, ViewportSize] = {
    "phone": {"width": 360, "height": 740},
    "desktop": {"width": 1280, "height": 800},
}
# Playwright's waits: the page answers in well under a second on this stack; 10 s
# only bounds a stuck test on a loaded CI machine.
TIMEOUT_MS = 10_000
DEMO = {"student_id": DEMO_STUDENT_ID, "email": DEMO_EMAIL}


class NoBrowser(RuntimeError):
    """No Chromium to drive."""


def _installed() -> tuple[str | None, ...]:
    return ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))


def chromium_executable(
    environ: Mapping[str, str] | None = None,
    candidates: Callable[[], tuple[str | None, ...]] = _installed,
) -> str:
    """The Chromium to drive: CHROMIUM_PATH when set (it must exist), else Debian's."""
    env = os.environ if environ is None else environ
    wanted = env.get("CHROMIUM_PATH")
    if wanted:
        if Path(wanted).is_file() and os.access(wanted, os.X_OK):
            return wanted
        raise NoBrowser(f"CHROMIUM_PATH={wanted} is not an executable file")
    for candidate in candidates():
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise NoBrowser(
        "No Chromium found for the browser tests (tests/browser). `./run test` installs "
        "Debian's `chromium` package when run as root; otherwise run "
        "`apt-get install chromium` or set CHROMIUM_PATH to a Chromium binary."
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable, missing = "", ""
    try:
        executable = chromium_executable()
    except NoBrowser as error:
        missing = str(error)
    if missing:  # a failure, never a skip: no browser means these tests did not pass
        pytest.fail(missing, pytrace=False)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def site(database_url: str, redis_url: str) -> Iterator[str]:
    """The app as `./run dev` serves it (gunicorn, api/ and public/), on this session's
    database and Redis. Client addresses come from X-Real-IP (each test browses as a
    client of its own, so per-client rate limits never couple tests)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUBSPOT_", "SUPABASE_", "UPSTASH_"))
    }
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, LOCAL_TRUST_FORWARDED="1")
    options = server.Options(port=_free_port(), workers=1, threads=8)
    with server.running(options, env):
        yield f"http://{options.host}:{options.port}"


@pytest.fixture(scope="session")
def redis_admin(redis_url: str) -> Iterator[redis_py.Redis]:
    connection = redis_py.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    yield connection
    connection.close()


@dataclass
class Demo:
    """The demo data, freshly loaded, and ways to read the truth behind the page."""

    db: Db
    contact: dict[str, Any]

    def credits(self) -> dict[str, int]:
        return self.db.credits(self.contact)

    def active_bookings(self, exam_id: str | None = None) -> list[dict[str, Any]]:
        rows = self.db.all(
            "select b.*, e.id as exam_uuid from hubspot_sync.hubspot_bookings b"
            " join hubspot_sync.hubspot_mock_exams e on e.hubspot_id = b.associated_mock_exam"
            " where b.student_id = %s and b.is_active = 'Active'"
            " order by b.created_at",
            DEMO_STUDENT_ID,
        )
        return [r for r in rows if exam_id is None or str(r["exam_uuid"]) == exam_id]

    def exam(self, exam_id: str) -> dict[str, Any]:
        return self.db.one("select * from hubspot_sync.hubspot_mock_exams where id = %s", exam_id)

    def upcoming_exams(self, mock_type: str) -> list[dict[str, Any]]:
        return self.db.all(
            "select *, capacity - (hubspot_sync._seat_state(e)).booked as seats_left"
            " from hubspot_sync.hubspot_mock_exams e"
            " where mock_type = %s and is_active = 'true'"
            " and hubspot_sync.text_time(start_time) > now()"
            " order by hubspot_sync.text_time(start_time), id",
            mock_type,
        )


@pytest.fixture
def demo(db: Db, database_url: str, redis_admin: redis_py.Redis) -> Demo:
    """The demo data of `./run dev`, loaded afresh for this test. The seed is
    reproducible (the same exam UUIDs every time), so Redis copies of seat counts and
    cached session lists from an earlier test are dropped too."""
    seed(database_url)
    exam_ids = [str(r["id"]) for r in db.all("select id from hubspot_sync.hubspot_mock_exams")]
    redis_admin.delete(*[seats_key(i) for i in exam_ids], *[exam_list_key(t) for t in MOCK_TYPES])
    contact = db.one(
        "select * from hubspot_sync.hubspot_contact_credits where student_id = %s", DEMO_STUDENT_ID
    )
    return Demo(db, contact)


# ---------------------------------------------------------------- a browsing student


@dataclass
class Screen:
    """One tab of the student page at one width, with what it logged and requested."""

    page: Page
    base: str
    viewport: str
    console_errors: list[ConsoleMessage] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    axe_results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def open(self, path: str = "/") -> None:
        self.page.goto(self.base + path)

    def login(self, student_id: str = DEMO_STUDENT_ID, email: str = DEMO_EMAIL) -> None:
        self.page.get_by_label("Student ID").fill(student_id)
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_role("button", name="Log in").click()

    def shot(self, name: str) -> Path:
        """A screenshot, artifacts/screenshots/<viewport>-<name>.png: the whole page, or
        what the student sees while a dialog is open (its backdrop covers the window)."""
        # Readable at this width: nothing wider than the window, or than an open dialog.
        overflow = self.page.evaluate(
            """() => [document.documentElement, ...document.querySelectorAll('dialog[open]')]
                .filter((el) => el.scrollWidth > el.clientWidth)
                .map((el) => `${el.tagName} ${el.scrollWidth} > ${el.clientWidth}`)"""
        )
        assert not overflow, f"{self.viewport} {name}: content wider than its box: {overflow}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.viewport}-{name}.png"
        dialog_open = self.page.evaluate("() => !!document.querySelector('dialog[open]')")
        self.page.screenshot(path=str(path), full_page=not dialog_open, animations="disabled")
        return path

    def check_accessibility(self, screen: str) -> list[dict[str, Any]]:
        """Run axe-core on the page as it is; fail on any violation (BLOCKING_IMPACTS).
        Every violation found is written to artifacts/axe/<viewport>-<screen>.json."""
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            # Evaluated through the DevTools protocol, not as a page script: the page's
            # Content-Security-Policy (script-src 'self') stays on and untouched.
            self.page.evaluate(axe_source())
        result = self.page.evaluate(
            """async (tags) => {
                const r = await axe.run(document, {runOnly: {type: "tag", values: tags}});
                return {version: r.testEngine.version, violations: r.violations.map((v) => ({
                    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                    nodes: v.nodes.map((n) => ({target: n.target, summary: n.failureSummary})),
                }))};
            }""",
            AXE_TAGS,
        )
        assert result["version"] == AXE_VERSION
        violations: list[dict[str, Any]] = result["violations"]
        AXE_REPORTS.mkdir(parents=True, exist_ok=True)
        report = {"screen": screen, "viewport": self.viewport, "url": self.page.url, **result}
        (AXE_REPORTS / f"{self.viewport}-{screen}.json").write_text(json.dumps(report, indent=2))
        self.axe_results[screen] = violations
        blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
        assert not blocking, f"axe on {self.viewport} {screen}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in blocking
        )
        return violations

    def assert_clean(self, *, expected: tuple[tuple[str, str], ...] = ()) -> None:
        """No script error, no console error, and no request leaving the page's origin.
        Chromium itself logs every 4xx answer and every dropped request as a console
        error ("Failed to load resource: ..."); `expected` lists the (message start,
        API path) pairs a test provoked on purpose."""
        assert not self.page_errors, self.page_errors
        unexpected = [
            f"{m.text} ({m.location.get('url')})"
            for m in self.console_errors
            if not any(
                m.text.startswith(text) and urlsplit(m.location.get("url", "")).path == path
                for text, path in expected
            )
        ]
        assert not unexpected, unexpected
        origin = urlsplit(self.base)
        foreign = [
            r.url
            for r in self.requests
            if urlsplit(r.url).scheme != "data" and urlsplit(r.url)[:2] != origin[:2]
        ]
        assert not foreign, f"requests left the page's origin: {foreign}"

    def api_requests(self, path: str, method: str = "GET") -> list[Request]:
        return [r for r in self.requests if r.method == method and urlsplit(r.url).path == path]


_AXE: dict[str, str] = {}


def axe_source() -> str:
    if "source" not in _AXE:
        data = AXE_FILE.read_bytes()
        assert hashlib.sha256(data).hexdigest() == AXE_SHA256, (
            f"{AXE_FILE} is not axe-core {AXE_VERSION}"
        )
        _AXE["source"] = data.decode()
    return _AXE["source"]


def _client_address() -> str:
    # Rate limits are per client address; each tab is a client of its own.
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@pytest.fixture
def open_screen(browser: Browser, site: str) -> Iterator[Callable[..., Screen]]:
    """Factory: a fresh tab (its own context: no shared sessionStorage) at a width."""
    contexts = []

    def make(viewport: str = "desktop", *, clock: bool = False) -> Screen:
        context = browser.new_context(
            viewport=VIEWPORTS[viewport],
            locale="en-CA",
            timezone_id="America/Vancouver",  # the page must show Toronto time anyway
            extra_http_headers={"X-Real-IP": _client_address()},
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        if clock:
            page.clock.install()
        screen = Screen(page=page, base=site, viewport=viewport)
        page.on("console", lambda m: screen.console_errors.append(m) if m.type == "error" else None)
        page.on("pageerror", lambda e: screen.page_errors.append(str(e)))
        # A lambda, not list.append: Playwright tags its handlers with an attribute,
        # which a built-in method cannot carry.
        page.on("request", lambda r: screen.requests.append(r))  # noqa: PLW0108
        return screen

    yield make
    for context in contexts:
        context.close()


def http_status(status: int) -> str:
    """The start of Chromium's console line for an HTTP error answer."""
    return f"Failed to load resource: the server responded with a status of {status}"


def seats_text(available: int, capacity: int) -> str:
    """The seats line the page shows for a session."""
    if available <= 0:
        return f"No seats left ({capacity} in all)"
    return f"{available} seat{'' if available == 1 else 's'} left of {capacity}"


def code_pattern() -> re.Pattern[str]:
    return re.compile(r"BK-\d{8}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}")
