"""The admin sync-audit dashboard (public/admin/) in Debian's headless Chromium, driven
by Playwright, against the app as `./run dev` serves it (local/server.py under
gunicorn) on this session's PostgreSQL and Redis with the demo data, and the HubSpot
stand-in mirroring it (local/hubspot_demo.py), so "Run now" does a real sync.

Screenshots go to artifacts/screenshots/desktop-admin-*.png, axe reports to
artifacts/axe/desktop-admin-*.json (the student page's helpers: tests/browser/conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import requests
from playwright.sync_api import Browser, expect

from local import hubspot_demo, server
from local.admin_token import new_secret, sign
from local.seed import DEMO_STUDENT_ID
from local.standins.hubspot import CONTACTS, Faults, HubSpotStandIn, serve
from tests.browser.conftest import (
    TIMEOUT_MS,
    VIEWPORTS,
    Demo,
    Screen,
    _client_address,
    _free_port,
    http_status,
)
from tests.helpers import CREDIT_KINDS

SECRET = new_secret()
HUBSPOT_TOKEN = "pat-browser-admin-standin"
# Each HubSpot answer takes this long, so a run of the demo backlog lasts a few
# seconds and its progress can be watched; the client's timeouts are far longer.
HUBSPOT_LATENCY_MS = 150
# A whole sync of the demo backlog, with that latency, on a loaded CI machine.
RUN_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def hubspot() -> Iterator[HubSpotStandIn]:
    with serve(
        HUBSPOT_TOKEN,
        per_10s=10_000,
        interval_ms=1000,
        search_per_s=10_000,
        associations_per_10s=10_000,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def admin_site(database_url: str, redis_url: str, hubspot: HubSpotStandIn) -> Iterator[str]:
    """The app with admin sign-in (SUPABASE_JWT_SECRET) and HubSpot (the stand-in)."""
    import os

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUBSPOT_", "SUPABASE_", "UPSTASH_"))
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LOCAL_TRUST_FORWARDED="1",
        SUPABASE_JWT_SECRET=SECRET,
        HUBSPOT_BASE_URL=hubspot.url,
        HUBSPOT_ACCESS_TOKEN=HUBSPOT_TOKEN,
        HUBSPOT_APP_ID=hubspot.app_id,
    )
    options = server.Options(port=_free_port(), workers=1, threads=8)
    with server.running(options, env):
        yield f"http://{options.host}:{options.port}"


@pytest.fixture
def world(demo: Demo, database_url: str, hubspot: HubSpotStandIn) -> Demo:
    """The demo data, and HubSpot holding what it would hold beside it."""
    hubspot.reset()
    hubspot.set_faults(Faults(latency_ms=HUBSPOT_LATENCY_MS))
    hubspot_demo.mirror(hubspot, database_url)
    return demo


@pytest.fixture
def dashboard(browser: Browser, admin_site: str) -> Iterator[Callable[..., Screen]]:
    """Factory: a fresh desktop tab on the dashboard."""
    contexts = []

    def make(viewport: str = "desktop") -> Screen:
        context = browser.new_context(
            viewport=VIEWPORTS[viewport],
            locale="en-CA",
            timezone_id="America/Vancouver",  # the dashboard shows Toronto time anyway
            extra_http_headers={"X-Real-IP": _client_address()},
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        screen = Screen(page=page, base=admin_site, viewport=viewport)
        page.on("console", lambda m: screen.console_errors.append(m) if m.type == "error" else None)
        page.on("pageerror", lambda e: screen.page_errors.append(str(e)))
        page.on("request", lambda r: screen.requests.append(r))  # noqa: PLW0108 - Playwright needs a Python function
        return screen

    yield make
    for context in contexts:
        context.close()


def sign_in(screen: Screen, token: str | None = None) -> None:
    screen.open("/admin/")
    screen.page.get_by_label("Access token").fill(token or sign(SECRET, email="ops@school.example"))
    screen.page.get_by_role("button", name="Sign in").click()


def number(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def pending_in_database(world: Demo) -> int:
    row = world.db.one(
        "select (select count(*) from hubspot_sync.hubspot_bookings"
        "          where hubspot_id is null or hubspot_last_sync_at is null"
        "             or updated_at > hubspot_last_sync_at)"
        "     + (select count(*) from hubspot_sync.hubspot_contact_credits"
        "          where hubspot_id is null) as n"
    )
    return int(row["n"])


def test_run_now_and_look_up_demo001(dashboard: Callable[..., Screen], world: Demo) -> None:
    """The issue's walk-through: read the pending count, run the sync, see the run with
    its counts, look up DEMO001; one screen, no scrolling, nothing leaves the origin."""
    screen = dashboard()
    page = screen.page
    sign_in(screen)

    expect(page.get_by_role("heading", name="HubSpot sync audit")).to_be_visible()
    pending = page.locator("#pending-total")
    expect(pending).not_to_have_text("–")
    before = number(pending.inner_text())
    assert before >= pending_in_database(world) > 0
    expect(page.locator("#runs")).to_contain_text("No sync run has been recorded yet.")
    expect(page.locator('.alert[data-code="OLDEST_PENDING_OVER_GOAL"]')).to_be_visible()
    screen.check_accessibility("admin-before-run")

    page.get_by_role("button", name="Run now").click()

    # Live progress while the run works: the button is busy, the phases fill in.
    expect(page.get_by_role("button", name="Running…")).to_be_disabled()
    expect(page.locator("#progress .phases")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#run-outcome")).to_contain_text("Succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Run now")).to_be_enabled()

    row = page.locator("#runs tbody tr").first
    expect(row).to_have_attribute("data-status", "succeeded")
    run = world.db.one("select * from hubspot_sync.sync_runs where status = 'succeeded'")
    expect(row).to_have_attribute("data-run", str(run["id"]))
    synced = sum(p["created"] + p["updated"] for p in run["phases"].values())
    assert synced > 0
    expect(row.locator("td").nth(4)).to_have_text(f"{synced:,}")
    expect(pending).to_have_text("0")
    assert pending_in_database(world) == 0
    expect(page.locator('.alert[data-code="OLDEST_PENDING_OVER_GOAL"]')).to_have_attribute(
        "data-active", "false"
    )
    expect(page.locator("#errors")).to_contain_text("The last run recorded no errors.")
    expect(page.locator("#chart svg rect.bar")).to_have_count(1)

    # One screen at 1280 x 800: nothing to scroll to.
    scroll = page.evaluate("() => [document.documentElement.scrollHeight, window.innerHeight]")
    assert scroll[0] <= scroll[1], f"the dashboard scrolls: {scroll}"
    screen.shot("admin-dashboard")
    screen.check_accessibility("admin-after-run")

    page.get_by_label("Booking code, booking or HubSpot id, student ID or email").fill("demo001")
    page.get_by_role("button", name="Search", exact=True).click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", level=2)).to_contain_text(DEMO_STUDENT_ID)
    for kind in CREDIT_KINDS:
        expect(dialog.locator(f'td[data-kind="{kind}"]')).to_have_text(str(world.contact[kind]))
    expect(dialog.get_by_role("heading", name=re.compile(r"^Bookings \(\d+\)$"))).to_be_visible()
    screen.shot("admin-student")
    screen.check_accessibility("admin-student")
    screen.assert_clean()


def test_an_admin_adjusts_credits_and_hubspot_gets_them_on_the_next_run(
    dashboard: Callable[..., Screen], world: Demo, hubspot: HubSpotStandIn
) -> None:
    screen = dashboard()
    page = screen.page
    sign_in(screen)
    page.get_by_label("Booking code, booking or HubSpot id, student ID or email").fill(
        "demo001@example.com"
    )
    page.get_by_role("button", name="Search", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Change to Clinical Skills credits").fill("3")
    dialog.get_by_label("Reason (kept in the audit log)").fill("Make-up for the cancelled session")
    dialog.get_by_role("button", name="Apply change").click()

    expect(dialog.get_by_role("status")).to_contain_text("Credits changed")
    expect(dialog.locator('td[data-kind="cs_credits"]')).to_have_text(
        str(world.contact["cs_credits"] + 3)
    )
    history = dialog.locator("table").last
    expect(history.locator("tbody tr").first).to_contain_text("admin:ops@school.example")
    expect(history.locator("tbody tr").first).to_contain_text("Make-up for the cancelled session")
    # The student sees it at once.
    login = requests.post(
        screen.base + "/api/user/login",
        json={"student_id": DEMO_STUDENT_ID, "email": world.contact["email"]},
        headers={"X-Real-IP": _client_address()},
        timeout=10,
    )
    assert login.json()["data"]["credits"]["cs_credits"] == world.contact["cs_credits"] + 3

    dialog.get_by_role("button", name="Close").click()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-outcome")).to_contain_text("Succeeded", timeout=RUN_TIMEOUT_MS)

    record = next(r for r in hubspot.objects(CONTACTS) if r["id"] == world.contact["hubspot_id"])
    assert record["properties"]["cs_credits"] == str(world.contact["cs_credits"] + 3)
    screen.assert_clean()


def test_a_bad_token_a_student_token_and_an_expired_session(
    dashboard: Callable[..., Screen], world: Demo
) -> None:
    screen = dashboard()
    page = screen.page
    sign_in(screen, "not-a-token")
    expect(page.locator("#token-error")).to_contain_text("The token was refused")
    sign_in(screen, sign(SECRET, role="student"))
    expect(page.locator("#token-error")).to_contain_text("not an admin")
    screen.check_accessibility("admin-sign-in-refused")

    # A token that expires while the dashboard is open: the next refresh signs out.
    sign_in(screen, sign(SECRET, ttl_s=-25))  # inside the 30 s leeway: accepted
    expect(page.locator("#dashboard")).to_be_visible()
    page.wait_for_timeout(6000)  # past the leeway
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#token-error")).to_contain_text("session has expired", timeout=15_000)
    assert page.evaluate("() => sessionStorage.getItem('admin.accessToken')") is None
    screen.assert_clean(
        expected=(
            (http_status(401), "/api/admin/me"),
            (http_status(403), "/api/admin/me"),
            (http_status(401), "/api/admin/sync/status"),
            (http_status(401), "/api/admin/sync/runs"),
            (http_status(401), "/api/admin/sync/history"),
        )
    )


def test_the_token_from_the_dev_link_signs_in_and_leaves_the_address_bar(
    dashboard: Callable[..., Screen], world: Demo
) -> None:
    screen = dashboard()
    token = sign(SECRET)
    screen.open(f"/admin/#token={token}")
    expect(screen.page.locator("#dashboard")).to_be_visible()
    assert "token" not in screen.page.url
    assert screen.page.evaluate("() => sessionStorage.getItem('admin.accessToken')") == token
    screen.page.reload()
    expect(screen.page.locator("#dashboard")).to_be_visible()
    screen.page.get_by_role("button", name="Sign out").click()
    expect(screen.page.get_by_label("Access token")).to_be_visible()
    screen.assert_clean()


def test_a_failed_run_shows_its_errors_with_correlation_ids(
    dashboard: Callable[..., Screen], world: Demo, hubspot: HubSpotStandIn
) -> None:
    """HubSpot refuses one booking: the run ends partial, the alert row says so, and
    the errors panel lists the record with HubSpot's correlation id."""
    code = world.db.one(
        "select booking_id from hubspot_sync.hubspot_bookings where hubspot_id is null"
        " order by id limit 1"
    )["booking_id"]
    hubspot.set_faults(Faults(latency_ms=HUBSPOT_LATENCY_MS, conflict_ids=frozenset({code})))
    screen = dashboard()
    page = screen.page
    sign_in(screen)
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-outcome")).to_contain_text("Partly failed", timeout=RUN_TIMEOUT_MS)

    errors = page.locator("#errors tbody tr")
    expect(errors).to_have_count(1)
    correlation = world.db.one("select correlation_id from hubspot_sync.sync_run_errors limit 1")[
        "correlation_id"
    ]
    assert correlation
    expect(errors.first.locator(".correlation")).to_have_text(correlation)
    expect(page.locator("#last-status")).to_have_text("Partly failed")
    screen.shot("admin-run-errors")
    screen.check_accessibility("admin-run-errors")
    screen.assert_clean()


def test_empty_and_unreachable_states(
    dashboard: Callable[..., Screen], world: Demo, admin_site: str
) -> None:
    screen = dashboard()
    page = screen.page
    sign_in(screen)
    expect(page.locator("#chart")).to_contain_text("No sync runs in the last 7 days")
    expect(page.locator("#errors")).to_contain_text("No run has finished yet.")
    expect(page.locator('.alert[data-code="LAST_RUN_FAILED"]')).to_contain_text(
        "No sync run has finished yet"
    )
    page.get_by_label("Booking code, booking or HubSpot id, student ID or email").fill("ZZNOBODY")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results")).to_contain_text("Nothing matches")

    # The server goes away: the last picture stays, marked as stale.
    page.route("**/api/admin/**", lambda route: route.abort())
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#connection")).to_contain_text("Cannot reach the server")
    expect(page.locator("#pending-total")).not_to_have_text("–")
    screen.shot("admin-unreachable")
    page.unroute("**/api/admin/**")
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#connection")).to_be_hidden()
    screen.assert_clean(
        expected=tuple(
            ("Failed to load resource: net::ERR_FAILED", path)
            for path in (
                "/api/admin/sync/status",
                "/api/admin/sync/runs",
                "/api/admin/sync/history",
            )
        )
    )


def test_cancel_a_booking_on_the_students_behalf_without_refund(
    dashboard: Callable[..., Screen], world: Demo
) -> None:
    booking = world.db.one(
        "select b.*, c.id as contact_id from hubspot_sync.hubspot_bookings b"
        " join hubspot_sync.hubspot_contact_credits c"
        "   on c.student_id = b.student_id and c.email = b.student_email"
        " where b.is_active = 'Active' and b.token_used = 'Clinical Skills Token'"
        "   and b.hubspot_id is null"
        " order by b.booking_id limit 1"
    )
    credits_before = world.db.one(
        "select cs_credits from hubspot_sync.hubspot_contact_credits where id = %s",
        booking["contact_id"],
    )["cs_credits"]
    screen = dashboard()
    page = screen.page
    sign_in(screen)
    page.get_by_label("Booking code, booking or HubSpot id, student ID or email").fill(
        booking["booking_id"]
    )
    page.get_by_role("button", name="Search", exact=True).click()

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", level=2)).to_have_text(f"Booking {booking['booking_id']}")
    expect(dialog).to_contain_text("not in HubSpot yet")
    dialog.get_by_label(re.compile("Give back the credit")).uncheck()
    dialog.get_by_label("Reason (kept in the audit log)").fill("No-show, policy: credit kept")
    screen.shot("admin-booking")
    screen.check_accessibility("admin-booking")
    dialog.get_by_role("button", name="Cancel this booking").click()

    expect(dialog.get_by_role("status")).to_have_text("Cancelled; no credit given back.")
    expect(dialog).to_contain_text("Cancelled")
    expect(dialog.locator("table").last.locator("tbody tr").first).to_contain_text(
        "No-show, policy: credit kept"
    )
    row = world.db.one(
        "select is_active from hubspot_sync.hubspot_bookings where id = %s", booking["id"]
    )
    assert row["is_active"] == "Cancelled"
    assert (
        world.db.one(
            "select cs_credits from hubspot_sync.hubspot_contact_credits where id = %s",
            booking["contact_id"],
        )["cs_credits"]
        == credits_before
    )
    screen.assert_clean()
