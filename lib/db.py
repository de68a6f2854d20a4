"""Calls into the database: `rpc(name, params) -> dict`, and nothing else.

Every business rule lives in the SQL functions of schema `hubspot_sync`; this module
only gets a call there and back. Two backends give the same behaviour:

* psycopg with a connection pool (DATABASE_URL): direct or through Supabase's
  Supavisor pooler in transaction mode, so no prepared statements
  (prepare_threshold=None) and no session state (each call is one autocommit
  statement; the functions set what they need transaction-locally).
* supabase-py (SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY): POST /rest/v1/rpc/<name>.

Both import their driver lazily (cold start is import time) and raise the same
lib.errors types. Transient failures are retried here, but only for the functions in
REPEAT_SAFE: a dropped connection or an HTTP timeout may come after the commit, so a
retry must not be able to apply a change twice. Every write we call is made
repeat-safe in SQL (a key, or a write of absolute values); a function not listed is
called once and its failure answered 503 (a test holds every callable function to
the list).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from lib.config import Settings, settings
from lib.db_watchdog import Expired, Watchdog
from lib.errors import AppError, DatabaseBusy, DatabaseFailure, DatabaseUnavailable

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

SCHEMA = "hubspot_sync"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# SQLSTATEs worth an immediate retry: another transaction won a race and ours was
# rolled back whole. Lock timeouts (55P03) are not retried: the call already waited
# the function's lock_timeout, and waiting again would only lengthen the queue.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})
BUSY_SQLSTATES = RETRY_SQLSTATES | {"55P03", "57014"}  # + statement timeout
# Three tries with 20-80 ms jittered pauses: serialization failures clear in
# milliseconds, and a booking request must stay well inside its latency budget.
MAX_ATTEMPTS = 3
RETRY_PAUSE_S = 0.02

# The functions a retry cannot apply twice, and why. Reads: every function that only
# reads. Writes: each is repeat-safe by construction in SQL.
_READS = frozenset(
    {
        "admin_booking", "admin_search", "admin_sync_history", "admin_sync_lease",
        "admin_sync_run", "admin_sync_runs", "admin_sync_status", "available_exams",
        "booking_for_key", "contact_credits", "exam_seats", "find_booking",
        "find_students", "health", "list_bookings", "student_detail",
        "sync_booking_creates_pending", "sync_bookings_pending", "sync_contacts_pending",
        "sync_credit_candidates", "sync_credit_watch", "sync_health",
        "sync_pending_counts", "sync_schedule", "sync_seats_pending", "validate_credits",
    }
)  # fmt: skip
_REPEAT_SAFE_WRITES = frozenset(
    {
        "book",  # replays by Idempotency-Key, or by student + exam for 5 minutes
        "cancel_booking",  # a cancelled booking is answered already_cancelled
        "adjust_credits",  # replays by idempotency key (credit_adjustments)
        "store_hubspot_contact",  # insert, or the row already stored
        "sync_begin",  # per run id: a retry finds its own lease and run row
        "sync_progress",  # absolute counts; errors recorded once per run (deduplicated)
        "sync_checkpoint",  # sets a value
        "sync_finish",  # sets the run's end state
        "sync_daily_budget",  # sets a reading
        "sync_exams_pulled",  # upserts HubSpot's values
        "sync_contacts_linked",  # sets HubSpot ids
        "sync_merge_credits",  # per push id: a retry gets its own pending pushes back
        "sync_confirm_credits",  # per push id
        "sync_bookings_written",  # sets HubSpot ids and sync times
        "sync_booking_creates_sent",  # insert on conflict do nothing
        "sync_booking_creates_refused",  # deletes
        "sync_seats_pushed",  # sets what HubSpot shows
        "recount_seats",  # re-deals an exam's seats from its bookings: the same result again
    }
)
REPEAT_SAFE = _READS | _REPEAT_SAFE_WRITES


class Backend(Protocol):
    def call(
        self, name: str, params: Mapping[str, Any], repeat_safe: bool = True
    ) -> dict[str, Any]: ...
    def close(self) -> None: ...


class _Transient(Exception):
    """Internal: a failure that a retry may cure. Wraps the final AppError to raise."""

    def __init__(self, final: Exception) -> None:
        super().__init__(str(final))
        self.final = final


# See PsycopgBackend: how long the pool keeps retrying a lost connection by itself.
RECONNECT_TIMEOUT_S = 2.0
# How far past DB_STATEMENT_TIMEOUT_MS a call may run before the client gives up on it:
# enough for the server's own timeout to fire and its error to come back first.
CALL_DEADLINE_MARGIN_S = 2.0


def _check_name(name: str, params: Mapping[str, Any]) -> None:
    # Names come from our own code, never from a request; this guards against a
    # programming error ever turning into SQL text.
    for identifier in (name, *params):
        if not _IDENTIFIER.match(identifier):
            raise ValueError(f"not an SQL identifier: {identifier!r}")


def _with_retries(attempt: Callable[[], dict[str, Any]], repeat_safe: bool) -> dict[str, Any]:
    attempts = MAX_ATTEMPTS if repeat_safe else 1
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except _Transient as transient:
            if number == attempts:
                raise transient.final from transient
            time.sleep(RETRY_PAUSE_S * number * (1 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")


class PsycopgBackend:
    """DATABASE_URL through a psycopg connection pool."""

    def __init__(self, config: Settings, min_size: int = 1) -> None:
        """`min_size` connections are kept open; a function instance needs one, a
        long-lived server or a benchmark wants them all ready before the rush."""
        from psycopg_pool import ConnectionPool

        assert config.database_url
        self._pool: ConnectionPool = ConnectionPool(
            config.database_url,
            min_size=min(min_size, config.db_pool_max_size),
            max_size=config.db_pool_max_size,
            timeout=config.db_pool_timeout_s,
            kwargs={
                "autocommit": True,
                "prepare_threshold": None,
                # A connect that takes longer than this means the database is not
                # there; fail fast so the request can answer 503.
                "connect_timeout": 5,
            },
            # Opening lazily keeps a cold start from paying for a connection that a
            # request may not need (health checks of Redis only, validation errors).
            open=False,
            name="booking",
            # psycopg_pool retries a lost connection with a doubling backoff (1, 2, 4,
            # 8, 16 s...) for reconnect_timeout (default 300 s): after a 15 s outage an
            # instance would go on answering 503 for up to 16 s more with the database
            # back (found by the torture). Giving up after 2 s hands reconnection to
            # the pool's on-demand growth: the next waiting request tries at once.
            reconnect_timeout=RECONNECT_TIMEOUT_S,
        )
        self._opened = False
        self._lock = threading.Lock()
        self._statements: dict[tuple[str, tuple[str, ...]], bytes] = {}
        # The statement timeout is set per call, transaction-locally. Not as a startup
        # parameter (`options=-c statement_timeout=...`): a transaction-mode pooler
        # either refuses it (PgBouncer: "unsupported startup parameter: options", every
        # connection fails) or cannot honour it, since the server connection that runs
        # the call was opened for some other client (found by running the API tests
        # through PgBouncer, tests/api/conftest.py).
        timeout_ms = int(config.db_statement_timeout_ms)
        self._timeout = f"set local statement_timeout = {timeout_ms}".encode()
        # The whole call, queueing in a pooler included (lib/db_watchdog.py): the
        # server's own timeout plus a margin for it to fire and answer first.
        self._deadline_s = config.db_statement_timeout_ms / 1000 + CALL_DEADLINE_MARGIN_S
        self._watchdog = Watchdog("db")

    def _statement(self, name: str, keys: tuple[str, ...]) -> bytes:
        from psycopg import sql

        cached = self._statements.get((name, keys))
        if cached is None:
            arguments = sql.SQL(", ").join(
                sql.SQL("{} => {}").format(sql.Identifier(key), sql.Placeholder(key))
                for key in keys
            )
            # Rendered once: psycopg renders a Composed again on every execute (about
            # 15 us a call, measured in bench/load.py's profile); the text never changes.
            # The names are checked identifiers (_check_name), so no connection is
            # needed to quote them.
            cached = (
                sql.SQL("select {}.{}({})")
                .format(sql.Identifier(SCHEMA), sql.Identifier(name), arguments)
                .as_bytes(None)
            )
            self._statements[(name, keys)] = cached
        return cached

    def _ensure_open(self, wait: bool = False) -> None:
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._pool.open(wait=wait)
                    self._opened = True

    def warm_up(self) -> None:
        """Open the pool and wait until min_size connections are ready."""
        self._ensure_open(wait=True)

    def call(
        self, name: str, params: Mapping[str, Any], repeat_safe: bool = True
    ) -> dict[str, Any]:
        import psycopg
        from psycopg.types.json import Jsonb
        from psycopg_pool import PoolTimeout

        self._ensure_open()
        statement = self._statement(name, tuple(params))
        # A dict is a JSON object for a jsonb parameter, as PostgREST passes it (the
        # Supabase backend sends the same dict in its JSON body). Lists stay lists:
        # they are PostgreSQL arrays (text[] parameters).
        values = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in params.items()}

        def attempt() -> dict[str, Any]:
            expired: Expired | None = None
            try:
                with (
                    self._pool.connection() as conn,
                    self._watchdog.watch(conn, self._deadline_s) as expired,
                ):
                    # One round trip and one transaction: the SET LOCAL and the call
                    # go as one simple-protocol query string, which PostgreSQL runs as
                    # one implicit transaction (committed at its end, rolled back on
                    # any error; SET LOCAL holds inside it). The parameters are bound
                    # client-side by psycopg's ClientCursor, which quotes each value
                    # as a literal for this connection. This replaced a pipelined
                    # BEGIN / SET LOCAL / call / COMMIT, which answered the same in
                    # one round trip but cost ~290 us of client CPU per call against
                    # ~40 us (issue 16's profile: a quarter of the API's CPU per
                    # booking). Nothing is prepared either way, as a transaction-mode
                    # pooler requires.
                    cursor = psycopg.ClientCursor(conn)
                    cursor.execute(self._timeout + b"; " + statement, values)
                    cursor.nextset()
                    row = cursor.fetchone()
            except PoolTimeout as exc:
                # Not retried: the pool already waited its full timeout for a connection.
                raise DatabaseUnavailable("no database connection available") from exc
            except psycopg.errors.OperationalError as exc:
                if expired is not None and expired.fired:
                    # Not retried: another attempt would wait as long again, and the
                    # function's own time limit is not much longer.
                    raise DatabaseUnavailable("the database did not answer in time") from exc
                sqlstate = exc.sqlstate
                if sqlstate in BUSY_SQLSTATES:
                    raise _busy(sqlstate) from exc
                # Connection refused, dropped or reset: the pool discards the
                # broken connection; a retry gets a fresh one.
                raise _Transient(DatabaseUnavailable()) from exc
            except psycopg.Error as exc:
                if expired is not None and expired.fired:
                    raise DatabaseUnavailable("the database did not answer in time") from exc
                if exc.sqlstate in BUSY_SQLSTATES:
                    raise _busy(exc.sqlstate) from exc
                raise DatabaseFailure(exc.sqlstate, str(exc)) from exc
            if row is None or not isinstance(row[0], dict):
                raise DatabaseFailure(None, f"{name} returned {row!r}")
            return row[0]

        return _with_retries(attempt, repeat_safe)

    def close(self) -> None:
        self._pool.close()


def _busy(sqlstate: str | None) -> Exception:
    if sqlstate in RETRY_SQLSTATES:
        return _Transient(DatabaseBusy())
    return DatabaseBusy()


class SupabaseBackend:
    """SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY through supabase-py (PostgREST RPC)."""

    # PostgREST reports its own failures with PGRST codes: pool exhausted or the
    # database unreachable means "try again later", not a bug.
    UNAVAILABLE_CODES = frozenset({"PGRST000", "PGRST001", "PGRST002", "PGRST003"})

    def __init__(self, config: Settings) -> None:
        import httpx

        from supabase import ClientOptions, create_client

        assert config.supabase_url and config.supabase_service_role_key
        # supabase-py's default HTTP timeout is 120 s; a request must fail long before
        # a student gives up, and a call never legitimately takes longer than the
        # statement timeout. The timeout goes on our own HTTP client: postgrest-py
        # deprecates its `timeout` argument (supabase-py's postgrest_client_timeout)
        # with a DeprecationWarning on the first call.
        self._http = httpx.Client(timeout=config.db_statement_timeout_ms / 1000 + 2)
        options = ClientOptions(
            schema=SCHEMA,
            httpx_client=self._http,
            auto_refresh_token=False,
            persist_session=False,
        )
        self._client = create_client(config.supabase_url, config.supabase_service_role_key, options)

    def call(
        self, name: str, params: Mapping[str, Any], repeat_safe: bool = True
    ) -> dict[str, Any]:
        import httpx
        from postgrest.exceptions import APIError

        def attempt() -> dict[str, Any]:
            try:
                response = self._client.rpc(name, dict(params)).execute()
            except APIError as exc:
                code = exc.code or ""
                if code in BUSY_SQLSTATES:
                    raise _busy(code) from exc
                if code in self.UNAVAILABLE_CODES:
                    raise _Transient(DatabaseUnavailable()) from exc
                raise DatabaseFailure(code, exc.message or str(exc)) from exc
            except httpx.HTTPError as exc:
                raise _Transient(DatabaseUnavailable()) from exc
            data = response.data
            if not isinstance(data, dict):
                raise DatabaseFailure(None, f"{name} returned {type(data).__name__}")
            return data

        return _with_retries(attempt, repeat_safe)

    def close(self) -> None:
        self._http.close()


_backend: Backend | None = None
_backend_lock = threading.Lock()


def backend() -> Backend:
    """The process-wide backend, created on first use (thread-safe)."""
    global _backend  # noqa: PLW0603 - one pool per process is the point
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                config = settings()
                _backend = (
                    PsycopgBackend(config)
                    if config.db_backend == "psycopg"
                    else SupabaseBackend(config)
                )
    return _backend


def use_backend(replacement: Backend | None) -> Backend | None:
    """Swap the process-wide backend (tests, the local server). Returns the old one."""
    global _backend
    with _backend_lock:
        previous, _backend = _backend, replacement
    return previous


# Parameters the client sends under another name: a booking's code or id is the
# path's {id}, the admin's search is `q`. The SQL functions name these fields the
# client's way in their own rejections; so must the check below.
_CLIENT_FIELDS = {
    "p_ref": "id",
    "p_booking_ref": "id",
    "p_contact_id": "id",
    "p_query": "q",
    "p_exam_id": "mock_exam_id",
}


def _reject_unstorable(params: Mapping[str, Any]) -> None:
    # PostgreSQL text cannot hold NUL, nor a lone UTF-16 surrogate (JSON's "\ud800"
    # escape decodes to one, and UTF-8 has no encoding for it); the driver would fail
    # with an opaque error, answered 500. Answer it like any other bad input, naming
    # the field as the client knows it (the parameter minus "p_", or _CLIENT_FIELDS).
    for key, value in params.items():
        if not isinstance(value, str):
            continue
        field = _CLIENT_FIELDS.get(key, key.removeprefix("p_"))
        if "\x00" in value:
            raise AppError("INVALID_INPUT", f"{field} contains a NUL character", field)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise AppError("INVALID_INPUT", f"{field} is not valid text", field) from None


def rpc(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Call hubspot_sync.<name>(key => value, ...) and return its jsonb answer.

    Business rejections come back as {"ok": false, "code": ...}: look at "ok".
    Raises AppError(INVALID_INPUT) for a NUL or a lone surrogate in a string, DatabaseBusy /
    DatabaseUnavailable (retryable, 503) or DatabaseFailure (a bug, 500) otherwise.
    Retried after a transient failure only if `name` is in REPEAT_SAFE.
    """
    _check_name(name, params)
    _reject_unstorable(params)
    return backend().call(name, params, name in REPEAT_SAFE)
