// Credits at a glance, the exam-type picker and the sessions of the chosen type, with
// seats left refreshed while the page is open.

import * as api from "./api.js";
import { $, $$, h, replace } from "./dom.js";
import { CREDIT_KINDS, EXAM_TYPES, creditsFor, examType, formatClock, formatDate, formatTimes, plural } from "./domain.js";
import { loadMessage } from "./messages.js";
import { createPoller } from "./poll.js";
import { emptySessions, saveType, showPageError, state } from "./state.js";

// Seats left are refreshed every 15 s while the page is open and visible. The list
// endpoint serves live seat counts from Redis in one request, so a rush of 2,000 open
// tabs costs ~130 light requests a second; the booking itself re-checks the seat.
const SESSIONS_POLL_MS = 15000;

const STATUS_LABEL = { available: "Available", limited: "Limited", full: "Full" };

let hooks = { book: () => {}, refreshed: () => {} };
const poller = createPoller(() => loadSessions({ quiet: true }), SESSIONS_POLL_MS);

/** book(exam, opener): the student pressed Book on a session; refreshed(): the list
 *  (and its seat counts) was reloaded. */
export function initSessions(callbacks) {
  hooks = { ...hooks, ...callbacks };
}

export const startSessionPolling = () => poller.start();
export const stopSessionPolling = () => poller.stop();

// ---------------------------------------------------------------- credits

export function renderCredits() {
  const list = $("#credit-list");
  list.removeAttribute("aria-busy");
  replace(
    list,
    CREDIT_KINDS.map((kind) => {
      const count = Number(state.credits?.[kind.key] || 0);
      return h(
        "li",
        { className: `credit${count === 0 ? " credit-empty" : ""}`, dataset: { credit: kind.key } },
        h("span", { className: "credit-count", "aria-hidden": "true" }, String(count)),
        h("span", { className: "credit-name" }, h("span", { className: "visually-hidden" }, `${count} `), kind.name),
        h("span", { className: "credit-use" }, `Pays for ${kind.paysFor.join(" or ")}`),
      );
    }),
  );
}

// ---------------------------------------------------------------- exam types

export function renderTypes() {
  const box = $("#type-options");
  if (!box.firstChild) {
    replace(
      box,
      EXAM_TYPES.map((type) => {
        const id = `type-${type.name.toLowerCase().replace(/[^a-z]+/g, "-")}`;
        return h(
          "div",
          { className: "type-option" },
          h("input", { type: "radio", name: "exam-type", id, value: type.name, onchange: () => chooseType(type.name) }),
          h(
            "label",
            { for: id },
            h("span", { className: "type-name" }, type.name),
            h("span", { className: "type-credits", dataset: { typeCredits: type.name } }),
          ),
        );
      }),
    );
  }
  // Counts change in place, so that a focused radio stays focused.
  for (const type of EXAM_TYPES) {
    const usable = creditsFor(type.name, state.credits).total;
    box.querySelector(`[data-type-credits="${CSS.escape(type.name)}"]`).textContent = `${plural(usable, "credit")} to use`;
    box.querySelector(`input[value="${CSS.escape(type.name)}"]`).checked = type.name === state.type;
  }
}

function chooseType(name) {
  if (state.type === name) return;
  state.type = name;
  saveType(name);
  state.sessions = emptySessions(state.sessions.seq + 1);
  loadSessions();
}

// ---------------------------------------------------------------- sessions

export function resetSessions() {
  state.sessions = emptySessions(state.sessions.seq + 1);
}

export async function loadSessions({ quiet = false } = {}) {
  if (!state.student) return;
  const sessions = state.sessions;
  if (sessions.loading) return;
  sessions.loading = true;
  if (!quiet) renderSessions();
  const result = await api.available(state.type);
  if (sessions !== state.sessions) return; // the type changed, or the student left
  sessions.loading = false;
  if (result.ok) {
    sessions.items = result.data;
    sessions.loaded = true;
    sessions.error = null;
    sessions.updatedAt = new Date();
    showPageError("");
  } else if (sessions.loaded) {
    // A failed refresh keeps the last list on screen, and says so.
    showPageError(`Seat counts could not be refreshed. ${loadMessage(result.error, { retryAfter: result.retryAfter })}`);
  } else {
    sessions.error = loadMessage(result.error, { retryAfter: result.retryAfter });
  }
  renderSessions();
  hooks.refreshed();
}

export function sessionById(id) {
  return state.sessions.items.find((e) => e.id === id) || null;
}

/** Why this student cannot book this session now, or "" when they can. The database
 *  decides at booking time; this only saves the student a rejection. */
function blockedReason(exam) {
  const type = examType(exam.mock_type);
  if (exam.status === "full" || exam.available_slots <= 0) return "Fully booked: choose another date.";
  const upcoming = state.bookings.upcoming.items.filter((b) => b.is_active === "Active");
  const mine = upcoming.find((b) => b.mock_exam_id === exam.id);
  if (mine) return `You are booked on this session (${mine.booking_id}).`;
  if (upcoming.some((b) => b.exam_date === exam.exam_date && b.mock_type === exam.mock_type)) {
    return `You already have a ${exam.mock_type} booking on this day (one per day).`;
  }
  if (state.credits && creditsFor(exam.mock_type, state.credits).total === 0) {
    return `You have no ${type.shared ? `${type.name} or Shared credits` : `${type.name} credits`} left.`;
  }
  const past = state.bookings.past;
  if (exam.prerequisite_exam_ids?.length && past.loaded && !past.hasNext) {
    const attended = new Set(past.items.filter((b) => b.attendance === "Yes").map((b) => b.mock_exam_hubspot_id));
    if (!exam.prerequisite_exam_ids.some((id) => attended.has(id))) {
      return "Open only to students who attended one of its prerequisite mock exams.";
    }
  }
  return "";
}

export function seatsText(exam) {
  if (exam.available_slots <= 0) return `No seats left (${exam.capacity} in all)`;
  return `${plural(exam.available_slots, "seat")} left of ${exam.capacity}`;
}

function sessionCard(exam) {
  const reason = blockedReason(exam);
  const date = formatDate(exam);
  const times = formatTimes(exam);
  return h(
    "li",
    { className: `session session-${exam.status}${reason ? " session-blocked" : ""}`, dataset: { examId: exam.id } },
    h("h4", { className: "session-date" }, date),
    h(
      "p",
      { className: "session-meta" },
      times && h("span", { className: "session-time" }, times),
      h("span", { className: "session-location" }, exam.location),
      exam.mock_set && h("span", { className: "session-set" }, `Set ${exam.mock_set}`),
    ),
    h(
      "p",
      { className: "session-seats" },
      h("span", { className: `badge badge-${exam.status}` }, STATUS_LABEL[exam.status] || exam.status),
      h("span", { className: "seats-left" }, seatsText(exam)),
    ),
    exam.prerequisite_exam_ids?.length > 0 &&
      !reason &&
      h("p", { className: "hint" }, "For students who attended one of its prerequisite mock exams."),
    reason
      ? h("p", { className: "reason" }, reason)
      : h(
          "button",
          {
            type: "button",
            className: "button button-primary session-book",
            // The list refreshes under the card: book what it holds now.
            onclick: (event) => hooks.book(sessionById(exam.id) || exam, event.currentTarget),
          },
          "Book",
          h("span", { className: "visually-hidden" }, ` ${exam.mock_type} on ${date}${times ? `, ${times}` : ""}, ${exam.location}`),
        ),
  );
}

export function renderSessions() {
  const area = $("#session-area");
  const sessions = state.sessions;
  $("#session-list-title").textContent = `${state.type} sessions`;
  const note = $("#type-note");
  note.hidden = !(state.credits && creditsFor(state.type, state.credits).total === 0);
  note.textContent = note.hidden
    ? ""
    : `You have no credits that pay for ${state.type}, so these sessions cannot be booked. Contact the school to add credits.`;
  $("#sessions-updated").textContent = sessions.updatedAt
    ? `Seats update on their own (last checked ${formatClock(sessions.updatedAt)})`
    : "";
  area.setAttribute("aria-busy", String(sessions.loading && !sessions.loaded));

  if (!sessions.loaded) {
    replace(
      area,
      sessions.error
        ? h(
            "div",
            { className: "notice notice-error", role: "alert" },
            h("p", {}, `We could not load the sessions. ${sessions.error}`),
            h("button", { type: "button", className: "button button-secondary", onclick: () => loadSessions() }, "Try again"),
          )
        : h("p", { className: "placeholder" }, "Loading sessions…"),
    );
    return;
  }
  if (sessions.items.length === 0) {
    replace(
      area,
      h("p", { className: "empty" }, `No ${state.type} sessions are open for booking right now. New sessions appear here as soon as they open.`),
    );
    return;
  }
  // Card by card: a refresh every few seconds neither moves the keyboard focus nor
  // makes a screen reader start the list over.
  let list = area.querySelector("ul.session-list");
  if (!list) {
    list = h("ul", { className: "session-list" });
    replace(area, list);
  }
  const focusedId = list.contains(document.activeElement)
    ? document.activeElement.closest("[data-exam-id]")?.dataset.examId
    : null;
  const existing = new Map($$(":scope > li", list).map((li) => [li.dataset.examId, li]));
  list.replaceChildren(
    ...sessions.items.map((exam) => {
      const card = sessionCard(exam);
      const old = existing.get(exam.id);
      return old && old.isEqualNode(card) ? old : card;
    }),
  );
  if (focusedId && !list.contains(document.activeElement)) {
    const card = list.querySelector(`[data-exam-id="${CSS.escape(focusedId)}"]`);
    if (card) {
      const target = card.querySelector("button") || card.querySelector("h4");
      if (target.tagName === "H4") target.setAttribute("tabindex", "-1");
      target.focus();
    }
  }
}
