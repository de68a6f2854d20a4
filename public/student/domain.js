// The words of the domain as students read them (product.md §4), and how dates and
// times are shown: always in the school's time zone, America/Toronto.

export const TIME_ZONE = "America/Toronto";
const LOCALE = "en-CA";

/** The five credit kinds, in the order the API lists them, and what each pays for. */
export const CREDIT_KINDS = [
  { key: "sj_credits", name: "Situational Judgment", paysFor: ["Situational Judgment"] },
  { key: "cs_credits", name: "Clinical Skills", paysFor: ["Clinical Skills"] },
  { key: "sjmini_credits", name: "Mini-mock", paysFor: ["Mini-mock"] },
  { key: "mock_discussion_token", name: "Mock Discussion", paysFor: ["Mock Discussion"] },
  { key: "shared_mock_credits", name: "Shared", paysFor: ["Situational Judgment", "Clinical Skills"] },
];

/** The exam types, the credit each spends first, and what the booking form asks. */
export const EXAM_TYPES = [
  { name: "Situational Judgment", specific: "sj_credits", shared: true, asks: "location" },
  { name: "Clinical Skills", specific: "cs_credits", shared: true, asks: "hand" },
  { name: "Mini-mock", specific: "sjmini_credits", shared: false, asks: "location" },
  { name: "Mock Discussion", specific: "mock_discussion_token", shared: false, asks: null },
];

export const examType = (name) => EXAM_TYPES.find((t) => t.name === name) || EXAM_TYPES[0];
export const creditName = (key) => (CREDIT_KINDS.find((k) => k.key === key) || { name: key }).name;

/** Attending locations the booking accepts (product.md §4 rule 7). */
export const LOCATIONS = [
  { value: "mississauga", label: "Mississauga" },
  { value: "calgary", label: "Calgary" },
  { value: "vancouver", label: "Vancouver" },
  { value: "montreal", label: "Montreal" },
  { value: "richmond_hill", label: "Richmond Hill" },
  { value: "online", label: "Online" },
];

/** The attending location a session's own location suggests ("Mississauga - B9" is
 *  Mississauga), or "" when it suggests none. */
export function suggestedLocation(sessionLocation) {
  const text = String(sessionLocation || "").toLowerCase();
  const found = LOCATIONS.find((l) => text.startsWith(l.label.toLowerCase()));
  return found ? found.value : "";
}

export function locationLabel(value) {
  if (!value) return "";
  const slug = String(value).trim().toLowerCase().replace(/[\s_-]+/g, "_");
  const found = LOCATIONS.find((l) => l.value === slug);
  return found ? found.label : String(value);
}

/** What one booking of `typeName` would spend now: the type's own credit first, then
 *  a shared one where the type accepts it (the database decides; this only explains). */
export function creditsFor(typeName, credits) {
  const type = examType(typeName);
  const specific = Number(credits?.[type.specific] || 0);
  const shared = type.shared ? Number(credits?.shared_mock_credits || 0) : 0;
  let spends = null;
  if (specific > 0) spends = type.specific;
  else if (shared > 0) spends = "shared_mock_credits";
  return { specific, shared, total: specific + shared, spends };
}

const TOKEN_KINDS = {
  "Situational Judgment Token": "sj_credits",
  "Clinical Skills Token": "cs_credits",
  "Mini-mock Token": "sjmini_credits",
  "Mock Discussion Token": "mock_discussion_token",
  "Shared Token": "shared_mock_credits",
};

/** The credit kind a booking's token_used names; null for Admin Override. */
export const tokenKind = (tokenUsed) => TOKEN_KINDS[tokenUsed] || null;

export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

// ---------------------------------------------------------------- dates and times

const dateFormat = new Intl.DateTimeFormat(LOCALE, {
  timeZone: TIME_ZONE,
  weekday: "short",
  month: "short",
  day: "numeric",
  year: "numeric",
});
const longDateFormat = new Intl.DateTimeFormat(LOCALE, {
  timeZone: TIME_ZONE,
  weekday: "long",
  month: "long",
  day: "numeric",
  year: "numeric",
});
const timeFormat = new Intl.DateTimeFormat(LOCALE, { timeZone: TIME_ZONE, hour: "numeric", minute: "2-digit" });
const zoneFormat = new Intl.DateTimeFormat(LOCALE, { timeZone: TIME_ZONE, timeZoneName: "short" });

/** An exam_date (YYYY-MM-DD, already a Toronto date) as a Date at Toronto midday. */
function fromExamDate(examDate) {
  return new Date(`${examDate}T17:00:00Z`);
}

function parse(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "Sat, Dec 5, 2026" (long: "Saturday, December 5, 2026"). */
export function formatDate(item, { long = false } = {}) {
  const when = parse(item.start_time) || (item.exam_date ? fromExamDate(item.exam_date) : null);
  if (!when) return "Date to be announced";
  return (long ? longDateFormat : dateFormat).format(when);
}

/** "9:00 a.m. – 12:00 p.m. EST", or "" when the session has no times. */
export function formatTimes(item) {
  const start = parse(item.start_time);
  if (!start) return "";
  const end = parse(item.end_time);
  const zone = zoneFormat.formatToParts(start).find((p) => p.type === "timeZoneName")?.value || "ET";
  const range = end ? `${timeFormat.format(start)} – ${timeFormat.format(end)}` : timeFormat.format(start);
  return `${range} ${zone}`;
}

/** "1:32:05 p.m." for "last updated" lines. */
export function formatClock(date) {
  return new Intl.DateTimeFormat(LOCALE, {
    timeZone: TIME_ZONE,
    hour: "numeric",
    minute: "2-digit",
    second: "2-digit",
  }).format(date);
}
