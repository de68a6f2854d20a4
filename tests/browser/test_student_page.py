"""The student booking page (issue 6) as a student uses it, in real Chromium against
the real stack: log in, credits, sessions, booking (double click, lost answer, full
session), my bookings, cancelling; keyboard use, widths, accessibility (axe-core)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Locator, Route, expect

from tests.browser.conftest import (
    DEMO,
    Demo,
    NoBrowser,
    Screen,
    chromium_executable,
    code_pattern,
    http_status,
    seats_text,
)

OpenScreen = Callable[..., Screen]
TORONTO = ZoneInfo("America/Toronto")
CREDIT_NAMES = {
    "sj_credits": ("Situational Judgment", "Pays for Situational Judgment"),
    "cs_credits": ("Clinical Skills", "Pays for Clinical Skills"),
    "sjmini_credits": ("Mini-mock", "Pays for Mini-mock"),
    "mock_discussion_token": ("Mock Discussion", "Pays for Mock Discussion"),
    "shared_mock_credits": ("Shared", "Pays for Situational Judgment or Clinical Skills"),
}
ALL_FIVE = dict.fromkeys(CREDIT_NAMES, 5)


# ---------------------------------------------------------------- helpers


def toronto_time(moment: datetime | str) -> str:
    """A time as the page shows it in Toronto: "1:00 p.m.". The exams table holds it as
    text, in the old app's ISO form."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(TORONTO)
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'a.m.' if local.hour < 12 else 'p.m.'}"


def choose_type(screen: Screen, mock_type: str) -> None:
    screen.page.get_by_role("radio", name=re.compile(f"^{re.escape(mock_type)}")).check()
    expect(screen.page.locator("#session-list-title")).to_have_text(f"{mock_type} sessions")
    expect(screen.page.locator("#session-area")).to_have_attribute("aria-busy", "false")


def card(screen: Screen, exam_id: str) -> Locator:
    return screen.page.locator(f'.session[data-exam-id="{exam_id}"]')


def book_button(screen: Screen, exam_id: str) -> Locator:
    return card(screen, exam_id).get_by_role("button", name=re.compile("^Book"))


def logged_in(screen: Screen) -> None:
    """Logged in as DEMO001, with credits, sessions and every bookings tab loaded."""
    expect(screen.page.get_by_role("heading", name="Hello, Demo")).to_be_visible()
    expect(screen.page.locator(".session-list")).to_be_visible()
    for filter_ in ("upcoming", "past", "cancelled"):
        expect(screen.page.locator(f'[data-count="{filter_}"]')).to_have_text(
            re.compile(r"\(\d+\)")
        )


def book_as_someone_else(screen: Screen, demo: Demo, exam: dict[str, Any]) -> None:
    """Another student takes a seat, through the API as their own browser would."""
    other = demo.db.contact(sj_credits=1, cs_credits=1, sjmini_credits=1)
    body: dict[str, Any] = {
        "student_id": other["student_id"],
        "email": other["email"],
        "mock_exam_id": str(exam["id"]),
    }
    if exam["mock_type"] == "Clinical Skills":
        body["dominant_hand"] = "left"
    else:
        body["attending_location"] = "online"
    response = requests.post(
        f"{screen.base}/api/bookings/create",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-Real-IP": "10.99.0.1"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def api_bookings(screen: Screen, filter_: str) -> dict[str, Any]:
    response = requests.get(
        f"{screen.base}/api/bookings/list",
        params={**DEMO, "filter": filter_},
        headers={"X-Real-IP": "10.99.0.2"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def focused(screen: Screen) -> dict[str, Any]:
    """What has the keyboard focus, and whether it is drawn."""
    result: dict[str, Any] = screen.page.evaluate(
        """() => {
            const el = document.activeElement;
            // A visually hidden radio draws its focus on its label.
            const drawn = el.matches('.type-option input') ? el.nextElementSibling : el;
            const style = getComputedStyle(drawn);
            return {
                tag: el.tagName, id: el.id, text: el.textContent.trim(),
                name: el.getAttribute('name'), value: el.value ?? null,
                exam: el.closest('[data-exam-id]')?.dataset.examId ?? null,
                outline: style.outlineStyle + ' ' + style.outlineWidth,
            };
        }"""
    )
    return result


# ---------------------------------------------------------------- log in


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_wrong_email_shows_the_mismatch_message(
    open_screen: OpenScreen, demo: Demo, viewport: str
) -> None:
    screen = open_screen(viewport)
    page = screen.page
    screen.open()
    expect(page.get_by_role("heading", name="Log in to book a mock exam")).to_be_visible()
    screen.shot("login")
    screen.check_accessibility("login")

    # Nothing typed: each field says what it needs, and nothing is sent.
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#student-id-error")).to_have_text("Enter your Student ID.")
    expect(page.locator("#email-error")).to_have_text("Enter your email address.")
    expect(page.get_by_label("Student ID")).to_be_focused()
    expect(page.get_by_label("Student ID")).to_have_attribute("aria-invalid", "true")
    assert screen.api_requests("/api/user/login", "POST") == []
    screen.check_accessibility("login-missing-fields")

    screen.login(email="someone.else@example.com")
    alert = page.get_by_role("alert").filter(has_text="do not match")
    expect(alert).to_have_text(
        "This Student ID and email do not match our records. Check that both are typed exactly "
        "as on your enrolment (the email must be the one the school has for you), then try again."
    )
    expect(page.locator("#app-view")).to_be_hidden()
    screen.shot("login-mismatch")
    screen.check_accessibility("login-mismatch")
    assert page.evaluate("() => sessionStorage.length") == 0

    screen.login()  # the right pair still works
    logged_in(screen)
    screen.assert_clean(expected=((http_status(404), "/api/user/login"),))


def test_the_identity_is_kept_for_this_tab_only(open_screen: OpenScreen, demo: Demo) -> None:
    screen = open_screen("desktop")
    page = screen.page
    screen.open()
    screen.login(student_id="demo001", email="Demo001@Example.com")  # as students type
    logged_in(screen)
    expect(page.locator("#who-name")).to_have_text("Demo Student · DEMO001")

    page.reload()  # the same tab: still logged in, checked again with the API
    logged_in(screen)
    assert len(screen.api_requests("/api/user/login", "POST")) == 2

    other_tab = page.context.new_page()  # another tab starts logged out
    other_tab.goto(screen.base + "/")
    expect(other_tab.get_by_role("heading", name="Log in to book a mock exam")).to_be_visible()
    other_tab.close()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to book a mock exam")).to_be_focused()
    assert page.evaluate("() => [sessionStorage.length, localStorage.length]") == [0, 0]
    assert page.context.cookies() == []
    page.reload()
    expect(page.get_by_role("heading", name="Log in to book a mock exam")).to_be_visible()
    screen.assert_clean()


# ---------------------------------------------------------------- the journey


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_demo_books_clinical_skills_once_despite_a_double_click_then_cancels(
    open_screen: OpenScreen, demo: Demo, viewport: str
) -> None:
    screen = open_screen(viewport)
    page = screen.page
    screen.open()
    screen.login()
    logged_in(screen)
    expect(page.get_by_role("heading", name="Hello, Demo")).to_be_focused()

    # Credits at a glance: five kinds, friendly names, what each pays for.
    for key, (name, pays_for) in CREDIT_NAMES.items():
        credit = page.locator(f'[data-credit="{key}"]')
        expect(credit.locator(".credit-count")).to_have_text("5")
        expect(credit.locator(".credit-name")).to_have_text(f"5 {name}")
        expect(credit.locator(".credit-use")).to_have_text(pays_for)
    screen.shot("sessions")
    screen.check_accessibility("sessions")

    # Clinical Skills sessions, in Toronto time whatever the browser's time zone.
    choose_type(screen, "Clinical Skills")
    exams = demo.upcoming_exams("Clinical Skills")
    assert len(exams) == page.locator(".session").count()
    exam = next(e for e in exams if e["seats_left"] > 0)
    exam_id = str(exam["id"])
    assert page.locator(".session").first.get_attribute("data-exam-id") == str(exams[0]["id"])
    times = f"{toronto_time(exam['start_time'])} – {toronto_time(exam['end_time'])}"
    expect(card(screen, exam_id).locator(".session-time")).to_contain_text(times)
    expect(card(screen, exam_id).locator(".session-location")).to_have_text(exam["location"])
    expect(card(screen, exam_id).locator(".seats-left")).to_have_text(
        seats_text(exam["seats_left"], exam["capacity"])
    )

    book_button(screen, exam_id).click()
    dialog = page.get_by_role("dialog", name="Book Clinical Skills")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#book-credit")).to_have_text(
        "Uses 1 Clinical Skills credit. You have 5."
    )
    expect(dialog.get_by_role("radio", name="Right")).to_be_focused()
    expect(dialog.get_by_label("Where will you attend?")).to_have_count(0)  # CS asks the hand only
    dialog.get_by_role("button", name="Confirm booking").click()
    expect(dialog.locator("#dominant-hand-error")).to_have_text("Choose your dominant hand.")
    expect(dialog.get_by_role("radio", name="Right")).to_be_focused()
    assert screen.api_requests("/api/bookings/create", "POST") == []
    screen.check_accessibility("booking-form-missing-hand")
    dialog.get_by_role("radio", name="Right").check()
    expect(dialog.locator("#dominant-hand-error")).to_be_hidden()
    screen.shot("booking-form")
    screen.check_accessibility("booking-form")

    dialog.get_by_role("button", name="Confirm booking").dblclick()
    expect(dialog.get_by_role("heading", name="You are booked")).to_be_visible()
    code = dialog.locator(".booking-code").inner_text()
    assert code_pattern().fullmatch(code), code
    expect(dialog).to_contain_text("Credit spent1 Clinical Skills credit")
    expect(dialog.locator(".credits-left")).to_have_text("You have 4 Clinical Skills credits left.")
    screen.shot("booking-confirmed")
    screen.check_accessibility("booking-confirmed")

    # Exactly one booking and one credit, whatever the double click sent.
    creates = screen.api_requests("/api/bookings/create", "POST")
    keys = {r.headers.get("idempotency-key") for r in creates}
    assert len(keys) == 1 and None not in keys, keys
    booked = demo.active_bookings()
    assert [(str(b["exam_uuid"]), b["booking_id"], b["dominant_hand"]) for b in booked] == [
        (exam_id, code, "right")
    ]
    assert booked[0]["idempotency_key"] in keys
    assert demo.credits() == {**ALL_FIVE, "cs_credits": 4}
    upcoming = api_bookings(screen, "upcoming")
    assert [b["booking_id"] for b in upcoming["bookings"]] == [code]
    assert upcoming["credits"]["cs_credits"] == 4

    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    expect(page.locator('[data-credit="cs_credits"] .credit-count')).to_have_text("4")
    expect(page.locator('[data-count="upcoming"]')).to_have_text("(1)")
    mine = page.locator(f'#panel-upcoming .booking[data-code="{code}"]')
    expect(mine).to_contain_text(
        f"Clinical Skills · {card(screen, exam_id).locator('h4').inner_text()}"
    )
    expect(mine).to_contain_text("Paid with1 Clinical Skills credit")
    expect(card(screen, exam_id).locator(".reason")).to_have_text(
        f"You are booked on this session ({code})."
    )
    expect(card(screen, exam_id).locator(".seats-left")).to_have_text(
        seats_text(exam["seats_left"] - 1, exam["capacity"])
    )
    screen.shot("my-bookings-upcoming")
    screen.check_accessibility("my-bookings-upcoming")

    # Cancel, with a confirmation step; the credit comes back without a reload.
    mine.get_by_role("button", name=re.compile("^Cancel booking")).click()
    confirm = page.get_by_role("dialog", name="Cancel this booking?")
    expect(confirm).to_contain_text(f"Booking code {code}.")
    expect(confirm).to_contain_text("your 1 Clinical Skills credit returned")
    expect(confirm.get_by_role("button", name="Keep booking")).to_be_focused()
    screen.shot("cancel-confirm")
    screen.check_accessibility("cancel-confirm")
    confirm.get_by_role("button", name="Yes, cancel booking").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#bookings-status")).to_contain_text(
        "1 Clinical Skills credit returned: you now have 5."
    )
    expect(page.locator('[data-credit="cs_credits"] .credit-count')).to_have_text("5")
    expect(page.locator('[data-count="upcoming"]')).to_have_text("(0)")
    expect(page.locator("#panel-upcoming")).to_contain_text("You have no upcoming bookings.")
    expect(book_button(screen, exam_id)).to_be_visible()
    page.get_by_role("tab", name=re.compile("^Cancelled")).click()
    cancelled = page.locator(f'#panel-cancelled .booking[data-code="{code}"]')
    expect(cancelled).to_contain_text("CreditReturned")
    screen.shot("my-bookings-cancelled")
    screen.check_accessibility("my-bookings-cancelled")
    page.get_by_role("tab", name=re.compile("^Past")).click()
    expect(page.locator("#panel-past .booking")).to_have_count(2)
    expect(page.locator("#panel-past")).to_contain_text("Attended")
    expect(page.locator("#panel-past")).to_contain_text("Missed")
    screen.check_accessibility("my-bookings-past")

    assert demo.credits() == ALL_FIVE
    assert demo.active_bookings() == []
    assert api_bookings(screen, "cancelled")["bookings"][0]["booking_id"] == code
    # One page load from start to end: everything updated in place.
    assert len([r for r in screen.requests if r.resource_type == "document"]) == 1
    screen.assert_clean()


# ---------------------------------------------------------------- rejections


def test_a_full_session_cannot_be_booked(open_screen: OpenScreen, demo: Demo) -> None:
    screen = open_screen("desktop")
    page = screen.page
    screen.open()
    screen.login()
    logged_in(screen)

    # Shown as full, not hidden, and offers no way to book.
    full = next(e for e in demo.upcoming_exams("Situational Judgment") if e["seats_left"] <= 0)
    full_card = card(screen, str(full["id"]))
    expect(full_card.locator(".badge")).to_have_text("Full")
    expect(full_card.locator(".seats-left")).to_have_text(seats_text(0, full["capacity"]))
    expect(full_card.locator(".reason")).to_have_text("Fully booked: choose another date.")
    expect(full_card.get_by_role("button")).to_have_count(0)

    # A session whose last seat goes while the student fills in the form: the
    # database refuses, and the page says so in plain words.
    choose_type(screen, "Clinical Skills")
    last = next(e for e in demo.upcoming_exams("Clinical Skills") if e["seats_left"] == 1)
    last_id = str(last["id"])
    expect(card(screen, last_id).locator(".badge")).to_have_text("Limited")
    expect(card(screen, last_id).locator(".seats-left")).to_have_text(
        seats_text(1, last["capacity"])
    )
    book_button(screen, last_id).click()
    dialog = page.get_by_role("dialog", name="Book Clinical Skills")
    dialog.get_by_role("radio", name="Left").check()
    book_as_someone_else(screen, demo, last)
    dialog.get_by_role("button", name="Confirm booking").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "Sorry, this session has just filled up. Choose another session from the list; "
        "seat counts refresh on their own."
    )
    expect(dialog.get_by_role("button", name="Confirm booking")).to_be_hidden()
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    expect(dialog).to_contain_text(seats_text(0, last["capacity"]))
    screen.shot("booking-rejected-full")
    screen.check_accessibility("booking-rejected-full")
    dialog.get_by_role("button", name="Close").click()
    expect(card(screen, last_id).locator(".badge")).to_have_text("Full")
    expect(card(screen, last_id).get_by_role("button")).to_have_count(0)

    assert demo.active_bookings() == []
    assert demo.credits() == ALL_FIVE
    screen.assert_clean(expected=((http_status(409), "/api/bookings/create"),))


def test_sessions_the_student_cannot_book_say_why(open_screen: OpenScreen, demo: Demo) -> None:
    # A student with one Situational Judgment credit and nothing else.
    poor = demo.db.contact(firstname="Sam", lastname="Few", sj_credits=1)
    screen = open_screen("phone")
    page = screen.page
    screen.open()
    screen.login(poor["student_id"], poor["email"])
    expect(page.get_by_role("heading", name="Hello, Sam")).to_be_visible()
    expect(page.get_by_role("radio", name="Clinical Skills 0 credits to use")).to_be_visible()
    expect(page.get_by_role("radio", name="Situational Judgment 1 credit to use")).to_be_checked()
    choose_type(screen, "Clinical Skills")
    expect(page.locator("#type-note")).to_have_text(
        "You have no credits that pay for Clinical Skills, so these sessions cannot be booked. "
        "Contact the school to add credits."
    )
    sessions = page.locator(".session")
    assert sessions.count() > 0
    for index in range(sessions.count()):
        expect(sessions.nth(index).locator(".reason")).to_have_text(
            re.compile(
                r"^(You have no Clinical Skills or Shared credits left\.|Fully booked: choose another date\.)$"
            )
        )
    expect(page.locator(".session-book")).to_have_count(0)
    choose_type(screen, "Mini-mock")
    expect(page.locator(".session .reason").first).to_have_text(
        "You have no Mini-mock credits left."
    )
    screen.shot("sessions-no-credits")
    screen.check_accessibility("sessions-no-credits")
    screen.assert_clean()

    # DEMO001 attended one Clinical Skills exam: Mock Discussions that require it
    # can be booked, those requiring only exams they did not attend say why.
    attended = {
        r["associated_mock_exam"]
        for r in demo.db.all(
            "select associated_mock_exam from hubspot_sync.hubspot_bookings"
            " where student_id = 'DEMO001' and attendance = 'Yes'"
        )
    }
    discussions = [e for e in demo.upcoming_exams("Mock Discussion") if e["seats_left"] > 0]
    open_to_demo = [e for e in discussions if set(e["prerequisite_exam_ids"]) & attended]
    closed_to_demo = [
        e
        for e in discussions
        if e["prerequisite_exam_ids"] and not set(e["prerequisite_exam_ids"]) & attended
    ]
    assert open_to_demo and closed_to_demo
    screen = open_screen("desktop")
    screen.open()
    screen.login()
    logged_in(screen)
    choose_type(screen, "Mock Discussion")
    for exam in closed_to_demo:
        expect(card(screen, str(exam["id"])).locator(".reason")).to_have_text(
            "Open only to students who attended one of its prerequisite mock exams."
        )
    for exam in open_to_demo:
        expect(book_button(screen, str(exam["id"]))).to_be_visible()
    screen.shot("sessions-prerequisites")
    screen.check_accessibility("sessions-prerequisites")
    screen.assert_clean()


def test_a_retry_after_a_lost_answer_books_once(open_screen: OpenScreen, demo: Demo) -> None:
    screen = open_screen("phone")
    page = screen.page
    dropped: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        if not dropped:
            # The request reaches the server (the booking is made); its answer is lost.
            dropped.append(route.fetch().text())
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/bookings/create", lose_the_first_answer)
    screen.open()
    screen.login()
    logged_in(screen)
    choose_type(screen, "Clinical Skills")
    exam_id = page.locator(".session:has(.session-book)").first.get_attribute("data-exam-id")
    assert exam_id
    book_button(screen, exam_id).click()
    dialog = page.get_by_role("dialog", name="Book Clinical Skills")
    dialog.get_by_role("radio", name="Left").check()
    dialog.get_by_role("button", name="Confirm booking").click()
    expect(dialog.get_by_role("alert")).to_contain_text(
        "We lost the connection before the booking service answered"
    )
    expect(dialog.get_by_role("alert")).to_contain_text("you will not be booked or charged twice")
    assert '"success":true' in dropped[0]  # the server did book
    screen.shot("booking-connection-lost")
    screen.check_accessibility("booking-connection-lost")

    dialog.get_by_role("button", name="Try again").click()
    expect(dialog.get_by_role("heading", name="You are booked")).to_be_visible()
    expect(dialog).to_contain_text("This booking had already gone through")
    creates = screen.api_requests("/api/bookings/create", "POST")
    assert len(creates) == 2
    assert len({r.headers["idempotency-key"] for r in creates}) == 1
    assert len(demo.active_bookings()) == 1
    assert demo.credits() == {**ALL_FIVE, "cs_credits": 4}
    screen.assert_clean(expected=(("Failed to load resource: net::", "/api/bookings/create"),))


def test_a_booking_still_in_progress_is_retried_with_the_same_key(
    open_screen: OpenScreen, demo: Demo
) -> None:
    screen = open_screen("desktop")
    page = screen.page
    answers: list[int] = []

    def first_in_progress(route: Route) -> None:
        if not answers:
            # What the API answers while a duplicate of this booking holds the lock.
            answers.append(409)
            route.fulfill(
                status=409,
                headers={"Retry-After": "1"},
                json={
                    "success": False,
                    "error": {
                        "code": "BOOKING_IN_PROGRESS",
                        "message": "A booking for you is already in progress; please retry",
                        "request_id": "r-2",
                    },
                },
            )
        else:
            answers.append(0)
            route.continue_()

    page.route("**/api/bookings/create", first_in_progress)
    screen.open()
    screen.login()
    logged_in(screen)
    choose_type(screen, "Mock Discussion")
    exam_id = page.locator(".session:has(.session-book)").first.get_attribute("data-exam-id")
    assert exam_id
    book_button(screen, exam_id).click()
    dialog = page.get_by_role("dialog", name="Book Mock Discussion")
    expect(dialog.locator("#book-fields")).to_be_empty()  # nothing to ask for this type
    dialog.get_by_role("button", name="Confirm booking").click()
    expect(dialog.get_by_role("heading", name="You are booked")).to_be_visible()
    assert answers == [409, 0]
    creates = screen.api_requests("/api/bookings/create", "POST")
    assert len({r.headers["idempotency-key"] for r in creates}) == 1
    assert len(demo.active_bookings(exam_id)) == 1
    assert demo.credits() == {**ALL_FIVE, "mock_discussion_token": 4}
    screen.assert_clean(expected=((http_status(409), "/api/bookings/create"),))


# ---------------------------------------------------------------- live seats


def test_seats_refresh_while_open_and_pause_while_hidden(
    open_screen: OpenScreen, demo: Demo
) -> None:
    screen = open_screen("desktop", clock=True)
    page = screen.page
    screen.open()
    screen.login()
    logged_in(screen)
    exam = next(e for e in demo.upcoming_exams("Situational Judgment") if e["seats_left"] > 2)
    seats = card(screen, str(exam["id"])).locator(".seats-left")
    expect(seats).to_have_text(seats_text(exam["seats_left"], exam["capacity"]))

    book_as_someone_else(screen, demo, exam)
    page.clock.fast_forward(16_000)  # one polling period
    expect(seats).to_have_text(seats_text(exam["seats_left"] - 1, exam["capacity"]))

    # The open booking dialog follows its session more closely, through /capacity.
    book_button(screen, str(exam["id"])).click()
    dialog = page.get_by_role("dialog", name="Book Situational Judgment")
    expect(dialog).to_contain_text(seats_text(exam["seats_left"] - 1, exam["capacity"]))
    book_as_someone_else(screen, demo, exam)
    page.clock.fast_forward(10_500)
    expect(dialog).to_contain_text(seats_text(exam["seats_left"] - 2, exam["capacity"]))
    assert screen.api_requests(f"/api/mock-exams/{exam['id']}/capacity")
    dialog.get_by_role("button", name="Close").click()

    # A hidden tab asks nothing; shown again, it catches up at once.
    polled = len(screen.api_requests("/api/mock-exams/available"))
    page.evaluate(
        """(hidden) => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
            Object.defineProperty(document, "visibilityState", {configurable: true, get: () => hidden ? "hidden" : "visible"});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        True,
    )
    page.clock.fast_forward(120_000)
    page.wait_for_timeout(300)
    assert len(screen.api_requests("/api/mock-exams/available")) == polled
    assert len(screen.api_requests(f"/api/mock-exams/{exam['id']}/capacity")) >= 1
    with page.expect_request(re.compile(r"/api/mock-exams/available\?")):
        page.evaluate(
            """() => {
                Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
                Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "visible"});
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
    screen.assert_clean()


def test_loading_and_error_states_offer_a_way_on(open_screen: OpenScreen, demo: Demo) -> None:
    screen = open_screen("phone")
    page = screen.page
    held: list[Route] = []

    def hold(route: Route) -> None:  # answered later, by the test
        held.append(route)

    page.route(re.compile(r"/api/mock-exams/available\?"), hold)
    page.route(
        re.compile(r"/api/bookings/list\?.*filter=upcoming"),
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "5"},
            json={
                "success": False,
                "error": {
                    "code": "DATABASE_UNAVAILABLE",
                    "message": "The service is temporarily unavailable; please retry",
                    "request_id": "req-test-1234",
                },
            },
        ),
    )
    screen.open()
    screen.login()
    expect(page.get_by_role("heading", name="Hello, Demo")).to_be_visible()
    expect(page.locator("#session-area")).to_have_text("Loading sessions…")
    expect(page.locator("#session-area")).to_have_attribute("aria-busy", "true")
    screen.shot("sessions-loading")
    screen.check_accessibility("sessions-loading")

    # The list never arrives: a plain message and a way to try again.
    assert len(held) == 1
    held[0].fulfill(
        status=429,
        headers={"Retry-After": "7"},
        json={
            "success": False,
            "error": {"code": "RATE_LIMITED", "message": "Too many requests", "request_id": "r-1"},
        },
    )
    sessions_error = page.locator("#session-area").get_by_role("alert")
    expect(sessions_error).to_contain_text(
        "We could not load the sessions. Too many requests from your connection. "
        "Wait about 7 seconds, then try again."
    )
    upcoming_error = page.locator("#panel-upcoming").get_by_role("alert")
    expect(upcoming_error).to_contain_text(
        "We could not load these bookings. The booking service is temporarily unavailable. "
        "Try again in about 5 seconds. If it keeps happening, contact the school and quote "
        "reference req-test-1234."
    )
    screen.shot("load-errors")
    screen.check_accessibility("load-errors")

    page.unroute_all()
    sessions_error.get_by_role("button", name="Try again").click()
    expect(page.locator(".session-list")).to_be_visible()
    upcoming_error.get_by_role("button", name="Try again").click()
    expect(page.locator('[data-count="upcoming"]')).to_have_text("(0)")
    expect(page.locator("#panel-upcoming")).to_contain_text("You have no upcoming bookings.")
    screen.assert_clean(
        expected=(
            (http_status(429), "/api/mock-exams/available"),
            (http_status(503), "/api/bookings/list"),
        )
    )


# ---------------------------------------------------------------- keyboard


def test_booking_with_the_keyboard_alone(open_screen: OpenScreen, demo: Demo) -> None:
    screen = open_screen("desktop")
    page = screen.page
    keyboard = page.keyboard
    screen.open()
    expect(page.get_by_role("heading", name="Log in to book a mock exam")).to_be_visible()

    keyboard.press("Tab")
    assert focused(screen)["text"] == "Skip to main content"
    keyboard.press("Tab")
    assert focused(screen)["id"] == "student-id"
    assert focused(screen)["outline"].startswith("solid 3px")
    keyboard.type("demo001")
    keyboard.press("Tab")
    keyboard.type(DEMO["email"])
    keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Hello, Demo")).to_be_focused()
    logged_in(screen)

    for _ in range(6):  # past the in-page links to the exam-type radios
        keyboard.press("Tab")
        if focused(screen)["name"] == "exam-type":
            break
    state = focused(screen)
    assert (state["value"], state["outline"]) == ("Situational Judgment", "solid 3px")
    keyboard.press("ArrowRight")
    expect(page.locator("#session-list-title")).to_have_text("Clinical Skills sessions")
    keyboard.press("ArrowLeft")
    expect(page.locator("#session-list-title")).to_have_text("Situational Judgment sessions")
    expect(page.locator("#session-area")).to_have_attribute("aria-busy", "false")
    keyboard.press("Tab")
    state = focused(screen)
    assert state["text"].startswith("Book Situational Judgment on"), state
    assert state["outline"] == "solid 3px"
    exam_id = state["exam"]
    exam = demo.exam(exam_id)

    keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Book Situational Judgment")
    location = dialog.get_by_label("Where will you attend?")
    expect(location).to_be_focused()
    expect(dialog.get_by_role("radio")).to_have_count(0)  # SJ asks the location only
    keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert focused(screen)["exam"] == exam_id  # back on the Book button

    keyboard.press("Enter")
    expect(location).to_be_focused()
    location.select_option("online")  # a student may sit it online instead
    keyboard.press("Tab")
    assert focused(screen)["text"] == "Confirm booking"
    keyboard.press("Enter")
    expect(dialog.get_by_role("heading", name="You are booked")).to_be_focused()
    expect(dialog).to_contain_text("AttendingOnline")
    keyboard.press("Tab")
    assert focused(screen)["text"] == "Done"
    keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    assert focused(screen)["tag"] != "BODY"

    booked = demo.active_bookings(exam_id)
    assert [(b["attending_location"], b["mock_type"]) for b in booked] == [
        ("online", "Situational Judgment")
    ]
    assert exam["mock_type"] == "Situational Judgment"
    assert demo.credits() == {**ALL_FIVE, "sj_credits": 4}
    screen.assert_clean()


# ---------------------------------------------------------------- no browser, no pass


def test_without_chromium_the_browser_tests_fail_with_a_clear_message() -> None:
    with pytest.raises(NoBrowser, match="CHROMIUM_PATH=/nonexistent/chromium is not an executable"):
        chromium_executable({"CHROMIUM_PATH": "/nonexistent/chromium"})
    with pytest.raises(NoBrowser, match=r"No Chromium found .* `apt-get install chromium`"):
        chromium_executable({}, lambda: ("/nonexistent/chromium", None))
