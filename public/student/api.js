// The student API (public/openapi.yaml), same origin. Every call resolves, never
// throws: {ok, status, data} or {ok: false, status, error: {code, message, field?,
// request_id?}, retryAfter}. status 0 means the request never got an answer
// (offline, connection dropped): the caller cannot know whether it took effect.

const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json" };

// A request that has not answered in this long is treated as lost. The booking
// function's own upper bound is the database statement timeout (8 s) plus a Redis
// round trip on each side; 20 s leaves room for a slow phone network.
const TIMEOUT_MS = 20000;

function retryAfterSeconds(response) {
  const value = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return Number.isFinite(value) && value > 0 ? value : null;
}

export async function call(method, path, { body, headers = {} } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { ...(body === undefined ? { Accept: "application/json" } : JSON_HEADERS), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    return { ok: false, status: 0, error: { code: "NETWORK_ERROR", message: "No answer from the server" } };
  } finally {
    clearTimeout(timer);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  const retryAfter = retryAfterSeconds(response);
  if (payload && payload.success === true) {
    return { ok: true, status: response.status, data: payload.data, retryAfter };
  }
  const error =
    payload && payload.error && typeof payload.error.code === "string"
      ? payload.error
      : { code: response.status >= 500 ? "INTERNAL_ERROR" : "BAD_RESPONSE", message: `HTTP ${response.status}` };
  return { ok: false, status: response.status, error, retryAfter };
}

const who = (student) => ({ student_id: student.student_id, email: student.email });
const query = (params) => new URLSearchParams(params).toString();

export const login = (student) => call("POST", "/api/user/login", { body: who(student) });

export const available = (mockType) =>
  call("GET", `/api/mock-exams/available?${query({ mock_type: mockType, include_capacity: "true" })}`);

export const capacity = (examId) => call("GET", `/api/mock-exams/${encodeURIComponent(examId)}/capacity`);

export const listBookings = (student, filter, page = 1, limit = 20) =>
  call("GET", `/api/bookings/list?${query({ ...who(student), filter, page, limit })}`);

/** Book one seat. `key` is the Idempotency-Key of this intended booking: the caller
 *  sends the same key on every retry, so the server books at most once. */
export const createBooking = (student, examId, fields, key) =>
  call("POST", "/api/bookings/create", {
    body: { ...who(student), mock_exam_id: examId, ...fields },
    headers: { "Idempotency-Key": key },
  });

export const cancelBooking = (student, bookingId) =>
  call("DELETE", `/api/bookings/${encodeURIComponent(bookingId)}`, { body: who(student) });
