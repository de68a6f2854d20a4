"""TEST / LOCAL STAND-IN for Upstash Redis's REST API, in front of a real Redis.

NEVER USED IN PRODUCTION. Upstash's own local answer (serverless-redis-http) is a
Docker/Elixir program that cannot run on this machine, so tests and the local stack
point the `upstash-redis` client at this small server instead; it forwards each
command to the Redis at `redis_url` and answers the way Upstash documents
(upstash.com/docs/redis/features/restapi), so the client talks to it unchanged:

* `POST /` with a JSON array `["SET", "k", "v", "EX", 30]` runs one command;
  `POST /pipeline` a 2-D array, in order but not atomically; `POST /multi-exec` a
  2-D array atomically (MULTI/EXEC). Arguments may be strings or numbers.
* `Authorization: Bearer <token>` (or `?_token=<token>`); missing or wrong -> 401.
* Replies: `{"result": <value>}` with Redis's reply as JSON (integer, string, null,
  nested arrays); a failed command -> HTTP 400 `{"error": "<Redis's message>"}`.
  `/pipeline` and `/multi-exec` answer an array of such objects (HTTP 200, a failed
  command is one `{"error"}` item); a transaction discarded as a whole (EXECABORT:
  an unknown command or wrong arity) -> 400 with one `{"error"}`.
* `Upstash-Encoding: base64`: every string in the reply is base64-encoded, except
  the reply "OK". Without it, strings are UTF-8 with invalid bytes replaced by
  U+FFFD, as Upstash does.

Left out on purpose (answered with an error rather than imitated badly): the
path-style form (`GET /set/foo/bar`), `Upstash-Response-Format: resp2`, read-only
tokens, MONITOR / SUBSCRIBE, the `Upstash-Sync-Token` header. Commands that block or
change a pooled connection's state (BLPOP, SELECT, MULTI, WATCH, ...) are refused
with 400, as they would corrupt the shared connections here (Upstash refuses
blocking commands too).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
import re
import socket
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, BinaryIO, Self
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)
_TOKEN_IN_QUERY = re.compile(r"([?&]_token=)[^&\s]*")

# A command body bigger than this is not one of ours.
MAX_BODY_BYTES = 1_000_000
# Loopback Redis answers in microseconds; 5 s means it is gone, and the request then
# fails instead of hanging the client (which has its own, shorter timeout anyway).
REDIS_TIMEOUT_S = 5.0
# Idle Redis connections kept for the next requests; more are opened under load.
POOL_IDLE_MAX = 16
# Commands that would block a pooled connection or leave state on it for the next
# request. Upstash itself refuses blocking commands over REST.
REFUSED = frozenset(
    {
        "AUTH", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
        "BZPOPMIN", "CLIENT", "DISCARD", "EXEC", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE",
        "PUNSUBSCRIBE", "QUIT", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "SUNSUBSCRIBE",
        "UNSUBSCRIBE", "UNWATCH", "WAIT", "WAITAOF", "WATCH", "XREAD", "XREADGROUP",
    }
)  # fmt: skip


# ------------------------------------------------------------------ Redis, raw RESP2
#
# A few lines of RESP2 rather than redis-py: Upstash passes Redis's replies through
# as they are, and redis-py rewrites them (error replies lose their "ERR " /
# "NOSCRIPT " prefix and become exception classes, response callbacks turn "OK"
# into True). Here an error is its exact text and everything else is bytes, int,
# None or a list.


@dataclass(frozen=True)
class RespError:
    """An error reply, with Redis's full message ("NOSCRIPT No matching script...")."""

    message: str


class RedisDown(Exception):
    """The Redis behind the stand-in could not be reached or stopped answering."""


RespValue = bytes | int | None | RespError | list[Any]


def _pack(words: list[bytes]) -> bytes:
    out = [b"*%d\r\n" % len(words)]
    for word in words:
        out.append(b"$%d\r\n%s\r\n" % (len(word), word))
    return b"".join(out)


def _read(stream: BinaryIO) -> RespValue:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise RedisDown("connection closed mid-reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RespError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = stream.read(size + 2)
        if len(data) != size + 2:
            raise RedisDown("connection closed mid-reply")
        return data[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read(stream) for _ in range(count)]
    raise RedisDown(f"not a RESP2 reply: {line[:40]!r}")


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = sock.makefile("rb")

    def run(self, commands: list[list[bytes]]) -> list[RespValue]:
        """Send `commands` in one write and read one reply for each."""
        self.sock.sendall(b"".join(_pack(words) for words in commands))
        return [_read(self.stream) for _ in commands]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
            self.sock.close()


class _Redis:
    """A small pool of raw connections to redis://[user:password@]host[:port][/db]."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError("the stand-in speaks plain redis:// only (it runs locally)")
        self._address = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._hello: list[list[bytes]] = []
        if parts.password is not None:
            user = unquote(parts.username or "default")
            self._hello.append([b"AUTH", user.encode(), unquote(parts.password).encode()])
        db = parts.path.strip("/")
        if db and db != "0":
            self._hello.append([b"SELECT", db.encode()])
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def _connect(self) -> _Connection:
        sock = socket.create_connection(self._address, timeout=REDIS_TIMEOUT_S)
        connection = _Connection(sock)
        if self._hello:
            for reply in connection.run(self._hello):
                if isinstance(reply, RespError):
                    connection.close()
                    raise RedisDown(f"connection setup failed: {reply.message}")
        return connection

    def run(self, commands: list[list[bytes]]) -> list[RespValue]:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        try:
            if connection is None:
                connection = self._connect()
            replies = connection.run(commands)
        except (OSError, ValueError, RedisDown) as exc:
            if connection is not None:
                connection.close()
            raise RedisDown(str(exc) or type(exc).__name__) from exc
        with self._lock:
            if len(self._idle) < POOL_IDLE_MAX:
                self._idle.append(connection)
                connection = None
        if connection is not None:
            connection.close()
        return replies

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


# ------------------------------------------------------------------ REST semantics


class _Reply(Exception):
    """Answer this request now with `status` and `body`."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _error(status: int, message: str) -> _Reply:
    return _Reply(status, {"error": message})


@dataclass(frozen=True)
class Call:
    """One answered request, for tests: path and HTTP status."""

    path: str
    status: int


class _Upstash:
    """The request logic, without HTTP plumbing."""

    def __init__(self, redis: _Redis, token: str) -> None:
        self._redis = redis
        self._token = token.encode()

    def post(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        try:
            return 200, self._post(target, headers, body)
        except _Reply as reply:
            return reply.status, reply.body

    def _post(self, target: str, headers: dict[str, str], body: bytes) -> object:
        url = urlsplit(target)
        self._authorise(headers, url.query)
        encode = headers.get("upstash-encoding", "").lower() == "base64"
        try:
            payload = json.loads(body)
        except ValueError:
            raise _error(400, "ERR the request body is not JSON") from None
        if url.path in ("", "/"):
            (reply,) = self._run([_command(payload)])
            if isinstance(reply, RespError):
                raise _error(400, reply.message)
            return {"result": _encode(reply, encode)}
        if url.path == "/pipeline":
            replies = self._run(_commands(payload))
            return [_item(reply, encode) for reply in replies]
        if url.path == "/multi-exec":
            commands = _commands(payload)
            replies = self._run([[b"MULTI"], *commands, [b"EXEC"]])
            executed = replies[-1]
            if isinstance(executed, RespError):  # EXECABORT: discarded as a whole
                queued = [r for r in replies[1:-1] if isinstance(r, RespError)]
                raise _error(400, (queued[0] if queued else executed).message)
            if not isinstance(executed, list):  # a nil EXEC needs WATCH, refused above
                raise _error(500, "ERR transaction aborted")
            return [_item(reply, encode) for reply in executed]
        raise _error(404, f"ERR {url.path} is not implemented by the Upstash stand-in")

    def _authorise(self, headers: dict[str, str], query: str) -> None:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = credentials.strip()
        else:
            given = (parse_qs(query).get("_token") or [""])[0]
        if not given or not hmac.compare_digest(given.encode(), self._token):
            raise _error(401, "Unauthorized")

    def _run(self, commands: list[list[bytes]]) -> list[RespValue]:
        try:
            return self._redis.run(commands)
        except RedisDown as exc:
            raise _error(503, f"ERR Redis unavailable: {exc}") from None


def _command(payload: object) -> list[bytes]:
    """A JSON command array as Redis arguments (numbers as their decimal text)."""
    if not isinstance(payload, list) or not payload:
        raise _error(400, "ERR a command must be a non-empty JSON array")
    words: list[bytes] = []
    for item in payload:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _error(400, f"ERR invalid argument {item!r}: strings and numbers only")
        words.append((item if isinstance(item, str) else json.dumps(item)).encode())
    if words[0].decode().upper() in REFUSED:
        raise _error(400, f"ERR Command is not allowed: {words[0].decode()}")
    return words


def _commands(payload: object) -> list[list[bytes]]:
    if not isinstance(payload, list) or not payload:
        raise _error(400, "ERR expected a non-empty array of commands")
    return [_command(item) for item in payload]


def _item(reply: RespValue, encode: bool) -> dict[str, object]:
    if isinstance(reply, RespError):
        return {"error": reply.message}
    return {"result": _encode(reply, encode)}


def _encode(value: RespValue, base64_strings: bool) -> Any:
    """A raw reply as Upstash's JSON: strings plain (UTF-8, invalid bytes replaced)
    or base64 (except "OK"); integers, null and arrays as they are."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, bytes):
        if not base64_strings:
            return value.decode("utf-8", "replace")
        if value == b"OK":
            return "OK"
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, RespError):  # an error nested deeper inside an array
        return _encode(value.message.encode(), base64_strings)
    return [_encode(item, base64_strings) for item in value]


# -------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler must never keep the test process alive
    # socketserver's default listen backlog is 5: a burst of new connections from
    # many threads (as a busy function instance makes) would be reset, which Upstash
    # never does.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: _Upstash) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away before its answer is written (a function instance
        # killed by the torture, a client timing out) is not an error of the stand-in;
        # socketserver would print a traceback for each.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

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
    protocol_version = "HTTP/1.1"  # keep-alive, as Upstash offers
    server_version = "upstash-standin"

    def _server(self) -> _Server:
        assert isinstance(self.server, _Server)
        return self.server

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the body cannot be skipped reliably
            self._send(400, {"error": "ERR Content-Length missing, invalid or too large"})
            return
        body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            status, reply = self._server().app.post(self.path, headers, body)
        except Exception:  # a bug here must answer 500, not drop the connection
            log.exception("upstash stand-in failed on %s", self.path)
            status, reply = 500, {"error": "ERR stand-in internal error"}
        self._send(status, reply)

    do_PUT = do_POST  # noqa: N815 - Upstash accepts PUT like POST

    def _method_not_allowed(self) -> None:
        self._send(405, {"error": f"ERR {self.command} is not supported by the stand-in"})

    do_GET = do_HEAD = do_PATCH = do_DELETE = _method_not_allowed  # noqa: N815

    def _send(self, status: int, reply: object) -> None:
        server = self._server()
        with server.lock:
            server.calls.append(Call(urlsplit(self.path).path, status))
        body = json.dumps(reply).encode()
        self.send_response(status, _reason(status))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line may carry the token (?_token=): it never reaches a log.
        shown = (_TOKEN_IN_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in args)
        log.debug("upstash stand-in: " + format, *shown)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class StandIn:
    """A running stand-in. `url` is what UPSTASH_REDIS_REST_URL should be set to."""

    def __init__(self, server: _Server, redis: _Redis, thread: threading.Thread) -> None:
        self._server = server
        self._redis = redis
        self._thread = thread
        self._stopped = False
        host, port = server.server_address[:2]
        self.port = int(port)
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
        self._redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(redis_url: str, token: str, host: str = "127.0.0.1", port: int = 0) -> StandIn:
    """Start the stand-in in a background thread; port 0 picks a free port. It does
    not connect to Redis until the first request, so it starts even when Redis is
    down (and then answers 503)."""
    if not token:
        raise ValueError("the stand-in needs a token, as Upstash does")
    redis = _Redis(redis_url)
    server = _Server((host, port), _Upstash(redis, token))
    # A short poll interval makes stop() return promptly.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="upstash-standin",
        daemon=True,
    )
    thread.start()
    return StandIn(server, redis, thread)
