// The search box and what it opens: a student (bookings, credit history, adjust
// credits) or a booking (its owner, HubSpot state, history, cancel on the student's
// behalf), each in one dialog.

import { byId, empty, h, replace, table } from "./dom.js";
import { count, CREDIT_KINDS, when, whenExact } from "./format.js";
import { fact } from "./dashboard.js";

const MIN_QUERY = 2;

export function createSearch({ api, onChanged }) {
  const dialog = byId("detail");

  function showError(message) {
    const slot = byId("q-error");
    slot.textContent = message || "";
    slot.hidden = !message;
    byId("q").setAttribute("aria-invalid", message ? "true" : "false");
  }

  async function search(query) {
    const q = query.trim();
    if (q.length < MIN_QUERY) {
      showError(`Type at least ${MIN_QUERY} characters.`);
      return;
    }
    showError("");
    replace("results", h("p", { class: "muted" }, "Searching…"));
    const answer = await api().search(q);
    if (!answer.ok) {
      replace("results", h("p", { class: "notice notice-error" }, answer.error.message));
      return;
    }
    const { students, bookings } = answer.data;
    if (students.length === 0 && bookings.length === 0) {
      replace("results", empty(`Nothing matches “${q}”. Booking codes and ids must be exact; emails may be the start of one.`));
      return;
    }
    replace(
      "results",
      students.length ? h("h3", { class: "results-head" }, `Students (${count(students.length)})`) : null,
      students.length
        ? h(
            "ul",
            { class: "result-list" },
            students.map((s) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { type: "button", class: "result", "data-student": s.student_id, onclick: () => openStudent(s.id) },
                  h("strong", {}, s.student_id),
                  " ",
                  name(s),
                  h("span", { class: "muted" }, ` · ${s.email}`),
                  h("span", { class: "result-credits num" }, `${count(total(s.credits))} credits`),
                ),
              ),
            ),
          )
        : null,
      bookings.length ? h("h3", { class: "results-head" }, `Bookings (${count(bookings.length)})`) : null,
      bookings.length
        ? h(
            "ul",
            { class: "result-list" },
            bookings.map((b) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { type: "button", class: "result", "data-booking": b.booking_id, onclick: () => openBooking(b.id) },
                  h("strong", {}, b.booking_id),
                  ` · ${b.mock_type} · ${b.exam_date || "no date"} · ${b.student_id}`,
                  h("span", { class: `status status-${String(b.is_active).toLowerCase()}` }, b.is_active),
                ),
              ),
            ),
          )
        : null,
    );
    // One match: open it at once, as a person looking up one code expects.
    if (students.length + bookings.length === 1) {
      if (students.length) openStudent(students[0].id);
      else openBooking(bookings[0].id);
    }
  }

  function total(credits) {
    return Object.values(credits).reduce((sum, n) => sum + n, 0);
  }

  function name(contact) {
    return [contact.firstname, contact.lastname].filter(Boolean).join(" ");
  }

  function open(title, ...body) {
    byId("detail-title").textContent = title;
    replace("detail-body", ...body);
    if (!dialog.open) dialog.showModal();
  }

  function loading(title) {
    open(title, h("p", { class: "muted" }, "Loading…"));
  }

  // ---------------------------------------------------------------- a student

  async function openStudent(id, notice) {
    loading("Student");
    const answer = await api().student(id);
    if (!answer.ok) {
      open("Student", h("p", { class: "notice notice-error" }, answer.error.message));
      return;
    }
    const { contact, bookings, credit_history: history } = answer.data;
    open(
      `${contact.student_id} · ${name(contact) || "Student"}`,
      notice ? h("p", { class: "notice notice-success", role: "status" }, notice) : null,
      h(
        "dl",
        { class: "facts" },
        fact("Email", contact.email),
        fact("HubSpot id", contact.hubspot_id || h("span", { class: "muted" }, "not in HubSpot yet")),
        fact("Student UUID", h("code", {}, contact.id)),
      ),
      h(
        "div",
        { class: "detail-columns" },
        h("section", { "aria-labelledby": "credits-title" }, h("h3", { id: "credits-title" }, "Credits"), creditForm(contact)),
        h(
          "section",
          { "aria-labelledby": "bookings-title" },
          h("h3", { id: "bookings-title" }, `Bookings (${count(bookings.length)})`),
          bookings.length
            ? table(
                [
                  {
                    label: "Booking",
                    value: (b) => h("button", { type: "button", class: "link", onclick: () => openBooking(b.id) }, b.booking_id),
                  },
                  { label: "Type", value: (b) => b.mock_type },
                  { label: "Exam date", value: (b) => b.exam_date || "–", nowrap: true },
                  { label: "Status", value: (b) => b.is_active },
                ],
                bookings,
                { caption: "The student's bookings, latest exam first" },
              )
            : empty("No bookings."),
        ),
      ),
      h("h3", {}, "Credit history"),
      historyTable(history),
    );
  }

  function creditForm(contact) {
    const error = h("p", { class: "field-error", role: "alert", hidden: true });
    const inputs = CREDIT_KINDS.map(([kind, label]) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, label),
        h("td", { class: "numeric num", "data-kind": kind }, count(contact.credits[kind])),
        h(
          "td",
          {},
          h("label", { class: "visually-hidden", for: `delta-${kind}` }, `Change to ${label} credits`),
          h("input", { id: `delta-${kind}`, name: kind, type: "number", step: "1", min: "-9999", max: "9999", value: "0", inputmode: "numeric", class: "delta" }),
        ),
      ),
    );
    const form = h(
      "form",
      { class: "credit-form", novalidate: true },
      h(
        "table",
        { class: "data credits" },
        h("caption", { class: "visually-hidden" }, "Balances and changes to make"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Kind"), h("th", { scope: "col", class: "numeric" }, "Balance"), h("th", { scope: "col" }, "Change (+/−)"))),
        h("tbody", {}, inputs),
      ),
      h("label", { for: "credit-reason" }, "Reason (kept in the audit log)"),
      h("input", { id: "credit-reason", name: "reason", type: "text", maxlength: "500", required: true, autocomplete: "off" }),
      error,
      h("button", { type: "submit", class: "button button-primary" }, "Apply change"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const deltas = {};
      for (const [kind] of CREDIT_KINDS) {
        const value = Number.parseInt(form.elements[kind].value || "0", 10);
        if (Number.isNaN(value)) {
          return fail(`Enter a whole number for ${kind}.`);
        }
        if (value !== 0) deltas[kind] = value;
      }
      const reason = form.elements.reason.value.trim();
      if (Object.keys(deltas).length === 0) return fail("Enter a change for at least one kind.");
      if (reason.length < 3) return fail("Say why (at least 3 characters): it goes in the audit log.");
      const answer = await api().adjust(contact.id, deltas, reason);
      if (!answer.ok) {
        return fail(
          answer.error.code === "CREDITS_WOULD_BE_NEGATIVE"
            ? "That would take a balance below zero. Nothing was changed."
            : answer.error.message,
        );
      }
      onChanged();
      openStudent(contact.id, "Credits changed. The student sees them now; HubSpot gets them with the next sync run.");
      return undefined;
    });
    function fail(message) {
      error.textContent = message;
      error.hidden = false;
    }
    return form;
  }

  function historyTable(history) {
    if (!history.length) return empty("No recorded changes.");
    return table(
      [
        { label: "When", value: (e) => h("time", { datetime: e.at, title: whenExact(e.at) }, when(e.at)), nowrap: true },
        { label: "Who", value: (e) => e.by },
        { label: "Why", value: (e) => e.reason || h("span", { class: "muted" }, "–") },
        { label: "Change", value: (e) => change(e) },
      ],
      history,
      { caption: "Every recorded change, newest first" },
    );
  }

  function change(entry) {
    if (entry.operation === "INSERT") return "created";
    if (entry.operation === "DELETE") return "deleted";
    return (entry.changed || [])
      .map((field) => `${field}: ${show(entry.before && entry.before[field])} → ${show(entry.after && entry.after[field])}`)
      .join("; ");
  }

  function show(value) {
    return value === null || value === undefined || value === "" ? "∅" : String(value);
  }

  // ---------------------------------------------------------------- a booking

  async function openBooking(ref, notice) {
    loading("Booking");
    const answer = await api().booking(ref);
    if (!answer.ok) {
      open("Booking", h("p", { class: "notice notice-error" }, answer.error.message));
      return;
    }
    const { booking, contact, sync, history } = answer.data;
    open(
      `Booking ${booking.booking_id}`,
      notice ? h("p", { class: "notice notice-success", role: "status" }, notice) : null,
      h(
        "dl",
        { class: "facts" },
        fact("Status", booking.is_active),
        fact("Exam", `${booking.mock_type} · ${booking.exam_date || "–"}${booking.location ? ` · ${booking.location}` : ""}`),
        fact(
          "Student",
          contact
            ? h("button", { type: "button", class: "link", onclick: () => openStudent(contact.id) }, `${contact.student_id} · ${name(contact)}`)
            : `${booking.student_id} (no contact record)`,
        ),
        fact("Paid with", booking.token_used || "–"),
        fact("Refunded", booking.token_refunded ? "yes" : "no"),
        fact("Booking UUID", h("code", {}, booking.id)),
        fact("HubSpot", sync.hubspot_id ? `${sync.hubspot_id}${sync.in_step ? " · in step" : " · change not synced yet"}` : "not in HubSpot yet"),
        fact("Last synced", sync.hubspot_last_sync_at ? whenExact(sync.hubspot_last_sync_at) : "never"),
      ),
      booking.is_active === "Active" ? cancelForm(booking) : null,
      h("h3", {}, "History"),
      historyTable(history),
    );
  }

  function cancelForm(booking) {
    const error = h("p", { class: "field-error", role: "alert", hidden: true });
    const form = h(
      "form",
      { class: "cancel-form", novalidate: true },
      h("h3", {}, "Cancel on the student's behalf"),
      h(
        "label",
        { class: "choice" },
        h("input", { type: "checkbox", name: "refund", checked: true }),
        ` Give back the credit (${booking.token_used || "none spent"})`,
      ),
      h("label", { for: "cancel-reason" }, "Reason (kept in the audit log)"),
      h("input", { id: "cancel-reason", name: "reason", type: "text", maxlength: "500", autocomplete: "off" }),
      error,
      h("button", { type: "submit", class: "button button-danger" }, "Cancel this booking"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = form.elements.reason.value.trim();
      if (reason.length < 3) {
        error.textContent = "Say why (at least 3 characters): it goes in the audit log.";
        error.hidden = false;
        return;
      }
      const refund = form.elements.refund.checked;
      const answer = await api().cancel(booking.id, refund, reason);
      if (!answer.ok) {
        error.textContent = answer.error.message;
        error.hidden = false;
        return;
      }
      onChanged();
      openBooking(
        booking.id,
        answer.data.credits_restored ? "Cancelled; the credit is back on the student's account." : "Cancelled; no credit given back.",
      );
    });
    return form;
  }

  byId("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search(byId("q").value);
  });
  byId("detail-close").addEventListener("click", () => dialog.close());
  // A click on the backdrop (outside the dialog's box) closes it too.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });

  return { search, openStudent, openBooking, open };
}
