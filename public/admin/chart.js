// The runs of the last days as one inline SVG, drawn here (no chart library): a bar
// per run for its duration (left axis; failed runs in red), and a line through the
// records each run synced (right axis). Time runs left to right over the whole window,
// so a gap in the bars is a gap in the runs.

import { empty, replace, svg } from "./dom.js";
import { chartDay, count, seconds, STATUS_TEXT, tone, when, ZONE } from "./format.js";

const MARGIN = { top: 12, right: 52, bottom: 26, left: 56 };
const DAY_MS = 24 * 3600 * 1000;

const zoneParts = new Intl.DateTimeFormat("en-CA", {
  timeZone: ZONE,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

function partsAt(t) {
  return Object.fromEntries(zoneParts.formatToParts(new Date(t)).map((p) => [p.type, Number(p.value)]));
}

// How far the school's clock is ahead of UTC at instant t (negative: behind).
function offsetAt(t) {
  const p = partsAt(t);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(t / 1000) * 1000;
}

// The instants of midnight in Toronto between start and end: the day gridlines sit
// where the labels (Toronto dates) change, whatever the browser's own zone.
function midnights(start, end) {
  const found = [];
  const p = partsAt(start);
  for (let day = Date.UTC(p.year, p.month - 1, p.day + 1); ; day += DAY_MS) {
    const instant = day - offsetAt(day);
    if (instant >= end) break;
    if (instant > start) found.push(instant);
  }
  return found;
}

// Round an axis maximum up to a number that reads well (1, 2, 5 × 10^n).
function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

// Gridlines at round steps: 10 → 2, 4, …; 20 → 5, 10, …; 50 → 10, 20, ….
function ticks(max) {
  const leading = max / 10 ** Math.floor(Math.log10(max));
  const n = leading === 2 ? 4 : 5;
  return Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
}

export function drawChart(container, history, nowIso) {
  const runs = (history && history.runs) || [];
  if (runs.length === 0) {
    replace(container, empty("No sync runs in the last 7 days. They appear here after the 2-hourly cron or “Run now”."));
    return;
  }
  const width = Math.max(container.clientWidth, 320);
  const height = Math.max(container.clientHeight, 160);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const end = new Date(nowIso || Date.now()).getTime();
  const start = Math.min(new Date(history.since).getTime(), end - DAY_MS);
  const x = (iso) => MARGIN.left + ((new Date(iso).getTime() - start) / (end - start)) * plotW;

  const durations = runs.map((r) => (r.duration_ms || 0) / 1000);
  const maxDuration = niceCeiling(Math.max(...durations, 10));
  const maxRecords = niceCeiling(Math.max(...runs.map((r) => r.records_synced), 10));
  const yLeft = (s) => MARGIN.top + plotH - (s / maxDuration) * plotH;
  const yRight = (n) => MARGIN.top + plotH - (n / maxRecords) * plotH;
  // Twelve runs a day at most fit side by side; wider bars would overlap.
  const barW = Math.max(2, Math.min(12, (plotW / ((end - start) / DAY_MS) / 12) * 0.7));

  const grid = ticks(maxDuration).map((s) =>
    svg(
      "g",
      { class: "tick" },
      svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: yLeft(s), y2: yLeft(s), class: "grid" }),
      svg("text", { x: MARGIN.left - 6, y: yLeft(s) + 4, "text-anchor": "end", text: seconds(s) }),
    ),
  );
  const rightAxis = ticks(maxRecords).map((n) =>
    svg("text", {
      x: MARGIN.left + plotW + 6,
      y: yRight(n) + 4,
      "text-anchor": "start",
      class: "axis-records",
      text: count(n),
    }),
  );
  const days = [];
  for (const t of midnights(start, end)) {
    const px = MARGIN.left + ((t - start) / (end - start)) * plotW;
    days.push(
      svg(
        "g",
        { class: "tick" },
        svg("line", { x1: px, x2: px, y1: MARGIN.top, y2: MARGIN.top + plotH, class: "grid grid-day" }),
        svg("text", { x: px + 4, y: height - 8, "text-anchor": "start", text: chartDay(new Date(t)) }),
      ),
    );
  }

  const bars = runs.map((run, i) => {
    const top = yLeft(durations[i]);
    const failed = tone(run.status) === "bad";
    return svg(
      "rect",
      {
        x: x(run.started_at) - barW / 2,
        y: Math.min(top, MARGIN.top + plotH - 1),
        width: barW,
        height: Math.max(1, MARGIN.top + plotH - top),
        class: failed ? "bar bar-failed" : "bar",
        "data-run": run.id,
      },
      svg("title", {
        text:
          `${when(run.started_at)} · ${run.mode} · ${STATUS_TEXT[run.status] || run.status}\n` +
          `${seconds(durations[i])} · ${count(run.records_synced)} records · ${count(run.api_calls)} API calls` +
          (run.error_count ? ` · ${count(run.error_count)} errors` : ""),
      }),
    );
  });
  const points = runs.map((run) => `${x(run.started_at).toFixed(1)},${yRight(run.records_synced).toFixed(1)}`);
  const line = svg("polyline", { points: points.join(" "), class: "records-line" });
  const dots = runs.map((run) =>
    svg("circle", { cx: x(run.started_at), cy: yRight(run.records_synced), r: 2.5, class: "records-dot" }),
  );

  const total = runs.reduce((sum, r) => sum + r.records_synced, 0);
  const failedRuns = runs.filter((r) => tone(r.status) === "bad").length;
  const summary =
    `${count(runs.length)} runs in the last 7 days, ${count(failedRuns)} failed; ` +
    `longest ${seconds(Math.max(...durations))}; ${count(total)} records synced in all.`;
  replace(
    container,
    svg(
      "svg",
      {
        viewBox: `0 0 ${width} ${height}`,
        width,
        height,
        role: "img",
        "aria-label": summary,
        class: "chart-svg",
      },
      svg("title", { text: summary }),
      grid,
      days,
      svg("line", {
        x1: MARGIN.left,
        x2: MARGIN.left + plotW,
        y1: MARGIN.top + plotH,
        y2: MARGIN.top + plotH,
        class: "axis",
      }),
      rightAxis,
      bars,
      line,
      dots,
    ),
  );
}
