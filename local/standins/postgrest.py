"""TEST / LOCAL STAND-IN for Supabase's PostgREST (`POST /rest/v1/rpc/<function>`).

NEVER USED IN PRODUCTION. Real PostgREST (behind Supabase's API gateway) cannot be
installed on this machine, so tests and the local stack point supabase-py at this
small server instead. It implements only what lib/db.py's SupabaseBackend uses, and
follows PostgREST's documented behaviour for that part, so supabase-py talks to it
unchanged. Sources (PostgREST docs, v12-v14, docs.postgrest.org/en/latest/):

* references/api/functions: `POST /rpc/<fn>` with a JSON object of named arguments;
  the function is found by name and argument names (arguments with defaults may be
  left out); none found -> 404 PGRST202, several -> 300 PGRST203. A function
  returning a scalar answers that JSON value; a set-returning one a JSON array.
* references/transactions: one transaction per request; READ WRITE for a VOLATILE
  function called with POST, READ ONLY for STABLE / IMMUTABLE; transaction-scoped
  settings `role` (user impersonation: `set_config('role', <role>, true)`, which is
  SET LOCAL ROLE), `search_path` (the selected schema, then `public`),
  `request.jwt.claims`, `request.method`, `request.path`, `request.headers`
  (names lower-cased). Any error rolls the transaction back.
* references/auth: HS256 JWT in `Authorization: Bearer`, verified with the project's
  JWT secret; its `role` claim picks the database role (the anonymous role when the
  claim is missing); an invalid token -> 401 PGRST301 with `WWW-Authenticate`.
  Supabase's gateway also requires the `apikey` header (itself such a JWT; it stands
  in for the bearer token when `Authorization` is absent). No credentials at all ->
  401 PGRST302 (this stand-in, like Supabase's gateway, has no key-less access).
* references/api/schemas: `Content-Profile` (POST) / `Accept-Profile` selects one of
  the exposed schemas, the first being the default; any other -> 406 PGRST106. The
  response carries `Content-Profile`.
* references/errors: error bodies are `{"code", "details", "hint", "message"}`;
  SQLSTATE -> HTTP status per the table in `status_for_sqlstate` below; PostgREST's
  own failures: PGRST001 (503, database client error), PGRST003 (504, no pool
  connection in time), PGRST102 (400, invalid body), PGRST107 (415, content type).

Left out on purpose (answered with an error rather than imitated badly): GET/HEAD rpc
(405 PGRST117), tables and views, `Prefer` handling, RAISE SQLSTATE 'PGRST'
(answered 500), the schema cache (functions are looked up in pg_proc on every call,
so there is nothing to reload), impersonated-role settings (`ALTER ROLE ... SET`).
Error *messages* of PostgREST's own PGRSTxxx errors are close to, not exactly,
PostgREST's wording; their codes and statuses are the contract.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import jwt
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

RPC_PREFIX = "/rest/v1/rpc/"
# Same rule as lib/db.py: lower-case SQL identifiers only. A name outside it cannot be
# one of our functions or arguments, so it never gets near SQL text.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Supabase refuses JWT secrets shorter than this; HS256 with less is weak anyway.
MIN_SECRET_LENGTH = 32
# A JSON body bigger than this is not a function call from our code.
MAX_BODY_BYTES = 1_000_000
# PostgREST accepts tokens up to this much past `exp` / before `nbf` (clock skew
# between the token issuer and the server).
JWT_LEEWAY_S = 30

# PostgREST's HTTP status for a PostgreSQL error, from the table in
# https://docs.postgrest.org/en/latest/references/errors.html#http-status-codes
# (also https://supabase.com/docs/guides/api/rest/postgrest-error-codes).
_EXACT_STATUS = {
    "23503": 409,  # foreign key violation
    "23505": 409,  # uniqueness violation
    "25006": 405,  # read only sql transaction
    "53400": 500,  # config limit exceeded
    "P0001": 400,  # default code for "raise"
    "42883": 404,  # undefined function
    "42P01": 404,  # undefined table
    "42P17": 500,  # infinite recursion
}
_CLASS_STATUS = {
    "08": 503,  # pg connection err
    "09": 500,  # triggered action exception
    "0L": 403,  # invalid grantor
    "0P": 403,  # invalid role specification
    "25": 500,  # invalid transaction state
    "28": 403,  # invalid auth specification
    "2D": 500,  # invalid transaction termination
    "38": 500,  # external routine exception
    "39": 500,  # external routine invocation
    "3B": 500,  # savepoint exception
    "40": 500,  # transaction rollback (serialization failure, deadlock)
    "53": 503,  # insufficient resources
    "54": 500,  # too complex
    "55": 500,  # obj not in prerequisite state (lock_timeout: 55P03)
    "57": 500,  # operator intervention (statement_timeout: 57014)
    "58": 500,  # system error
    "F0": 500,  # config file error
    "HV": 500,  # foreign data wrapper error
    "P0": 500,  # PL/pgSQL error
    "XX": 500,  # internal error
}


def status_for_sqlstate(sqlstate: str, *, authed: bool) -> int:
    """The HTTP status PostgREST answers for a PostgreSQL error with this SQLSTATE.

    `authed`: the request's JWT carried a role claim (PostgREST's `containsRole`);
    only insufficient_privilege (42501) depends on it: 403 if so, else 401.
    """
    if sqlstate == "42501":
        return 403 if authed else 401
    if sqlstate in _EXACT_STATUS:
        return _EXACT_STATUS[sqlstate]
    if sqlstate.startswith("PT"):  # RAISE SQLSTATE 'PT402' -> HTTP 402
        digits = sqlstate[2:]
        return int(digits) if digits.isdigit() and 100 <= int(digits) <= 599 else 500
    return _CLASS_STATUS.get(sqlstate[:2], 400)


def make_api_key(secret: str, role: str, *, lifetime_s: int = 10 * 365 * 24 * 3600) -> str:
    """A Supabase-style API key: an HS256 JWT with a `role` claim (`anon`,
    `service_role`), signed with the project's JWT secret. For tests and the local
    stack; the default lifetime matches Supabase's long-lived project keys."""
    _check_secret(secret)
    now = int(time.time())
    claims = {"iss": "supabase", "ref": "local", "role": role, "iat": now, "exp": now + lifetime_s}
    return jwt.encode(claims, secret, algorithm="HS256")


def _check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the JWT secret must be at least {MIN_SECRET_LENGTH} characters")


class _Reply(Exception):
    """An error answer in PostgREST's shape; raised anywhere while handling a call."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "details": details, "hint": hint, "message": message}
        self.headers = headers or {}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One request the stand-in answered (for tests: how many, which, what status)."""

    path: str
    function: str | None
    status: int


@dataclass(frozen=True)
class _Function:
    arg_types: dict[str, str]  # input argument name -> SQL type, in declaration order
    required: frozenset[str]  # arguments without a default
    read_only: bool  # STABLE or IMMUTABLE: PostgREST runs it in a READ ONLY transaction
    returns_set: bool


_LOOKUP = """
select p.pronargs, p.pronargdefaults, p.provolatile::text, p.proretset,
       coalesce(p.proargnames, '{}'), p.proargmodes::text[],
       array(select format_type(t.oid, null)
               from unnest(p.proargtypes::oid[]) with ordinality as t(oid, n) order by t.n)
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace s on s.oid = p.pronamespace
 where s.nspname = %s and p.proname = %s and p.prokind = 'f'
"""

_SETTINGS = """
select set_config('search_path', %(search_path)s, true),
       set_config('role', %(role)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.method', 'POST', true),
       set_config('request.path', %(path)s, true),
       set_config('request.headers', %(headers)s, true)
"""


class _Rpc:
    """The request logic, apart from HTTP plumbing."""

    def __init__(
        self, pool: ConnectionPool, jwt_secret: str, schemas: tuple[str, ...], anon_role: str
    ) -> None:
        self.pool = pool
        self.jwt_secret = jwt_secret
        self.schemas = schemas
        self.anon_role = anon_role

    def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[str | None, Response]:
        """Answer one POST. Returns the function name (when the path names one)."""
        name = path.partition("?")[0].removeprefix(RPC_PREFIX)
        try:
            # Authentication first, as the gateway and PostgREST's middleware do.
            claims, authed = self._claims(headers)
            schema = self._schema(headers.get("content-profile"))
            if not _IDENTIFIER.match(name):
                raise self._not_found(schema, name, [])
            args = self._arguments(headers, body)
            result = self._call(
                schema, name, args, claims=claims, authed=authed, path=path, headers=headers
            )
        except _Reply as reply:
            return name, _json(reply.status, json.dumps(reply.body), reply.headers)
        return name, _json(200, result, {"Content-Profile": schema})

    # ---------------------------------------------------------------- request parts

    def _schema(self, profile: str | None) -> str:
        if profile is None or profile == "":
            return self.schemas[0]
        if profile not in self.schemas:
            raise _Reply(
                406,
                "PGRST106",
                f"The schema must be one of the following: {', '.join(self.schemas)}",
            )
        return profile

    def _claims(self, headers: dict[str, str]) -> tuple[dict[str, Any], bool]:
        apikey = headers.get("apikey")
        authorization = headers.get("authorization")
        if apikey is None and authorization is None:
            raise _Reply(401, "PGRST302", "Anonymous access is disabled", headers=_challenge(None))
        if apikey is not None:
            self._verify(apikey, "Invalid API key")
        token = apikey
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise _Reply(
                    401,
                    "PGRST301",
                    "Expected Authorization: Bearer <JWT>",
                    headers=_challenge(None),
                )
            token = value.strip()
        assert token is not None
        claims = self._verify(token, None)
        role = claims.get("role", self.anon_role)
        if not isinstance(role, str) or not role:
            raise _Reply(401, "PGRST301", "The JWT role claim must be a non-empty string")
        return {**claims, "role": role}, "role" in claims

    def _verify(self, token: str, message: str | None) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256"],
                leeway=JWT_LEEWAY_S,
                # Supabase keys carry no audience; PostgREST checks `aud` only when
                # it is configured with one.
                options={"verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise _Reply(
                401, "PGRST301", message or "JWT expired", headers=_challenge("JWT expired")
            ) from None
        except jwt.InvalidTokenError as exc:
            text = message or f"JWT invalid: {exc}"
            raise _Reply(401, "PGRST301", text, headers=_challenge(text)) from None
        if not isinstance(claims, dict):
            raise _Reply(401, "PGRST301", "JWT claims must be an object")
        return claims

    @staticmethod
    def _arguments(headers: dict[str, str], body: bytes) -> dict[str, Any]:
        content_type = headers.get("content-type", "application/json")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise _Reply(
                415, "PGRST107", f"None of these media types are available: {content_type}"
            )
        if not body.strip():
            return {}
        try:
            args = json.loads(body)
        except ValueError as exc:
            raise _Reply(400, "PGRST102", "Empty or invalid json", details=str(exc)) from None
        if not isinstance(args, dict):
            raise _Reply(
                400, "PGRST102", "The request body must be a JSON object of named arguments"
            )
        return args

    # ---------------------------------------------------------------- the call

    def _call(
        self,
        schema: str,
        name: str,
        args: dict[str, Any],
        *,
        claims: dict[str, Any],
        authed: bool,
        path: str,
        headers: dict[str, str],
    ) -> str:
        try:
            with self.pool.connection() as conn:
                # Outside the request's transaction and as the connecting user, as
                # PostgREST resolves functions from a schema cache its authenticator
                # built: a role without EXECUTE still finds the function, then fails
                # with 42501 (401/403), not 404.
                function = self._find(conn, schema, name, args)
                # Set before the transaction starts: psycopg puts it in the BEGIN.
                conn.read_only = True if function.read_only else None
                with conn.transaction():
                    conn.execute(
                        _SETTINGS,
                        {
                            "search_path": ", ".join(_quote(s) for s in (schema, "public")),
                            "role": claims["role"],
                            "claims": json.dumps(claims),
                            "path": path,
                            "headers": json.dumps(headers),
                        },
                    )
                    row = conn.execute(
                        _main_query(schema, name, args, function), {"body": json.dumps(args)}
                    ).fetchone()
        except PoolTimeout:  # before psycopg.Error: PoolTimeout is an OperationalError
            raise _Reply(
                504, "PGRST003", "Timed out acquiring connection from connection pool."
            ) from None
        except psycopg.Error as exc:
            if exc.sqlstate is None:  # the connection failed or dropped: no server answer
                raise _Reply(
                    503,
                    "PGRST001",
                    "Database client error. Retrying the connection.",
                    details=str(exc),
                ) from None
            if exc.sqlstate == "PGRST":
                raise _Reply(
                    500, "PGRSTX00", "RAISE SQLSTATE 'PGRST' is not supported by this stand-in"
                ) from None
            diag = exc.diag
            raise _Reply(
                status_for_sqlstate(exc.sqlstate, authed=authed),
                exc.sqlstate,
                diag.message_primary or str(exc),
                details=diag.message_detail,
                hint=diag.message_hint,
            ) from None
        return "null" if row is None or row[0] is None else str(row[0])

    def _find(
        self, conn: psycopg.Connection[Any], schema: str, name: str, args: dict[str, Any]
    ) -> _Function:
        keys = set(args)
        if not all(_IDENTIFIER.match(key) for key in keys):
            raise self._not_found(schema, name, sorted(keys))
        matches: list[_Function] = []
        for nargs, ndefaults, volatility, returns_set, names, modes, types in conn.execute(
            _LOOKUP, (schema, name)
        ).fetchall():
            if modes is None:
                inputs = list(names[:nargs])
            else:  # IN, INOUT and VARIADIC arguments are the inputs, in order
                inputs = [n for n, m in zip(names, modes, strict=False) if m in ("i", "b", "v")]
            if len(inputs) != nargs or "" in inputs:
                continue  # unnamed arguments cannot be passed by name
            required = frozenset(inputs[: nargs - ndefaults])
            if required <= keys <= set(inputs):
                matches.append(
                    _Function(
                        arg_types=dict(zip(inputs, types, strict=True)),
                        required=required,
                        read_only=volatility in ("s", "i"),
                        returns_set=returns_set,
                    )
                )
        if not matches:
            raise self._not_found(schema, name, sorted(keys))
        if len(matches) > 1:
            raise _Reply(
                300,
                "PGRST203",
                f"Could not choose the best candidate function between several {schema}.{name}",
                hint="Try renaming the parameters or the function itself in the database "
                "so function overloading can be resolved",
            )
        return matches[0]

    @staticmethod
    def _not_found(schema: str, name: str, keys: list[str]) -> _Reply:
        listed = ", ".join(keys)
        return _Reply(
            404,
            "PGRST202",
            f"Could not find the function {schema}.{name}({listed}) in the schema cache",
            details=f"Searched for the function {schema}.{name} with parameters "
            f"{listed or '(none)'}, but no matches were found in the schema cache.",
        )


def _main_query(schema: str, name: str, args: dict[str, Any], function: _Function) -> sql.Composed:
    """select <schema>.<name>(<arg> => _args.<arg>, ...) from json_to_record(<body>) _args(...)

    As PostgREST does, the JSON body is turned into typed values by json_to_record with
    the function's own argument types, so a JSON true reaches a boolean argument and a
    JSON number a numeric one. Names are quoted identifiers; the type names come from
    the catalog (format_type), never from the request; the body is a bound value."""
    keys = [key for key in function.arg_types if key in args]  # declaration order
    call = sql.SQL("{}.{}({})").format(
        sql.Identifier(schema),
        sql.Identifier(name),
        sql.SQL(", ").join(
            sql.SQL("{} => _args.{}").format(sql.Identifier(key), sql.Identifier(key))
            for key in keys
        ),
    )
    sources: list[sql.Composable] = []
    if keys:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(key), sql.SQL(function.arg_types[key]))
            for key in keys
        )
        sources.append(
            sql.SQL("json_to_record({}::json) as _args({})").format(
                sql.Placeholder("body"), columns
            )
        )
    if function.returns_set:
        sources.append(sql.SQL("lateral {} as _r").format(call))
        return sql.SQL("select coalesce(jsonb_agg(_r), '[]'::jsonb)::text from {}").format(
            sql.SQL(" cross join ").join(sources)
        )
    if sources:
        return sql.SQL("select to_jsonb({})::text from {}").format(call, sources[0])
    return sql.SQL("select to_jsonb({})::text").format(call)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _challenge(description: str | None) -> dict[str, str]:
    # PostgREST answers a failed JWT check with an RFC 6750 challenge.
    if description is None:
        return {"WWW-Authenticate": "Bearer"}
    escaped = description.replace("\\", "\\\\").replace('"', '\\"')
    return {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{escaped}"'}


def _json(status: int, text: str, headers: dict[str, str]) -> Response:
    return Response(
        status,
        text.encode("utf-8"),
        {"Content-Type": "application/json; charset=utf-8", **headers},
    )


def _error(status: int, code: str, message: str) -> Response:
    body = {"code": code, "details": None, "hint": None, "message": message}
    return _json(status, json.dumps(body), {})


# -------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler must never keep the test process alive

    def __init__(self, address: tuple[str, int], app: _Rpc) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut kept-alive client connections: once stopped, nothing may answer."""
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as PostgREST and the gateway offer
    server_version = "postgrest-standin"

    def _server(self) -> _Server:
        assert isinstance(self.server, _Server)
        return self.server

    def do_POST(self) -> None:
        server = self._server()
        path = self.path
        if not path.startswith(RPC_PREFIX):
            # Supabase's gateway answers unknown routes itself, in Kong's shape.
            self._send(
                path,
                None,
                _json(404, json.dumps({"message": "no Route matched with those values"}), {}),
            )
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the body cannot be skipped reliably
            self._send(
                path, None, _error(400, "PGRST102", "Content-Length missing, invalid or too large")
            )
            return
        body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            function, response = server.app.post(path, headers, body)
        except Exception:  # a bug here must answer 500, not drop the connection
            log.exception("postgrest stand-in failed on %s", path)
            function, response = None, _error(500, "PGRSTX00", "stand-in internal error")
        self._send(path, function, response)

    def _method_not_allowed(self) -> None:
        if self.command in ("GET", "HEAD"):
            response = _error(
                405, "PGRST117", f"Unsupported HTTP method: {self.command} (stand-in)"
            )
        else:
            response = _error(405, "PGRST101", "Only GET and POST are allowed for functions")
        self._send(self.path, None, response)

    do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = _method_not_allowed  # noqa: N815

    def _send(self, path: str, function: str | None, response: Response) -> None:
        server = self._server()
        with server.lock:
            server.calls.append(Call(path, function, response.status))
        self.send_response(response.status, _reason(response.status))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("postgrest stand-in: " + format, *args)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class StandIn:
    """A running stand-in. `url` is what SUPABASE_URL should be set to."""

    def __init__(self, server: _Server, pool: ConnectionPool, thread: threading.Thread) -> None:
        self._server = server
        self._pool = pool
        self._thread = thread
        self._stopped = False
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    @property
    def calls(self) -> list[Call]:
        """Every request answered so far, oldest first (a copy)."""
        with self._server.lock:
            return list(self._server.calls)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()  # stop accepting; returns once serve_forever has left
        self._server.drop_connections()
        self._server.server_close()
        self._thread.join(timeout=5)  # serve_forever has already returned; just tidy up
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    database_url: str,
    jwt_secret: str,
    host: str = "127.0.0.1",
    port: int = 0,
    schemas: tuple[str, ...] = ("hubspot_sync",),
    *,
    anon_role: str = "anon",
    pool_size: int = 4,
    pool_timeout_s: float = 5.0,
) -> StandIn:
    """Start the stand-in in a background thread; port 0 picks a free port.

    `database_url` is the connection PostgREST's authenticator role would use: its
    user must be allowed to SET ROLE to the roles the keys name (a superuser is).
    """
    _check_secret(jwt_secret)
    if not schemas:
        raise ValueError("expose at least one schema")
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=pool_size,
        # How long a request waits for a free connection before answering 504
        # PGRST003, as PostgREST's db-pool-acquisition-timeout does.
        timeout=pool_timeout_s,
        kwargs={
            "autocommit": True,  # transactions are explicit, one per request
            "prepare_threshold": None,  # may sit behind Supavisor in transaction mode
            # A database that does not accept a connection within this is down;
            # requests then fail with 504/503 instead of hanging.
            "connect_timeout": 5,
        },
        open=False,
        name="postgrest-standin",
    )
    # Not waiting: a stand-in in front of a database that is down must still start
    # and answer requests with PostgREST's errors.
    pool.open(wait=False)
    server = _Server((host, port), _Rpc(pool, jwt_secret, tuple(schemas), anon_role))
    # A short poll interval makes stop() return promptly.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="postgrest-standin",
        daemon=True,
    )
    thread.start()
    return StandIn(server, pool, thread)
