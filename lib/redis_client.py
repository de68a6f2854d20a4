"""Redis for speed only: one small interface, two clients, and a way to give up fast.

PostgreSQL decides seats and credits; Redis spares it work and shares budgets. So a
Redis that is down, slow or wrong must cost a request little and never fail it: every
operation has a short timeout, and every failure (refused, timed out, error reply,
garbled reply, breaker open) raises the one type `RedisUnavailable`, which callers
catch and then carry on through the database.

Two implementations, chosen by configuration (REDIS_URL wins when both are set):

* `TcpRedis`: redis-py over TCP (`REDIS_URL`, `redis://` or `rediss://`), a
  connection pool shared by the threads of the process.
* `RestRedis`: upstash-redis over Upstash's REST API (`UPSTASH_REDIS_REST_URL` +
  `UPSTASH_REDIS_REST_TOKEN`), the serverless default on Vercel.

Both decode every reply to `str`, so the same Lua script gives the same Python value
in both: a Lua integer -> int, a string or status -> str, a table -> list (nested as
the table is), nil/false -> None, Lua true -> 1 (RESP2 rules; redis-py is pinned to
RESP2 because under RESP3 a Lua true would arrive as a bool, which Upstash's JSON
never sends). Replies that are not valid UTF-8 raise RedisUnavailable in both.

Each client carries a small circuit breaker: after a connection failure or timeout
it refuses every call for COOLDOWN_S (raising at once, no network), then lets one
call through as a probe. A Redis outage therefore costs one timeout per cool-down per
process, not one per request.

Nothing heavy is imported at module level (cold start is import time): redis-py
(~110 ms) and upstash-redis (~90 ms) are imported when the first client is built.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, Union, cast

from lib.config import ConfigError, Settings, settings

if TYPE_CHECKING:
    import redis as redis_py
    import upstash_redis

log = logging.getLogger(__name__)

T = TypeVar("T")

# What EVAL can answer, decoded the same way by both clients.
Reply = Union[str, int, None, list["Reply"]]  # noqa: UP007 - recursive alias needs the old spelling

# Timeouts. A Redis in the function's region answers in ~1 ms (Upstash over TLS: a
# few ms); these bounds are 50-100x that, so reaching one means "down or drowning",
# and the database path is then cheaper than waiting. Every number is paid at most
# once per cool-down per process (see COOLDOWN_S).
#
# TCP read: one command is one round trip on an open connection; 250 ms is far past
# any healthy answer and small next to a booking's database call.
TCP_TIMEOUT_S = 0.25
# TCP connect: TCP plus, for rediss://, a TLS handshake (2 round trips), paid once per
# pooled connection; 250 ms still covers a function placed a region away.
TCP_CONNECT_TIMEOUT_S = 0.25
# REST: each command is an HTTPS request through Upstash's HTTP front, and on a Global
# database every write (all our scripts write) is forwarded to the primary region, so
# a healthy call can take one cross-region round trip (~100-150 ms). 500 ms keeps
# that working while still failing fast.
REST_TIMEOUT_S = 0.5
# REST connect: TCP + TLS to the edge, once per kept-alive connection.
REST_CONNECT_TIMEOUT_S = 0.5
# After a failure, skip Redis this long. A failover on Upstash or a restarted local
# Redis takes seconds; 5 s caps an outage at one timeout per 5 s per process while a
# short blip disables the fast path only briefly (the database serves meanwhile).
COOLDOWN_S = 5.0

FailureKind = Literal["down", "timeout", "reply", "breaker_open"]


class RedisUnavailable(Exception):
    """Redis could not serve this call; carry on without it.

    `kind`: "down" (refused, reset, unreachable), "timeout", "reply" (an error reply or
    a reply we cannot decode: Redis answered, but not usefully) or "breaker_open"
    (skipped: a recent failure, nothing was sent). The message never holds key values.
    """

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(f"redis {kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Script:
    """A Lua script, sent by its SHA-1 (EVALSHA) and by source only when the server
    does not know it yet (NOSCRIPT after a restart, failover or SCRIPT FLUSH)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        # Redis names scripts by the SHA-1 of their text; this is not a security use.
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)


class RedisClient(Protocol):
    """What the application needs from Redis, and nothing more.

    Every method is one round trip (eval: two on a NOSCRIPT miss; mget of no keys and
    delete of none: zero) and raises RedisUnavailable on any failure, except ping(),
    which answers False instead (also, without a round trip, while the breaker is
    open: for a health check, "skipping Redis" is "not reachable").
    """

    def eval(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Reply: ...
    def mget(self, keys: Sequence[str]) -> list[str | None]: ...
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool: ...
    def delete(self, *keys: str) -> int: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


class CircuitBreaker:
    """Open after a transport failure; refuse calls until the cool-down has passed,
    then let exactly one call through as a probe (the others keep being refused until
    it reports). Thread-safe; the closed-state check takes no lock.

    Not exact under races, on purpose: a call that started before a failure and
    succeeds after it closes the breaker again. That can cost a few extra timeouts
    at the start of an outage, never a wrong answer."""

    def __init__(self, cooldown_s: float = COOLDOWN_S, clock: Callable[[], float] = time.monotonic):
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def before_call(self) -> None:
        open_until = self._open_until
        if open_until is None:  # the common case: one attribute read, no lock
            return
        with self._lock:
            open_until = self._open_until  # re-read: another thread may have closed it
            if open_until is None:
                return
            now = self._clock()
            if now < open_until:
                raise RedisUnavailable("breaker_open", "skipping Redis after a recent failure")
            # Cool-down over: this caller is the probe. Push the deadline on so that
            # concurrent callers keep skipping until the probe has an answer.
            self._open_until = now + self._cooldown_s

    def succeeded(self) -> None:
        if self._open_until is not None:
            with self._lock:
                if self._open_until is not None:
                    log.info("redis reachable again; breaker closed")
                self._open_until = None

    def failed(self, error: RedisUnavailable) -> None:
        with self._lock:
            if self._open_until is None:
                log.warning("%s; skipping Redis for %.1f s", error, self._cooldown_s)
            self._open_until = self._clock() + self._cooldown_s


class _Guarded:
    """Shared plumbing: breaker, error translation. Subclasses say which exceptions
    of their library mean what (`_classify`)."""

    def __init__(self, cooldown_s: float) -> None:
        self.breaker = CircuitBreaker(cooldown_s)

    def _classify(self, exc: Exception) -> FailureKind | None:
        """The kind of failure `exc` is, or None for an exception that is not a
        Redis failure (a programming error: let it propagate)."""
        raise NotImplementedError

    def _run(self, operation: Callable[[], T]) -> T:
        self.breaker.before_call()
        try:
            result = operation()
        except RedisUnavailable as exc:  # raised by our own reply checks
            self.breaker.succeeded()  # the server answered; only the answer was bad
            raise exc from None
        except Exception as exc:
            kind = self._classify(exc)
            if kind is None:
                raise
            error = RedisUnavailable(kind, f"{type(exc).__name__}: {exc}")
            if kind == "reply":
                self.breaker.succeeded()
            else:
                self.breaker.failed(error)
            raise error from exc
        self.breaker.succeeded()
        return result

    def ping(self) -> bool:
        try:
            return self._run(self._ping)
        except RedisUnavailable:
            return False

    def _ping(self) -> bool:
        raise NotImplementedError


def _text_args(args: Sequence[str | int]) -> list[str]:
    # Both transports send strings; converting here makes them send the same bytes.
    # bool is an int in Python and would travel as "True": refuse it.
    out: list[str] = []
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, str | int):
            raise TypeError(f"script arguments must be str or int, got {type(arg).__name__}")
        out.append(str(arg))
    return out


def _check_reply(value: object) -> Reply:
    """`value` if it is made only of str, int, None and lists; else RedisUnavailable."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, list):
        return [_check_reply(item) for item in value]
    raise RedisUnavailable("reply", f"unexpected reply type {type(value).__name__}")


class _Connection(Protocol):
    """The part of a redis-py connection TcpRedis uses (redis-py leaves it untyped)."""

    def pack_command(self, *args: str | int) -> list[bytes]: ...
    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None: ...
    def read_response(self) -> object: ...
    def disconnect(self) -> None: ...


class TcpRedis(_Guarded):
    """redis-py connections over TCP, shared by the threads of the process.

    redis-py makes the connections (connect, TLS for rediss://, AUTH, SELECT, timeouts)
    and parses the replies (hiredis); this class sends each command on one of them
    itself instead of through `redis.Redis` and its pool. `./run bench redis-calls`
    (2 cores, Redis on loopback, three runs): the finish script costs 75-87 us of CPU
    through `redis.Redis.evalsha`, 51-59 us through this class and 28-36 us as bare
    socket bytes. The client and pool layers spend the difference on per-call locks,
    fork checks, a `can_read()` poll before every command, metrics and the retry
    wrapper; a booking makes two such calls, so this is ~50 us of the ~0.4 ms that
    separate the API from the bare endpoint (BENCHMARKS.md). The rest of a call is the
    loopback's kernel work, which no client avoids.

    What the pool did that still has to hold, and how it holds here:
    - no reply is ever left unread on a kept connection: a connection is put back
      only after its reply was read whole (an error reply included); any other
      failure disconnects it, so the next command never reads a stale reply;
    - a connection the server dropped while idle (an instance frozen between
      requests) is retried once on a new one, never after a timeout (a timeout
      retried is a second timeout); every script is safe to run twice
      (lib/redis_scripts.py);
    - after a fork, the parent's connections are left to the parent.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = TCP_TIMEOUT_S,
        connect_timeout_s: float = TCP_CONNECT_TIMEOUT_S,
        cooldown_s: float = COOLDOWN_S,
    ) -> None:
        super().__init__(cooldown_s)
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            self._pool: redis_py.ConnectionPool = redis.ConnectionPool.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=connect_timeout_s,
                decode_responses=True,
                # RESP2, as Upstash's REST API speaks: under RESP3 (redis-py 8's
                # default) a Lua true becomes a bool and some replies change shape.
                protocol=2,
                # Connecting is retried once at once (the connection's own retry);
                # commands are retried by _command below, on connection errors only.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                # No CLIENT SETINFO on connect: two round trips per new connection
                # that only label us in CLIENT LIST.
                driver_info=None,
            )
        except ValueError as exc:  # unknown scheme, bad port, ...
            raise ConfigError(f"REDIS_URL is not a valid Redis URL: {exc}") from None
        # Idle connections. list.pop() and list.append() are atomic, so threads share
        # it without a lock. No cap: connections are bounded by the threads of the
        # process (one per request in flight), and a cap would turn a burst into
        # "too many connections" errors that look like an outage.
        self._idle: list[_Connection] = []
        self._pid = os.getpid()
        self._down: tuple[type[Exception], ...] = (redis.ConnectionError,)
        self._timeout: tuple[type[Exception], ...] = (redis.TimeoutError,)
        self._reply: tuple[type[Exception], ...] = (redis.RedisError, UnicodeDecodeError)
        self._error_reply: type[Exception] = redis.ResponseError
        self._noscript: type[Exception] = redis.exceptions.NoScriptError

    def _classify(self, exc: Exception) -> FailureKind | None:
        if isinstance(exc, self._timeout):
            return "timeout"
        if isinstance(exc, self._down):
            return "down"
        if isinstance(exc, self._reply):
            return "reply"
        return None

    def _connection(self) -> tuple[_Connection, bool]:
        """An idle connection (and True), or a new one (and False)."""
        if self._pid != os.getpid():
            # A forked child: the idle sockets are the parent's; forget, never close.
            self._idle = []
            self._pid = os.getpid()
        try:
            return self._idle.pop(), True
        except IndexError:
            return self._new_connection(), False

    def _new_connection(self) -> _Connection:
        return cast(_Connection, self._pool.make_connection())

    def _command(self, *words: str | int) -> object:
        """Send one command and read its reply (an error reply raises)."""
        connection, reused = self._connection()
        packed = connection.pack_command(*words)
        try:
            return self._exchange(connection, packed)
        except self._down:
            if not reused:
                raise
        # The server dropped a connection kept idle (a restart, its idle timeout, an
        # instance frozen for long): once more, on a new connection. Never on another
        # idle one, which a restart has dropped as well.
        return self._exchange(self._new_connection(), packed)

    def _exchange(self, connection: _Connection, packed: list[bytes]) -> object:
        try:
            connection.send_packed_command(packed, check_health=False)
            reply = connection.read_response()
        except self._error_reply:
            self._idle.append(connection)  # the error reply was read whole
            raise
        except BaseException:
            connection.disconnect()  # a reply may still be on its way
            raise
        self._idle.append(connection)
        return reply

    def eval(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Reply:
        numkeys, words = len(keys), [*keys, *_text_args(args)]

        def call() -> Reply:
            try:
                reply = self._command("EVALSHA", script.sha, numkeys, *words)
            except self._noscript:
                # EVAL runs the script and caches it under the same SHA-1, so the
                # next call's EVALSHA finds it.
                reply = self._command("EVAL", script.source, numkeys, *words)
            return _check_reply(reply)

        return self._run(call)

    def mget(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return self._run(lambda: _strings(self._command("MGET", *keys)))

    def get(self, key: str) -> str | None:
        return self._run(lambda: _string(self._command("GET", key)))

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        _check_ttl(ex)
        command: list[str | int] = ["SET", key, value, "EX", ex]
        if nx:
            command.append("NX")
        return self._run(lambda: _set_reply(self._command(*command)))

    def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return self._run(lambda: _integer(self._command("DEL", *keys)))

    def _ping(self) -> bool:
        return self._command("PING") == "PONG"

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.disconnect()
        self._pool.disconnect()


class RestRedis(_Guarded):
    """upstash-redis over Upstash's REST API (one HTTPS request per call)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float = REST_TIMEOUT_S,
        connect_timeout_s: float = REST_CONNECT_TIMEOUT_S,
        cooldown_s: float = COOLDOWN_S,
    ) -> None:
        super().__init__(cooldown_s)
        import httpx
        from upstash_redis import Redis
        from upstash_redis.errors import UpstashError

        self._client: upstash_redis.Redis = Redis(
            url,
            token,
            # No retries: upstash-redis would sleep 3 s and try again, inside a
            # request whose whole point is to be fast. The breaker handles outages.
            rest_retries=0,
            # Read-your-writes makes every call rewrite a header dict shared by all
            # threads (a race on first use) and buys nothing here: scripts read and
            # write on the primary, and seat counts are advisory copies.
            read_your_writes=False,
        )
        # upstash-redis 1.8 builds its httpx client with timeout=None and offers no
        # argument for one. httpx.Client.timeout is a public, settable property; the
        # client object itself sits in a private attribute, so check it is still
        # there rather than run silently without a timeout after an upgrade.
        http = getattr(getattr(self._client, "_http", None), "_client", None)
        if not isinstance(http, httpx.Client):
            raise RuntimeError("upstash-redis internals changed: cannot set its HTTP timeout")
        http.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._timeout: tuple[type[Exception], ...] = (httpx.TimeoutException,)
        self._down: tuple[type[Exception], ...] = (httpx.TransportError,)
        # UpstashError: an {"error": ...} answer. ValueError covers a body that is not
        # JSON (a proxy's 502 page) and base64/UTF-8 that does not decode; KeyError a
        # JSON body without "result".
        self._reply: tuple[type[Exception], ...] = (UpstashError, ValueError, KeyError)
        self._upstash_error: type[Exception] = UpstashError

    def _classify(self, exc: Exception) -> FailureKind | None:
        if isinstance(exc, self._timeout):
            return "timeout"
        if isinstance(exc, self._down):
            return "down"
        if isinstance(exc, self._reply):
            return "reply"
        return None

    def eval(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Reply:
        key_list, arg_list = list(keys), _text_args(args)

        def call() -> Reply:
            try:
                reply = self._client.evalsha(script.sha, keys=key_list, args=arg_list)
            except self._upstash_error as exc:
                # upstash-redis has no automatic fallback; NOSCRIPT arrives as an
                # error message like any other.
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                reply = self._client.eval(script.source, keys=key_list, args=arg_list)
            return _check_reply(reply)

        return self._run(call)

    def mget(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return self._run(lambda: _strings(self._client.execute(["MGET", *keys])))

    def get(self, key: str) -> str | None:
        return self._run(lambda: _string(self._client.execute(["GET", key])))

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        _check_ttl(ex)
        command: list[str | int] = ["SET", key, value, "EX", ex]
        if nx:
            command.append("NX")
        return self._run(lambda: _set_reply(self._client.execute(command)))

    def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return self._run(lambda: _integer(self._client.execute(["DEL", *keys])))

    def _ping(self) -> bool:
        return self._client.execute(["PING"]) == "PONG"

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # untyped in upstash-redis 1.8


def _check_ttl(ex: int) -> None:
    # Every key has a TTL (product.md §5): a write without one is a programming error.
    if isinstance(ex, bool) or not isinstance(ex, int) or ex <= 0:
        raise ValueError(f"a positive TTL in seconds is required, got {ex!r}")


def _string(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RedisUnavailable("reply", f"expected a string, got {type(value).__name__}")


def _strings(value: object) -> list[str | None]:
    if not isinstance(value, list):
        raise RedisUnavailable("reply", f"expected a list, got {type(value).__name__}")
    return [_string(item) for item in value]


def _set_reply(value: object) -> bool:
    # upstash-redis turns SET's "OK" into True (and None, NX refused, into False);
    # accept Redis's own spelling too in case a release stops doing so.
    if value is True or value == "OK":
        return True
    if value is False or value is None:
        return False
    raise RedisUnavailable("reply", f"SET answered {type(value).__name__}")


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RedisUnavailable("reply", f"expected an integer, got {type(value).__name__}")


class CountingRedis:
    """Wraps a client and counts the calls made through it, for tests that hold code
    to a number of round trips: each eval/mget/get/set/delete/ping counts one (an
    mget of no keys or a delete of none counts nothing, as it sends nothing), whether
    it succeeds, fails or is refused by the breaker. A NOSCRIPT fallback still counts
    one: it happens once per script per Redis restart, and counts must not depend on
    what other tests ran first."""

    def __init__(self, inner: RedisClient) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def round_trips(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def _count(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1

    def eval(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Reply:
        self._count("eval")
        return self.inner.eval(script, keys, args)

    def mget(self, keys: Sequence[str]) -> list[str | None]:
        if keys:
            self._count("mget")
        return self.inner.mget(keys)

    def get(self, key: str) -> str | None:
        self._count("get")
        return self.inner.get(key)

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        self._count("set")
        return self.inner.set(key, value, ex=ex, nx=nx)

    def delete(self, *keys: str) -> int:
        if keys:
            self._count("delete")
        return self.inner.delete(*keys)

    def ping(self) -> bool:
        self._count("ping")
        return self.inner.ping()

    def close(self) -> None:
        self.inner.close()


def from_settings(config: Settings) -> RedisClient | None:
    """The client the configuration asks for, or None when Redis is not configured.

    REDIS_URL wins over the Upstash pair. Half of the Upstash pair is a mistake, not
    "absent": ConfigError names the missing variable.
    """
    if config.redis_url:
        return TcpRedis(config.redis_url)
    url, token = config.upstash_redis_rest_url, config.upstash_redis_rest_token
    if url and token:
        if not url.startswith(("https://", "http://")):
            raise ConfigError("UPSTASH_REDIS_REST_URL must be an https:// URL")
        return RestRedis(url, token)
    if url or token:
        missing = "UPSTASH_REDIS_REST_TOKEN" if url else "UPSTASH_REDIS_REST_URL"
        raise ConfigError(f"{missing} must be set together with its pair")
    return None


_client: RedisClient | None = None
_resolved = False  # whether _client reflects the configuration (or a use_redis swap)
_client_lock = threading.Lock()


def redis() -> RedisClient | None:
    """The process-wide client, built on first use (thread-safe); None when Redis is
    not configured, in which case callers take the database path."""
    global _client, _resolved  # noqa: PLW0603 - one pool per process is the point
    if not _resolved:
        with _client_lock:
            if not _resolved:
                _client = from_settings(settings())
                _resolved = True
    return _client


def use_redis(replacement: RedisClient | None) -> RedisClient | None:
    """Swap the process-wide client (tests, the local server); None means "no Redis".
    Returns the previous one (None if none had been built)."""
    global _client, _resolved
    with _client_lock:
        previous, _client, _resolved = _client, replacement, True
    return previous
