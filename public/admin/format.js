// Numbers, durations and times as an operations person reads them: grouped digits,
// the two largest units of a duration, times in the school's time zone.

export const ZONE = "America/Toronto";

const integer = new Intl.NumberFormat("en-CA", { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat("en-CA", { maximumFractionDigits: 1 });
const clock = new Intl.DateTimeFormat("en-CA", {
  timeZone: ZONE,
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
const clockSeconds = new Intl.DateTimeFormat("en-CA", {
  timeZone: ZONE,
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});
const dayMonth = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, month: "short", day: "numeric" });
const weekday = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, weekday: "short", day: "numeric" });
const full = new Intl.DateTimeFormat("en-CA", {
  timeZone: ZONE,
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
  timeZoneName: "short",
});

export function count(value) {
  return value === null || value === undefined ? "–" : integer.format(value);
}

// "1 record", "645 records".
export function plural(value, noun) {
  return `${count(value)} ${noun}${value === 1 ? "" : "s"}`;
}

export function decimal(value) {
  return value === null || value === undefined ? "–" : oneDecimal.format(value);
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined) return "–";
  return `${oneDecimal.format(fraction * 100)}%`;
}

// 42 s · 3 min 20 s · 2 h 05 min · 3 d 4 h
export function seconds(total) {
  if (total === null || total === undefined) return "–";
  const s = Math.max(0, Math.round(total));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function millis(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 10000 ? `${oneDecimal.format(ms / 1000)} s` : seconds(ms / 1000);
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const today = dayMonth.format(new Date());
  const day = dayMonth.format(date);
  return day === today ? clock.format(date) : `${day}, ${clock.format(date)}`;
}

export function whenExact(iso) {
  return iso ? full.format(new Date(iso)) : "–";
}

export function clockTime(date) {
  return clockSeconds.format(date);
}

export function chartDay(date) {
  return weekday.format(date);
}

// "12 min ago", from the server's clock (`now`), so a wrong laptop clock cannot lie.
export function ago(iso, nowIso) {
  if (!iso) return "never";
  const elapsed = (new Date(nowIso || Date.now()).getTime() - new Date(iso).getTime()) / 1000;
  return elapsed < 5 ? "just now" : `${seconds(elapsed)} ago`;
}

export const STATUS_TEXT = {
  running: "Running",
  succeeded: "Succeeded",
  partial: "Partly failed",
  deadline: "Stopped at time limit",
  daily_limit: "Daily limit reached",
  rate_limited: "Rate limited",
  failed: "Failed",
  lease_lost: "Lost its lease",
  refused: "Refused (another run)",
  abandoned: "Abandoned",
};

// How a run's outcome reads at a glance: ok (green), warn (amber), bad (red), info.
export function tone(status) {
  if (status === "succeeded") return "ok";
  if (status === "partial" || status === "deadline") return "warn";
  if (status === "running") return "info";
  if (status === "refused") return "muted";
  return "bad";
}

export const PHASES = ["exams", "contacts", "credits", "bookings", "seats"];
export const PHASE_TEXT = {
  exams: "Exams",
  contacts: "Contacts",
  credits: "Credits",
  bookings: "Bookings",
  seats: "Seat counts",
};

export const CREDIT_KINDS = [
  ["sj_credits", "Situational Judgment"],
  ["cs_credits", "Clinical Skills"],
  ["sjmini_credits", "Mini-mock"],
  ["mock_discussion_token", "Mock Discussion"],
  ["shared_mock_credits", "Shared"],
];
