// The admin API (public/openapi.yaml, /api/admin/...), same origin, with the admin's
// access token. Every call resolves, never throws:
//   {ok: true, status, data}  or  {ok: false, status, error: {code, message, field?}}
// status 0: no answer at all (offline, server down, timed out).

const TOKEN_KEY = "admin.accessToken";

// Look-ups answer in well under a second; 20 s is a request that is not coming back.
const TIMEOUT_MS = 20000;
// "Run now" holds its request for the whole run: the sync's time budget is 240 s and
// the function may live 300 s, so the browser waits a little longer than that.
export const RUN_TIMEOUT_MS = 310000;

export function savedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage refused (private mode): the token lives in memory for this page only.
  }
}

export async function call(method, path, { body, token, timeoutMs = TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
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
  if (response.ok && payload && payload.success) {
    return { ok: true, status: response.status, data: payload.data };
  }
  const error = (payload && payload.error) || {
    code: "HTTP_" + response.status,
    message: `The server answered ${response.status}`,
  };
  return { ok: false, status: response.status, error };
}

// One client per signed-in admin: every call carries the token, and a 401 anywhere
// signs the admin out (the token expired or was revoked).
export function client(token, onUnauthorized) {
  async function send(method, path, options = {}) {
    const answer = await call(method, path, { ...options, token });
    if (!answer.ok && answer.status === 401) onUnauthorized(answer.error);
    return answer;
  }
  return {
    me: () => send("GET", "/api/admin/me"),
    status: () => send("GET", "/api/admin/sync/status"),
    runs: (limit = 12) => send("GET", `/api/admin/sync/runs?limit=${limit}`),
    run: (id) => send("GET", `/api/admin/sync/runs/${encodeURIComponent(id)}`),
    history: (days = 7) => send("GET", `/api/admin/sync/history?days=${days}`),
    startRun: (mode) => send("POST", "/api/admin/sync/runs", { body: { mode }, timeoutMs: RUN_TIMEOUT_MS }),
    search: (q) => send("GET", `/api/admin/search?q=${encodeURIComponent(q)}`),
    student: (id) => send("GET", `/api/admin/students/${encodeURIComponent(id)}`),
    adjust: (id, deltas, reason) =>
      send("POST", `/api/admin/students/${encodeURIComponent(id)}/credits`, { body: { deltas, reason } }),
    booking: (ref) => send("GET", `/api/admin/bookings/${encodeURIComponent(ref)}`),
    cancel: (ref, refund, reason) =>
      send("DELETE", `/api/admin/bookings/${encodeURIComponent(ref)}`, { body: { refund, reason } }),
  };
}
