// The booking dialog: only the fields the exam type needs, one Idempotency-Key per
// intended booking (reused on every retry and double click), a confirmation with the
// booking code and the credit spent, and every rejection in plain words.

import * as api from "./api.js";
import { $, h, replace } from "./dom.js";
import {
  LOCATIONS,
  creditName,
  creditsFor,
  examType,
  formatDate,
  formatTimes,
  locationLabel,
  plural,
  suggestedLocation,
  tokenKind,
} from "./domain.js";
import { bookingMessage } from "./messages.js";
import { createPoller } from "./poll.js";
import { seatsText, sessionById } from "./sessions.js";
import { focusBack, keyFor, setCredits, settleKey, state } from "./state.js";

// The session a student is about to take is checked more often than the list (one
// small request).
const CAPACITY_POLL_MS = 10000;
// A duplicate click still in flight (BOOKING_IN_PROGRESS) or a busy database answers
// "retry shortly": this many automatic retries with the same Idempotency-Key, each
// after the server's Retry-After (capped), before the student is asked to try again.
const AUTO_RETRIES = 3;
const MAX_WAIT_S = 5;

const poller = createPoller(pollCapacity, CAPACITY_POLL_MS);
let hooks = { booked: () => {}, rejected: () => {}, loggedOut: () => {} };

/** booked(): a booking was made; rejected(refresh): lists may be stale;
 *  loggedOut(message): the student record is gone. */
export function initBooking(callbacks) {
  hooks = { ...hooks, ...callbacks };
  $("#book-form").addEventListener("submit", onConfirm);
  // A choice made clears what was said about the missing one.
  $("#book-fields").addEventListener("change", clearFieldErrors);
  $("#book-close").addEventListener("click", closeBooking);
  $("#book-done-close").addEventListener("click", closeBooking);
  $("#book-dialog").addEventListener("cancel", (event) => {
    event.preventDefault(); // Escape closes our way: focus goes back where it was
    closeBooking();
  });
}

const rows = (pairs) => pairs.filter(([, value]) => value).flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);
const handLabel = (hand) => (hand === "right" ? "Right" : hand === "left" ? "Left" : "");

function creditNote(exam) {
  const usable = creditsFor(exam.mock_type, state.credits);
  if (!usable.spends) return `You have no credits left that pay for ${exam.mock_type}.`;
  const count = Number(state.credits[usable.spends]);
  if (usable.spends === "shared_mock_credits") {
    return `Uses 1 Shared credit: you have no ${exam.mock_type} credits left, and ${count} Shared.`;
  }
  return `Uses 1 ${creditName(usable.spends)} credit. You have ${count}.`;
}

function fields(exam) {
  const asks = examType(exam.mock_type).asks;
  if (asks === "location") {
    const suggested = suggestedLocation(exam.location);
    return h(
      "div",
      { className: "field" },
      h("label", { for: "attending-location" }, "Where will you attend?"),
      h(
        "select",
        { id: "attending-location", name: "attending_location", required: true, "aria-describedby": "attending-location-error" },
        h("option", { value: "" }, "Choose a location"),
        LOCATIONS.map((l) => h("option", { value: l.value, selected: l.value === suggested }, l.label)),
      ),
      h("p", { id: "attending-location-error", className: "field-error", hidden: true }),
    );
  }
  if (asks === "hand") {
    return h(
      "fieldset",
      { className: "field", id: "dominant-hand", "aria-describedby": "dominant-hand-error" },
      h("legend", {}, "Your dominant hand"),
      ["right", "left"].map((hand) =>
        h(
          "div",
          { className: "choice-option" },
          h("input", { type: "radio", name: "dominant_hand", id: `hand-${hand}`, value: hand, required: true }),
          h("label", { for: `hand-${hand}` }, handLabel(hand)),
        ),
      ),
      h("p", { id: "dominant-hand-error", className: "field-error", hidden: true }),
    );
  }
  return null;
}

function renderSummary() {
  const { exam } = state.booking;
  replace(
    $("#book-summary"),
    rows([
      ["Exam", exam.mock_type + (exam.mock_set ? ` (set ${exam.mock_set})` : "")],
      ["Date", formatDate(exam, { long: true })],
      ["Time", formatTimes(exam)],
      ["Location", exam.location],
      ["Seats", seatsText(exam)],
    ]),
  );
}

export function openBooking(exam, opener) {
  state.booking = { exam: { ...exam }, inFlight: false, opener };
  $("#book-title").textContent = `Book ${exam.mock_type}`;
  renderSummary();
  $("#book-credit").textContent = creditNote(exam);
  replace($("#book-fields"), fields(exam));
  setError(null);
  $("#book-progress").textContent = "";
  const confirm = $("#book-confirm");
  confirm.textContent = "Confirm booking";
  confirm.removeAttribute("aria-disabled");
  confirm.hidden = false;
  $("#book-form").hidden = false;
  $("#book-done").hidden = true;
  $("#book-dialog").showModal();
  ($("#book-fields select, #book-fields input") || confirm).focus();
  poller.start();
}

export function closeBooking({ force = false } = {}) {
  if (state.booking?.inFlight && !force) return; // the answer is on its way; it will show here
  poller.stop();
  const booking = state.booking;
  state.booking = null;
  const dialog = $("#book-dialog");
  if (dialog.open) dialog.close();
  if (force || !booking) return;
  // A seat-count refresh may have redrawn the card: its new button then.
  const examId = CSS.escape(booking.exam.id);
  const opener = booking.opener?.isConnected ? booking.opener : $(`.session[data-exam-id="${examId}"] .session-book`);
  focusBack(opener, "#sessions-title");
}

function clearFieldErrors() {
  for (const id of ["attending-location", "dominant-hand"]) {
    const error = $(`#${id}-error`);
    if (error) {
      error.hidden = true;
      error.textContent = "";
      $(`#${id}`).removeAttribute("aria-invalid");
    }
  }
}

function setError(message, field = null) {
  clearFieldErrors();
  const box = $("#book-error");
  const id = { attending_location: "attending-location", dominant_hand: "dominant-hand" }[field];
  const fieldError = id && $(`#${id}-error`);
  if (fieldError) {
    fieldError.textContent = message;
    fieldError.hidden = false;
    const control = $(`#${id}`);
    control.setAttribute("aria-invalid", "true");
    (control.matches("fieldset") ? control.querySelector("input") : control).focus();
    box.hidden = true;
    return;
  }
  box.textContent = message || "";
  box.hidden = !message;
}

function formValues() {
  const asks = examType(state.booking.exam.mock_type).asks;
  if (asks === "location") {
    const value = $("#attending-location").value;
    return value ? { values: { attending_location: value } } : { missing: "attending_location", text: "Choose where you will attend this session." };
  }
  if (asks === "hand") {
    const value = $("input[name='dominant_hand']:checked")?.value;
    return value ? { values: { dominant_hand: value } } : { missing: "dominant_hand", text: "Choose your dominant hand." };
  }
  return { values: {} };
}

const sleep = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

async function onConfirm(event) {
  event.preventDefault();
  const booking = state.booking;
  // A second click while the first is on its way does nothing: the first answers.
  if (!booking || booking.inFlight) return;
  const { exam } = booking;
  const form = formValues();
  if (form.missing) {
    setError(form.text, form.missing);
    return;
  }
  setError(null);
  booking.inFlight = true;
  const confirm = $("#book-confirm");
  confirm.setAttribute("aria-disabled", "true");
  confirm.textContent = "Booking…";
  $("#book-progress").textContent = "Booking your seat…";
  const student = state.student;
  const key = keyFor(exam.id);
  let result = await api.createBooking(student, exam.id, form.values, key);
  for (let attempt = 0; attempt < AUTO_RETRIES && !result.ok; attempt += 1) {
    if (!["BOOKING_IN_PROGRESS", "DATABASE_BUSY"].includes(result.error.code)) break;
    $("#book-progress").textContent = "Still working on your booking…";
    await sleep(1000 * Math.min(result.retryAfter || 1, MAX_WAIT_S));
    result = await api.createBooking(student, exam.id, form.values, key);
  }
  booking.inFlight = false;
  confirm.removeAttribute("aria-disabled");
  $("#book-progress").textContent = "";
  if (state.booking !== booking) return; // logged out meanwhile
  if (result.ok) {
    settleKey(exam.id);
    showBooked(result.data, exam);
    return;
  }
  const explained = bookingMessage(result.error, {
    typeName: exam.mock_type,
    date: formatDate(exam, { long: true }),
    retryAfter: result.retryAfter,
  });
  if (!explained.retry) settleKey(exam.id); // a definitive answer: nothing was booked
  if (explained.relogin) {
    closeBooking({ force: true });
    hooks.loggedOut(explained.text);
    return;
  }
  confirm.textContent = explained.retry ? "Try again" : "Confirm booking";
  setError(explained.text, explained.field || null);
  if (result.error.code === "EXAM_FULL") {
    booking.exam.available_slots = 0;
    booking.exam.status = "full";
    renderSummary();
    confirm.hidden = true;
    $("#book-close").focus();
  }
  if (explained.refresh) hooks.rejected();
}

function showBooked(data, exam) {
  const kind = tokenKind(data.token_used);
  const credits = data.credits_after;
  replace(
    $("#book-done-body"),
    h("p", { className: "done-lead" }, `${exam.mock_type} on ${formatDate(exam, { long: true })}.`),
    h("p", { className: "code-box" }, "Your booking code", h("strong", { className: "booking-code" }, data.booking_id)),
    h(
      "dl",
      { className: "summary" },
      rows([
        ["Time", formatTimes(exam)],
        ["Location", exam.location],
        ["Attending", locationLabel(data.attending_location)],
        ["Dominant hand", handLabel(data.dominant_hand)],
        ["Credit spent", kind ? `1 ${creditName(kind)} credit` : "None (booked by the school)"],
      ]),
    ),
    kind && h("p", { className: "credits-left" }, `You have ${plural(Number(credits[kind] || 0), `${creditName(kind)} credit`)} left.`),
    data.replayed && h("p", { className: "hint" }, "This booking had already gone through: you are booked and charged once."),
    h("p", { className: "hint" }, "It is listed under My bookings, where you can also cancel it."),
  );
  $("#book-form").hidden = true;
  $("#book-done").hidden = false;
  $("#book-done-title").focus();
  poller.stop();
  setCredits(credits);
  hooks.booked();
}

async function pollCapacity() {
  const booking = state.booking;
  if (!booking || booking.inFlight || $("#book-form").hidden) return;
  const result = await api.capacity(booking.exam.id);
  if (!result.ok || state.booking !== booking) return;
  Object.assign(booking.exam, {
    available_slots: result.data.available_slots,
    capacity: result.data.capacity,
    status: result.data.status,
  });
  renderSummary();
}

/** The sessions list was refreshed: carry its seat count into the open dialog. */
export function sessionsRefreshed() {
  const booking = state.booking;
  if (!booking || $("#book-form").hidden) return;
  const fresh = sessionById(booking.exam.id);
  if (!fresh) return;
  Object.assign(booking.exam, { available_slots: fresh.available_slots, capacity: fresh.capacity, status: fresh.status });
  renderSummary();
}
