// What the page knows, shared by its parts, and what it keeps in this tab only
// (sessionStorage: closing the tab forgets the student).

import { $ } from "./dom.js";
import { EXAM_TYPES } from "./domain.js";

export const FILTERS = ["upcoming", "past", "cancelled"];

const STORE = {
  student: "mockBooking.student",
  type: "mockBooking.type",
  keys: "mockBooking.pendingKeys",
};

export const emptySessions = (seq = 0) => ({ items: [], loading: false, loaded: false, error: null, updatedAt: null, seq });
export const emptyList = () => ({ items: [], page: 0, total: 0, hasNext: false, loading: false, loaded: false, error: null });

export const state = {
  student: null, // {student_id, email, name}
  credits: null, // the five balances, as the API last told them
  type: EXAM_TYPES[0].name,
  sessions: emptySessions(),
  bookings: Object.fromEntries(FILTERS.map((f) => [f, emptyList()])),
  tab: "upcoming",
  booking: null, // the open booking dialog: {exam, inFlight, opener}
  cancelling: null, // the open cancel dialog: {booking, inFlight, opener}
};

// ---------------------------------------------------------------- sessionStorage

function read(key, fallback) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the page still works; the tab forgets on reload.
  }
}

export const savedStudent = () => {
  const student = read(STORE.student, null);
  return student && student.student_id && student.email ? student : null;
};
export const saveStudent = (student) => write(STORE.student, student);
export const savedType = () => {
  const type = read(STORE.type, null);
  return EXAM_TYPES.some((t) => t.name === type) ? type : null;
};
export const saveType = (type) => write(STORE.type, type);

/** The Idempotency-Key of this student's booking intended for `examId`: the same one
 *  on every retry and double click, kept across a reload, until an answer settles it. */
export function keyFor(examId) {
  const keys = read(STORE.keys, {});
  const intent = `${state.student.student_id}/${examId}`;
  if (!keys[intent]) {
    keys[intent] = crypto.randomUUID();
    write(STORE.keys, keys);
  }
  return keys[intent];
}

/** A definitive answer came for this intended booking: the next one gets a new key. */
export function settleKey(examId) {
  const keys = read(STORE.keys, {});
  delete keys[`${state.student.student_id}/${examId}`];
  write(STORE.keys, keys);
}

// ---------------------------------------------------------------- credits

const creditListeners = [];

/** Run `listener` whenever the balances change. */
export const onCredits = (listener) => creditListeners.push(listener);

export function setCredits(credits) {
  if (!credits) return;
  state.credits = credits;
  for (const listener of creditListeners) listener();
}

// ---------------------------------------------------------------- page notices

export function showPageError(text) {
  const box = $("#page-error");
  box.textContent = text || "";
  box.hidden = !text;
}

/** Focus what opened a dialog, or a section heading when it is gone (re-rendered). */
export function focusBack(opener, fallbackSelector) {
  if (opener && opener.isConnected) {
    opener.focus();
    return;
  }
  const heading = $(fallbackSelector);
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}
