// The student booking page: log in, see credits, pick a session of a type, book it,
// see and cancel bookings. Plain ES modules, no build step; everything shown comes
// from the student API (public/openapi.yaml), and nothing else leaves the page.

import * as api from "./api.js";
import { closeBooking, initBooking, openBooking, sessionsRefreshed } from "./booking.js";
import { closeCancel, initBookings, loadAllBookings, loadBookings, resetBookings } from "./bookings.js";
import { $ } from "./dom.js";
import { loginMessage } from "./messages.js";
import {
  initSessions,
  loadSessions,
  renderCredits,
  renderSessions,
  renderTypes,
  resetSessions,
  startSessionPolling,
  stopSessionPolling,
} from "./sessions.js";
import { onCredits, saveStudent, savedStudent, savedType, showPageError, state } from "./state.js";

const STUDENT_ID = /^[A-Za-z0-9]{1,32}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

// ---------------------------------------------------------------- log in

function fieldError(input, text) {
  const error = $(`#${input.id}-error`);
  error.textContent = text || "";
  error.hidden = !text;
  if (text) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function checkLoginFields(idInput, emailInput) {
  const studentId = idInput.value.trim();
  const email = emailInput.value.trim();
  fieldError(
    idInput,
    !studentId ? "Enter your Student ID." : STUDENT_ID.test(studentId) ? "" : "Use letters and digits only, for example DEMO001.",
  );
  fieldError(
    emailInput,
    !email ? "Enter your email address." : EMAIL.test(email) ? "" : "Enter a full email address, for example name@example.com.",
  );
  return { student_id: studentId, email };
}

async function onLogin(event) {
  event.preventDefault();
  const button = $("#login-submit");
  if (button.getAttribute("aria-disabled") === "true") return;
  const idInput = $("#student-id");
  const emailInput = $("#email");
  const loginError = $("#login-error");
  loginError.hidden = true;
  const student = checkLoginFields(idInput, emailInput);
  const invalid = $("#login-form [aria-invalid='true']");
  if (invalid) {
    invalid.focus();
    return;
  }
  button.setAttribute("aria-disabled", "true");
  button.textContent = "Logging in…";
  const result = await api.login(student);
  button.removeAttribute("aria-disabled");
  button.textContent = "Log in";
  if (result.ok) {
    enter(result.data, { focus: true });
    return;
  }
  const text = loginMessage(result.error, { retryAfter: result.retryAfter });
  const input = { student_id: idInput, email: emailInput }[result.error.field];
  if (input && ["VALIDATION_ERROR", "INVALID_INPUT"].includes(result.error.code)) {
    fieldError(input, text);
    input.focus();
  } else {
    loginError.textContent = text;
    loginError.hidden = false;
  }
}

function enter(profile, { focus }) {
  state.student = { student_id: profile.student_id, email: profile.email, name: profile.name };
  saveStudent(state.student);
  state.credits = profile.credits;
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#who").hidden = false;
  $("#who-name").textContent = `${profile.name} · ${profile.student_id}`;
  $("#welcome").textContent = `Hello, ${profile.firstname || profile.name}`;
  renderCredits();
  renderTypes();
  resetSessions();
  loadSessions();
  resetBookings();
  loadAllBookings();
  startSessionPolling();
  if (focus) $("#welcome").focus();
}

function showLogin(message) {
  stopSessionPolling();
  closeBooking({ force: true });
  closeCancel({ force: true });
  state.student = null;
  state.credits = null;
  saveStudent(null);
  resetSessions();
  resetBookings();
  $("#app-view").hidden = true;
  $("#who").hidden = true;
  $("#login-view").hidden = false;
  showPageError("");
  const loginError = $("#login-error");
  loginError.textContent = message || "";
  loginError.hidden = !message;
}

function logout() {
  const studentId = state.student ? state.student.student_id : "";
  showLogin("");
  $("#student-id").value = studentId;
  $("#email").value = "";
  const title = $("#login-title");
  title.setAttribute("tabindex", "-1");
  title.focus();
}

/** The tab already holds an identity (a reload): check it again, then go on. */
async function resume(student) {
  $("#app-view").hidden = false;
  const result = await api.login(student);
  if (result.ok) {
    enter(result.data, { focus: false });
    return;
  }
  showLogin(loginMessage(result.error, { retryAfter: result.retryAfter }));
  $("#student-id").value = student.student_id;
  if (!["STUDENT_NOT_FOUND", "CONTACT_NOT_FOUND"].includes(result.error.code)) $("#email").value = student.email;
}

// ---------------------------------------------------------------- start

function boot() {
  onCredits(() => {
    renderCredits();
    renderTypes();
    renderSessions();
  });
  initSessions({ book: openBooking, refreshed: sessionsRefreshed });
  initBooking({
    booked: () => {
      loadBookings("upcoming");
      loadSessions({ quiet: true });
    },
    rejected: () => {
      loadSessions({ quiet: true });
      loadBookings("upcoming");
    },
    loggedOut: showLogin,
  });
  initBookings({
    // What is booked decides which sessions can be booked (same day, attended).
    loaded: (filter) => filter !== "cancelled" && renderSessions(),
    cancelled: () => loadSessions({ quiet: true }),
    loggedOut: showLogin,
  });
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", logout);
  $("#boot").remove();

  state.type = savedType() || state.type;
  const student = savedStudent();
  if (student) resume(student);
  else showLogin("");
}

boot();
