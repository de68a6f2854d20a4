// My bookings: upcoming, past and cancelled tabs; cancelling with a confirmation step.

import * as api from "./api.js";
import { $, $$, announce, h, replace } from "./dom.js";
import { creditName, formatDate, formatTimes, locationLabel, tokenKind } from "./domain.js";
import { cancelMessage, loadMessage } from "./messages.js";
import { FILTERS, emptyList, focusBack, setCredits, state } from "./state.js";

// Bookings per page; "Show more" loads the next.
const PAGE_SIZE = 20;

const EMPTY_TEXT = {
  upcoming: "You have no upcoming bookings. Book a session above.",
  past: "No past bookings yet.",
  cancelled: "No cancelled bookings.",
};

let hooks = { loaded: () => {}, cancelled: () => {}, loggedOut: () => {} };

/** loaded(filter): a list was (re)loaded; cancelled(): a booking was cancelled;
 *  loggedOut(message): the student record is gone. */
export function initBookings(callbacks) {
  hooks = { ...hooks, ...callbacks };
  for (const tab of $$("[role='tab']")) {
    tab.addEventListener("click", () => selectTab(tab.dataset.filter));
    tab.addEventListener("keydown", onTabKey);
  }
  $("#cancel-confirm").addEventListener("click", onConfirmCancel);
  $("#cancel-keep").addEventListener("click", closeCancel);
  $("#cancel-dialog").addEventListener("cancel", (event) => {
    event.preventDefault();
    closeCancel();
  });
}

/** Say what a cancellation did, beside the lists it changed. */
function showStatus(text) {
  const box = $("#bookings-status");
  box.hidden = !text;
  if (text) announce(box, text);
  else box.textContent = "";
}

export function resetBookings() {
  showStatus("");
  state.bookings = Object.fromEntries(FILTERS.map((f) => [f, emptyList()]));
  for (const filter of FILTERS) renderBookings(filter);
}

export const loadAllBookings = () => Promise.all(FILTERS.map((filter) => loadBookings(filter)));

export async function loadBookings(filter, { more = false } = {}) {
  if (!state.student) return;
  const list = state.bookings[filter];
  list.loading = true;
  list.error = null;
  renderBookings(filter);
  const result = await api.listBookings(state.student, filter, more ? list.page + 1 : 1, PAGE_SIZE);
  if (list !== state.bookings[filter]) return; // logged out meanwhile
  list.loading = false;
  if (result.ok) {
    const { bookings, pagination, credits } = result.data;
    list.items = more ? [...list.items, ...bookings] : bookings;
    list.page = pagination.current_page;
    list.total = pagination.total_bookings;
    list.hasNext = pagination.has_next;
    list.loaded = true;
    setCredits(credits); // every list answer carries the current balances
  } else {
    list.error = loadMessage(result.error, { retryAfter: result.retryAfter });
  }
  renderBookings(filter);
  hooks.loaded(filter);
}

const rows = (pairs) => pairs.filter(([, value]) => value).flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);

function attendanceText(booking) {
  if (booking.attendance === "Yes") return "Attended";
  if (booking.attendance === "No") return "Missed";
  return "Attendance not marked yet";
}

function bookingCard(booking, filter) {
  const kind = tokenKind(booking.token_used);
  const date = formatDate(booking);
  const statusText = { upcoming: "Booked", past: attendanceText(booking), cancelled: "Cancelled" }[filter];
  const cancellable = filter === "upcoming" && booking.is_active === "Active";
  let paidWith = kind ? `1 ${creditName(kind)} credit` : "";
  if (booking.token_used === "Admin Override") paidWith = "Booked by the school";
  return h(
    "li",
    { className: `booking booking-${filter}`, dataset: { bookingId: booking.id, code: booking.booking_id } },
    h("h3", { className: "booking-title" }, `${booking.mock_type} · ${date}`),
    h(
      "dl",
      { className: "summary summary-compact" },
      rows([
        ["Booking code", booking.booking_id],
        ["Time", formatTimes(booking)],
        ["Location", booking.location || ""],
        ["Attending", locationLabel(booking.attending_location)],
        ["Dominant hand", { right: "Right", left: "Left" }[booking.dominant_hand] || ""],
        ["Paid with", paidWith],
        ["Status", statusText],
        ["Credit", filter === "cancelled" && kind ? (booking.token_refunded ? "Returned" : "Not returned") : ""],
      ]),
    ),
    cancellable &&
      h(
        "button",
        { type: "button", className: "button button-secondary", onclick: (event) => openCancel(booking, event.currentTarget) },
        "Cancel booking",
        h("span", { className: "visually-hidden" }, ` ${booking.booking_id}: ${booking.mock_type} on ${date}`),
      ),
  );
}

function renderBookings(filter) {
  const list = state.bookings[filter];
  const panel = $(`#panel-${filter}`);
  $(`[data-count="${filter}"]`).textContent = list.loaded ? `(${list.total})` : "";
  panel.setAttribute("aria-busy", String(list.loading && !list.loaded));
  const focused = panel.contains(document.activeElement) && document.activeElement !== panel;
  const parts = [];
  if (list.error) {
    parts.push(
      h(
        "div",
        { className: "notice notice-error", role: "alert" },
        h("p", {}, `We could not load these bookings. ${list.error}`),
        h("button", { type: "button", className: "button button-secondary", onclick: () => loadBookings(filter) }, "Try again"),
      ),
    );
  }
  if (!list.loaded && !list.error) parts.push(h("p", { className: "placeholder" }, "Loading bookings…"));
  if (list.loaded && list.items.length === 0) parts.push(h("p", { className: "empty" }, EMPTY_TEXT[filter]));
  if (list.items.length) parts.push(h("ul", { className: "booking-list" }, list.items.map((b) => bookingCard(b, filter))));
  if (list.hasNext) {
    parts.push(
      h(
        "button",
        {
          type: "button",
          className: "button button-secondary more",
          "aria-disabled": list.loading ? "true" : null,
          onclick: () => !list.loading && loadBookings(filter, { more: true }),
        },
        list.loading ? "Loading…" : "Show more",
      ),
    );
  }
  replace(panel, parts);
  if (focused) panel.focus();
}

// ---------------------------------------------------------------- tabs

export function selectTab(filter, { focus = false } = {}) {
  state.tab = filter;
  for (const tab of $$("[role='tab']")) {
    const selected = tab.dataset.filter === filter;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected && focus) tab.focus();
  }
  for (const f of FILTERS) $(`#panel-${f}`).hidden = f !== filter;
}

function onTabKey(event) {
  const index = FILTERS.indexOf(state.tab);
  const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: FILTERS.length - 1 - index };
  if (!(event.key in moves)) return;
  event.preventDefault();
  selectTab(FILTERS[(index + moves[event.key] + FILTERS.length) % FILTERS.length], { focus: true });
}

// ---------------------------------------------------------------- cancelling

function openCancel(booking, opener) {
  state.cancelling = { booking, inFlight: false, opener };
  const kind = tokenKind(booking.token_used);
  const times = formatTimes(booking);
  replace(
    $("#cancel-body"),
    h("p", {}, `${booking.mock_type} on ${formatDate(booking, { long: true })}${times ? `, ${times}` : ""}.`),
    h("p", {}, `Booking code ${booking.booking_id}.`),
    h(
      "p",
      {},
      kind
        ? `Your seat will be given up and your 1 ${creditName(kind)} credit returned.`
        : "Your seat will be given up. This booking was made by the school, so no credit comes back.",
    ),
  );
  $("#cancel-error").hidden = true;
  const confirm = $("#cancel-confirm");
  confirm.textContent = "Yes, cancel booking";
  confirm.removeAttribute("aria-disabled");
  $("#cancel-dialog").showModal();
  $("#cancel-keep").focus(); // the safe choice first
}

export function closeCancel({ force = false } = {}) {
  if (state.cancelling?.inFlight && !force) return;
  const opener = state.cancelling?.opener;
  state.cancelling = null;
  const dialog = $("#cancel-dialog");
  if (dialog.open) dialog.close();
  if (!force) focusBack(opener, "#bookings-title");
}

async function onConfirmCancel() {
  const cancelling = state.cancelling;
  if (!cancelling || cancelling.inFlight) return;
  cancelling.inFlight = true;
  const confirm = $("#cancel-confirm");
  confirm.setAttribute("aria-disabled", "true");
  confirm.textContent = "Cancelling…";
  const { booking } = cancelling;
  const result = await api.cancelBooking(state.student, booking.id);
  cancelling.inFlight = false;
  confirm.removeAttribute("aria-disabled");
  confirm.textContent = "Yes, cancel booking";
  if (state.cancelling !== cancelling) return;
  if (!result.ok) {
    if (result.error.code === "CONTACT_NOT_FOUND") {
      closeCancel({ force: true });
      hooks.loggedOut(cancelMessage(result.error));
      return;
    }
    const error = $("#cancel-error");
    error.textContent = cancelMessage(result.error, { retryAfter: result.retryAfter });
    error.hidden = false;
    if (["BOOKING_NOT_CANCELLABLE", "BOOKING_NOT_FOUND", "NOT_FOUND"].includes(result.error.code)) loadAllBookings();
    return;
  }
  const data = result.data;
  const kind = tokenKind(data.token_used || booking.token_used);
  let text = `Cancelled ${booking.mock_type} on ${formatDate(booking)} (${booking.booking_id}).`;
  if (data.already_cancelled) text = `This booking (${booking.booking_id}) was already cancelled.`;
  else if (data.credits_restored && kind && data.credits) {
    text += ` 1 ${creditName(kind)} credit returned: you now have ${Number(data.credits[kind] || 0)}.`;
  }
  closeCancel({ force: true });
  setCredits(data.credits);
  // The booking leaves the upcoming list, and its button with it: focus its tab.
  selectTab("upcoming", { focus: true });
  showStatus(text);
  loadAllBookings();
  hooks.cancelled();
}
