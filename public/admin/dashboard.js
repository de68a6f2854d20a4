// The read-only parts of the dashboard: alerts, the key figures, the runs table and
// the last run's errors, each rendered whole from the API's answer.

import { byId, empty, h, replace, table } from "./dom.js";
import {
  ago,
  count,
  plural,
  decimal,
  millis,
  percent,
  PHASE_TEXT,
  seconds,
  STATUS_TEXT,
  tone,
  when,
  whenExact,
} from "./format.js";

const ALERT_OK = {
  OLDEST_PENDING_OVER_GOAL: "Nothing has waited more than 2 hours",
  LAST_RUN_FAILED: "The last run did its work",
  DAILY_BUDGET_LOW: "HubSpot's daily budget is fine",
};
// Inactive, but only because there is nothing to judge yet.
const ALERT_UNKNOWN = {
  LAST_RUN_FAILED: "No sync run has finished yet",
  DAILY_BUDGET_LOW: "HubSpot has not reported its daily budget yet",
};

// Not an alert, but not all well either: the last run went through with some records
// failing, or stopped at its time limit with work left for the next.
const ALERT_WARN = {
  partial: "The last run left records behind",
  deadline: "The last run ran out of time",
};

function alertState(alert) {
  if (alert.active) return "on";
  if (alert.code === "LAST_RUN_FAILED" && ALERT_WARN[alert.value]) return "warn";
  return alert.value === null && ALERT_UNKNOWN[alert.code] ? "unknown" : "off";
}

export function badge(status) {
  return h("span", { class: `badge badge-${tone(status)}` }, STATUS_TEXT[status] || status);
}

export function renderAlerts(status) {
  replace(
    "alerts",
    status.alerts.map((alert) => {
      const state = alertState(alert);
      const title = {
        on: alert.title,
        off: ALERT_OK[alert.code],
        unknown: ALERT_UNKNOWN[alert.code],
        warn: ALERT_WARN[alert.value],
      }[state];
      return h(
        "li",
        {
          class: `alert alert-${state}${state === "on" ? ` alert-${alert.severity}` : ""}${state === "warn" ? " alert-warning" : ""}`,
          "data-code": alert.code,
          "data-active": String(alert.active),
        },
        h("span", { class: "alert-icon", "aria-hidden": "true" }, { on: "!", off: "✓", unknown: "–", warn: "!" }[state]),
        h(
          "span",
          { class: "alert-text" },
          h("strong", {}, state === "on" ? h("span", { class: "visually-hidden" }, "Alert: ") : null, title || alert.title),
          alert.detail !== title ? h("span", { class: "alert-detail", title: alert.detail }, alert.detail) : null,
        ),
      );
    }),
  );
}

const TABLE_TEXT = { contacts: "Contacts", bookings: "Bookings", mock_exams: "Seat counts" };

export function renderPending(status) {
  byId("pending-total").textContent = count(status.pending.total);
  byId("pending-unit").textContent = status.pending.total === 1 ? "record" : "records";
  const rows = ["bookings", "contacts", "mock_exams"].map((name) => {
    const t = status.tables[name];
    return h(
      "tr",
      { "data-table": name },
      h("th", { scope: "row" }, TABLE_TEXT[name]),
      h("td", { class: "numeric" }, name === "mock_exams" ? "–" : count(t.awaiting_hubspot_id)),
      h("td", { class: "numeric" }, count(t.changed_since_sync)),
    );
  });
  replace(
    "pending-tables",
    h("caption", { class: "visually-hidden" }, "Pending records per table"),
    h(
      "thead",
      {},
      h("tr", {}, h("td", {}), h("th", { scope: "col", class: "numeric" }, "New"), h("th", { scope: "col", class: "numeric" }, "Changed")),
    ),
    h("tbody", {}, rows),
  );
}

export function renderLag(status) {
  const lag = status.lag;
  const value = byId("lag-value");
  const nothing = status.pending.oldest_age_s === null;
  value.textContent = nothing ? "Nothing waiting" : seconds(lag.seconds);
  value.className = `num lag-${lag.state}${nothing ? " kpi-text" : ""}`;
  const meter = byId("lag-meter");
  meter.style.width = `${Math.min(100, lag.fraction_of_goal * 100)}%`;
  meter.className = `meter-fill meter-${lag.state}`;
  const where = status.pending.oldest_table ? ` (${TABLE_TEXT[status.pending.oldest_table].toLowerCase()})` : "";
  const share =
    lag.state === "over"
      ? `Over the ${seconds(status.goal_s)} goal${where}`
      : `${percent(lag.fraction_of_goal)} of the ${seconds(status.goal_s)} goal${where}`;
  byId("lag-note").textContent =
    status.pending.oldest_age_s === null
      ? `Goal: every record in HubSpot within ${seconds(status.goal_s)}`
      : `${share} · last success ${ago(status.last_success_at, status.now)}`;
}

export function renderLastRun(status) {
  const last = status.last_finished;
  const slot = byId("last-status");
  if (!last) {
    slot.replaceWith(h("span", { id: "last-status", class: "badge badge-muted" }, "No run yet"));
    byId("last-note").textContent = "Runs appear after the 2-hourly cron or “Run now”.";
  } else {
    const fresh = badge(last.status);
    fresh.id = "last-status";
    slot.replaceWith(fresh);
    byId("last-note").textContent =
      `${last.mode === "full" ? "Full pass" : "Changes only"} · ${ago(last.finished_at || last.started_at, status.now)}` +
      ` · ${millis(last.duration_ms)} · ${plural(last.records_synced, "record")}` +
      (last.error_count ? ` · ${plural(last.error_count, "error")}` : "");
  }
  replace(
    "last-modes",
    ["delta", "full"].map((mode) => {
      const run = status.last_runs[mode];
      return h(
        "div",
        { class: "breakdown-row" },
        h("dt", {}, mode === "delta" ? "Changes only" : "Full pass"),
        h("dd", {}, run ? [when(run.started_at), " ", badge(run.status)] : "never"),
      );
    }),
  );
}

export function renderBudget(status) {
  const use = status.rate_limit;
  const meter = byId("rate-meter");
  if (!use) {
    byId("rate-value").textContent = "–";
    byId("rate-unit").textContent = "";
    meter.style.width = "0%";
    byId("rate-note").textContent = "No run yet";
    return;
  }
  byId("rate-value").textContent = decimal(use.calls_per_10s);
  byId("rate-unit").textContent = `of ${count(use.limit_per_10s)} calls / 10 s`;
  const fraction = use.use_fraction || 0;
  meter.style.width = `${Math.min(100, fraction * 100)}%`;
  meter.className = `meter-fill ${fraction > 0.9 ? "meter-near" : "meter-ok"}`;
  const daily =
    use.daily_limit && use.daily_remaining !== null
      ? ` · daily ${percent(1 - use.daily_used_fraction)} left`
      : "";
  byId("rate-note").textContent =
    `${count(use.api_calls)} calls · ${count(use.rate_limited)} × 429 · ${count(use.retries)} retries` +
    (use.budget_wait_ms ? ` · waited ${millis(use.budget_wait_ms)}` : "") +
    daily;
}

export function renderRuns(runs, onOpen) {
  byId("runs-count").textContent = runs.pagination.total ? `${count(runs.pagination.total)} in all` : "";
  if (runs.runs.length === 0) {
    replace("runs", empty("No sync run has been recorded yet."));
    return;
  }
  replace(
    "runs",
    table(
      [
        {
          label: "Started",
          value: (r) =>
            h(
              "button",
              { type: "button", class: "link", onclick: () => onOpen(r.id), title: `Details of the run started ${whenExact(r.started_at)}` },
              h("time", { datetime: r.started_at }, when(r.started_at)),
            ),
          nowrap: true,
        },
        { label: "Mode", value: (r) => (r.mode === "full" ? "Full" : "Changes") },
        { label: "Outcome", value: (r) => badge(r.status) },
        { label: "Duration", value: (r) => millis(r.duration_ms), numeric: true },
        { label: "Records", value: (r) => count(r.records_synced), numeric: true },
        { label: "API calls", value: (r) => count(r.api_calls), numeric: true },
        { label: "429s", value: (r) => count(r.rate_limited), numeric: true },
        { label: "Errors", value: (r) => count(r.error_count), numeric: true },
      ],
      runs.runs,
      { caption: "Recent sync runs, newest first", rowAttributes: (r) => ({ "data-run": r.id, "data-status": r.status }) },
    ),
  );
}

export function errorsTable(errors) {
  return table(
    [
      { label: "Phase", value: (e) => PHASE_TEXT[e.phase] || e.phase },
      { label: "Record", value: (e) => h("code", {}, e.record_id || e.hubspot_id || "–") },
      { label: "Problem", value: (e) => [h("strong", {}, e.category), " ", e.message] },
      {
        label: "Correlation id",
        value: (e) => (e.correlation_id ? h("code", { class: "correlation" }, e.correlation_id) : h("span", { class: "muted" }, "–")),
      },
    ],
    errors,
    { caption: "Records the run could not bring across", rowAttributes: (e) => ({ class: e.severity === "warning" ? "row-warning" : null }) },
  );
}

export function renderErrors(detail) {
  const note = byId("errors-count");
  if (!detail) {
    note.textContent = "";
    replace("errors", empty("No run has finished yet."));
    return;
  }
  const run = detail.run;
  note.textContent = `${when(run.started_at)} · ${count(detail.errors_total)} recorded`;
  if (detail.errors.length === 0) {
    replace(
      "errors",
      h("p", { class: "empty empty-ok" }, h("span", { "aria-hidden": "true" }, "✓ "), "The last run recorded no errors."),
      run.message ? h("p", { class: "run-message" }, run.message) : null,
    );
    return;
  }
  replace(
    "errors",
    run.message ? h("p", { class: "run-message" }, run.message) : null,
    errorsTable(detail.errors),
    detail.errors_total > detail.errors.length
      ? h("p", { class: "muted" }, `Showing the first ${count(detail.errors.length)} of ${count(detail.errors_total)}.`)
      : null,
  );
}

export function runDetailBody(detail) {
  const run = detail.run;
  const phases = Object.entries(run.phases || {});
  return [
    h(
      "dl",
      { class: "facts" },
      fact("Outcome", badge(run.status)),
      fact("Mode", run.mode === "full" ? "Full pass" : "Changes only"),
      fact("Started", whenExact(run.started_at)),
      fact("Duration", millis(run.duration_ms)),
      fact("Trigger", run.trigger),
      fact("API calls", count(run.api_calls)),
      fact("429 answers", count(run.rate_limited)),
      fact("Retries", count(run.retries)),
      fact("Waited for budget", millis(run.budget_wait_ms)),
      fact("Records synced", count(run.records_synced)),
    ),
    run.message ? h("p", { class: "run-message" }, run.message) : null,
    h("h3", {}, "Phases"),
    phases.length
      ? table(
          [
            { label: "Phase", value: ([name]) => PHASE_TEXT[name] || name },
            { label: "Created", value: ([, c]) => count(c.created), numeric: true },
            { label: "Updated", value: ([, c]) => count(c.updated), numeric: true },
            { label: "Unchanged", value: ([, c]) => count(c.unchanged), numeric: true },
            { label: "Failed", value: ([, c]) => count(c.failed), numeric: true },
            { label: "API calls", value: ([, c]) => count(c.calls), numeric: true },
            { label: "Time", value: ([, c]) => millis(c.duration_ms), numeric: true },
          ],
          phases,
          { caption: "What each phase did" },
        )
      : empty("This run did not reach any phase."),
    h("h3", {}, `Errors (${count(detail.errors_total)})`),
    detail.errors.length ? errorsTable(detail.errors) : empty("None."),
  ];
}

export function fact(label, value) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value));
}
