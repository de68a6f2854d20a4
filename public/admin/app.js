// The sync-audit dashboard: sign in with an admin access token, then keep the picture
// current. Refreshes every 30 s while the tab is visible, every second while a run is
// in progress, and at once after anything the admin does.

import { client, saveToken, savedToken } from "./api.js";
import { drawChart } from "./chart.js";
import {
  renderAlerts,
  renderBudget,
  renderErrors,
  renderLag,
  renderLastRun,
  renderPending,
  renderRuns,
  runDetailBody,
} from "./dashboard.js";
import { byId, h } from "./dom.js";
import { clockTime, when } from "./format.js";
import { createRunner } from "./run.js";
import { createSearch } from "./search.js";

// Idle refresh: the cron runs every 2 hours, so half a minute is fresh enough and costs
// the database one read of a few small tables per open tab.
const IDLE_REFRESH_MS = 30000;
// While a run is in progress: the sync records progress after every batch (about a
// second each), so polling faster would only show the same numbers twice.
const RUNNING_REFRESH_MS = 1000;

let api = null;
let timer = null;
let loading = false;
let lastErrorsFor = null;
let lastHistory = null;
let lastStatus = null;

const runner = createRunner({
  api: () => api,
  onStart: () => schedule(0),
  onFinish: () => schedule(0),
});
const search = createSearch({ api: () => api, onChanged: () => schedule(0) });

// ---------------------------------------------------------------- sign in / out

function showSignIn(message) {
  byId("dashboard").hidden = true;
  byId("session").hidden = true;
  byId("signin").hidden = false;
  const error = byId("token-error");
  error.textContent = message || "";
  error.hidden = !message;
  byId("token").setAttribute("aria-invalid", message ? "true" : "false");
}

function signOut(message) {
  saveToken(null);
  api = null;
  clearTimeout(timer);
  const dialog = byId("detail");
  if (dialog.open) dialog.close();
  showSignIn(message);
}

async function signIn(token) {
  const trimmed = token.trim().replace(/^Bearer\s+/i, "");
  if (!trimmed) {
    showSignIn("Paste an access token first.");
    return;
  }
  const candidate = client(trimmed, () => {});
  byId("signin-button").disabled = true;
  const me = await candidate.me();
  byId("signin-button").disabled = false;
  if (!me.ok) {
    showSignIn(
      me.status === 403
        ? "This account is signed in but is not an admin."
        : me.status === 0
          ? "Cannot reach the server. Check your connection and try again."
          : `The token was refused: ${me.error.message}.`,
    );
    return;
  }
  saveToken(trimmed);
  api = client(trimmed, () => signOut("Your session has expired. Sign in again."));
  byId("who").textContent = `${me.data.email || me.data.user_id} (${me.data.role.replace("_", " ")})`;
  byId("token").value = "";
  byId("signin").hidden = true;
  byId("session").hidden = false;
  byId("dashboard").hidden = false;
  byId("main").focus();
  schedule(0);
}

// ---------------------------------------------------------------- refresh

function schedule(delayMs) {
  clearTimeout(timer);
  if (!api) return;
  timer = setTimeout(refresh, delayMs);
}

function connectionProblem(message) {
  const slot = byId("connection");
  slot.textContent = message || "";
  slot.hidden = !message;
  document.body.classList.toggle("stale", Boolean(message));
}

async function refresh() {
  if (!api || loading) return;
  if (document.visibilityState === "hidden") {
    schedule(IDLE_REFRESH_MS);
    return;
  }
  loading = true;
  try {
    // While a run works, the chart (a week of runs) waits for it to end: two calls a
    // second per tab stay well inside the admin rate limit (300 a minute per client).
    const busy = runner.active;
    const [status, runs, history] = await Promise.all([
      api.status(),
      api.runs(),
      busy && lastHistory ? Promise.resolve(null) : api.history(),
    ]);
    if (!api) return; // signed out meanwhile (401)
    if (!status.ok) {
      const when = lastStatus ? ` Showing what was true at ${clockTime(new Date(lastStatus.now))}.` : "";
      connectionProblem(
        (status.status === 0 ? "Cannot reach the server." : `The status could not be loaded: ${status.error.message}.`) + when,
      );
      return;
    }
    connectionProblem(null);
    lastStatus = status.data;
    renderAlerts(status.data);
    renderPending(status.data);
    renderLag(status.data);
    renderLastRun(status.data);
    renderBudget(status.data);
    runner.update(status.data);
    if (runs.ok) renderRuns(runs.data, openRun);
    // The run ended between the calls: its bar belongs on the chart now.
    const week = history || (runner.active || !api ? null : await api.history());
    if (week && week.ok) {
      lastHistory = week.data;
      drawChart(byId("chart"), lastHistory, status.data.now);
    }
    if (api) await refreshErrors(status.data.last_finished);
    byId("refreshed").textContent = `Updated ${clockTime(new Date())} (Toronto time)`;
  } finally {
    loading = false;
    schedule(runner.active ? RUNNING_REFRESH_MS : IDLE_REFRESH_MS);
  }
}

async function refreshErrors(last) {
  if (!last) {
    lastErrorsFor = null;
    renderErrors(null);
    return;
  }
  // A finished run's errors never change: fetch them once per run.
  if (lastErrorsFor === last.id) return;
  const detail = await api.run(last.id);
  if (detail.ok) {
    lastErrorsFor = last.id;
    renderErrors(detail.data);
  }
}

async function openRun(id) {
  search.open("Sync run", h("p", { class: "muted" }, "Loading…"));
  const detail = await api.run(id);
  if (!detail.ok) {
    search.open("Sync run", h("p", { class: "notice notice-error" }, detail.error.message));
    return;
  }
  search.open(`Sync run of ${when(detail.data.run.started_at)}`, ...runDetailBody(detail.data));
}

// ---------------------------------------------------------------- start

function tokenFromLink() {
  // `./run dev` prints a link with the token in the fragment: fragments never reach a
  // server or its logs. Taken once, then removed from the address bar and history.
  const match = /^#token=([A-Za-z0-9._-]+)$/.exec(window.location.hash);
  if (!match) return null;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return match[1];
}

byId("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn(byId("token").value);
});
byId("sign-out").addEventListener("click", () => signOut());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") schedule(0);
});
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (lastHistory && lastStatus) drawChart(byId("chart"), lastHistory, lastStatus.now);
  }, 150);
});

const initial = tokenFromLink() || savedToken();
if (initial) signIn(initial);
else showSignIn();
