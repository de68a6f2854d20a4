// "Run now" and its live progress. The run happens inside the POST (a serverless
// function cannot keep working after it answers), so the request stays open for the
// whole run while the dashboard polls the status endpoint, whose `running` run the
// sync updates after every batch: phase, counts so far, elapsed time.

import { byId, h, replace } from "./dom.js";
import { count, millis, PHASE_TEXT, PHASES, plural, STATUS_TEXT, tone } from "./format.js";

export function createRunner({ api, onStart, onFinish }) {
  let requesting = false;
  let outcome = null; // {tone, text} of the last run started here
  let running = null; // the status endpoint's running run, if any

  function form() {
    return byId("run-form");
  }

  function setBusy(busy) {
    const button = byId("run-now");
    button.disabled = busy;
    button.textContent = busy ? "Running…" : "Run now";
    for (const radio of form().querySelectorAll("input")) radio.disabled = busy;
  }

  function describe(answer) {
    if (answer.ok) {
      const run = answer.data;
      return {
        tone: tone(run.status),
        text:
          `${STATUS_TEXT[run.status] || run.status}: ${plural(run.records_synced, "record")} in ${millis(run.duration_ms)}` +
          (run.error_count ? `, ${plural(run.error_count, "error")}` : "") +
          (run.message && tone(run.status) !== "ok" ? `. ${run.message}` : ""),
      };
    }
    if (answer.status === 409) return { tone: "info", text: "A run is already in progress; its progress shows here." };
    if (answer.status === 0) {
      return { tone: "warn", text: "No answer from the server. The run may still be going: watch the runs list." };
    }
    return { tone: "bad", text: answer.error.message };
  }

  async function start(mode) {
    if (requesting) return;
    requesting = true;
    outcome = null;
    setBusy(true);
    render();
    onStart();
    const answer = await api().startRun(mode);
    requesting = false;
    outcome = describe(answer);
    setBusy(Boolean(running));
    render();
    onFinish(answer);
  }

  function phaseList(run) {
    const seen = PHASES.filter((name) => run.phases && run.phases[name]);
    const current = seen.length ? seen[seen.length - 1] : null;
    return h(
      "ol",
      { class: "phases" },
      PHASES.map((name) => {
        const counts = run.phases && run.phases[name];
        const state = !counts ? "todo" : name === current ? "now" : "done";
        const done = counts ? counts.created + counts.updated : 0;
        return h(
          "li",
          { class: `phase phase-${state}`, "data-phase": name },
          h("span", { class: "phase-name" }, PHASE_TEXT[name]),
          counts ? h("span", { class: "phase-count num" }, count(done)) : null,
          h("span", { class: "visually-hidden" }, state === "done" ? " done" : state === "now" ? " in progress" : " to do"),
        );
      }),
    );
  }

  function render() {
    const box = byId("progress");
    if (running) {
      replace(
        box,
        h(
          "p",
          { class: "progress-line" },
          h("span", { class: "spinner", "aria-hidden": "true" }),
          h("strong", {}, running.mode === "full" ? "Full pass" : "Running"),
          ` · ${millis(running.duration_ms)} · `,
          h("span", { class: "num", id: "progress-records" }, count(running.records_synced)),
          " records synced",
        ),
        phaseList(running),
      );
      return;
    }
    if (requesting) {
      replace(box, h("p", { class: "progress-line" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Starting the run…"));
      return;
    }
    if (outcome) {
      replace(box, h("p", { class: `outcome outcome-${outcome.tone}`, id: "run-outcome" }, outcome.text));
      return;
    }
    replace(box, h("p", { class: "hint" }, "The cron runs every 2 hours. Run now to catch up at once; one run at a time."));
  }

  function update(status) {
    running = status ? status.running : null;
    setBusy(requesting || Boolean(running));
    render();
  }

  form().addEventListener("submit", (event) => {
    event.preventDefault();
    const mode = new FormData(form()).get("mode") || "delta";
    start(String(mode));
  });

  return {
    update,
    get active() {
      return requesting || Boolean(running);
    },
  };
}
