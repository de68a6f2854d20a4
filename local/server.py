"""The API functions and the static pages on this laptop, routed as Vercel routes them.

Vercel turns every `api/**/*.py` file into one function and serves `public/` at `/`.
`make_app(api_dir, public_dir)` is that routing as one WSGI callable:

* `/api/...` goes to a function file. A static path segment beats a dynamic `[param]`
  segment at the same position (`/api/bookings/list` is `list.py`, not `[id].py`), the
  earliest position deciding; `index.py` serves its directory's path; `/api/x` and
  `/api/x/` are the same. Files and directories whose names start with `_` or `.`
  are no functions (helpers, `__pycache__`). A dynamic value is appended to the query
  string (`id=<value>`) while PATH_INFO stays the original path, as on Vercel. An
  `/api/...` path no file serves answers 404 with the JSON error envelope and a
  request id. (Vercel answers its own plain-text 404 there: the builder's routes end in
  `{"src": "^/api(/.*)?$", "status": 404}`; tests/vercel/test_build.py pins that.)
* Anything else is a file under `public/` (`index.html` for `/` and for directories),
  never outside it, with its content type; HTML is revalidated on every load.

Each function module is loaded once, on its first request, by file path under the
module name Vercel gives it (`api.bookings.[id]`, which `import` could not name), and
its top-level `app` is called as WSGI. Like Vercel's runtime, functions get PATH_INFO
as the client sent it (percent-encoded; PEP 3333 servers decode it, gunicorn keeps the
original in RAW_URI), and a module that fails to import is tried again on the next
request. Unlike Vercel, all functions share one process: module-level clients must be
thread-safe (the runtime's threaded server requires that anyway).

`serve(...)` runs it under gunicorn: the gthread worker class, N worker processes of
M threads each, each worker building its router (and so importing the functions and
opening any database pool) only after the fork. `python -m local.server` does that
standalone (benchmarks); `start(...)` runs it as a child process (`./run dev`, tests).

    python -m local.server [--host 127.0.0.1] [--port 3000] [--workers 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import mimetypes
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
API_DIR = ROOT / "api"
PUBLIC_DIR = ROOT / "public"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
# Two workers: one per core of the machines here. Eight threads each: a request spends
# most of its time waiting on PostgreSQL and Redis, and threads overlap those waits
# (the GIL is released while a socket waits); 16 in flight also stays inside a small
# per-process connection pool's reach (lib/config.py: DB_POOL_MAX_SIZE).
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 8
# On stop, gunicorn lets running requests finish this long. A booking takes well under
# a second; Ctrl-C must not hang behind a stuck one for gunicorn's default 30 s.
GRACEFUL_TIMEOUT_S = 10
# How long start() waits for the port to answer: gunicorn boots in well under a second;
# this only bounds a child that hangs without exiting.
START_TIMEOUT_S = 30.0
# stop(): the graceful window above plus margin before the child is killed.
STOP_TIMEOUT_S = GRACEFUL_TIMEOUT_S + 5.0
POLL_INTERVAL_S = 0.05
# Router._resolve's memory of paths: far more than the static routes, small enough that
# a scan of junk paths cannot grow a worker (the cache starts over when full).
RESOLVED_PATHS_KEPT = 1024
# Vercel's largest request header (beyond it, its REQUEST_HEADER_TOO_LARGE).
VERCEL_HEADER_BYTES = 16 * 1024

_PARAM = re.compile(r"^\[([A-Za-z_][A-Za-z0-9_]*)\]$")
_TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
_TYPES = {
    # mimetypes reads /etc/mime.types when present, so pin what pages need to look the
    # same on every machine.
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "application/javascript",
    ".mjs": "application/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".yaml": "text/yaml",
    ".yml": "text/yaml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".webmanifest": "application/manifest+json",
}
_STATUS = {200: "200 OK", 404: "404 Not Found", 405: "405 Method Not Allowed"}


class RouteError(ValueError):
    """The api/ tree holds something Vercel would not route (two files for one path,
    a segment form we do not support)."""


class ServerError(RuntimeError):
    """The server child process could not start or stopped on its own."""


# ---------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    """One function file and the URL path it serves."""

    segments: tuple[str, ...]  # after /api: ("bookings", "[id]")
    file: Path
    module_name: str  # Vercel's: the file's path, dotted, without ".py"

    @property
    def rank(self) -> tuple[int, ...]:
        """Sorts matching routes by precedence: a static segment (0) beats a dynamic
        one (1), and the earliest position where they differ decides."""
        return tuple(1 if _PARAM.match(part) else 0 for part in self.segments)

    @property
    def path(self) -> str:
        return "/" + "/".join(("api", *self.segments))

    def match(self, parts: tuple[str, ...]) -> dict[str, str] | None:
        """The dynamic values when this route serves the (decoded) path segments."""
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for mine, theirs in zip(self.segments, parts, strict=True):
            param = _PARAM.match(mine)
            if param:
                if not theirs:
                    return None
                params[param.group(1)] = theirs
            elif mine != theirs:
                return None
        return params


def _is_hidden(name: str) -> bool:
    # Vercel serves no function from a name starting with "_" or "." (that also covers
    # __pycache__), so helpers can sit beside the endpoints.
    return name.startswith(("_", "."))


def discover_routes(api_dir: Path) -> list[Route]:
    """Every function file under api_dir, most specific route first. Raises RouteError
    when two files would serve one path or a segment is malformed."""
    api_dir = api_dir.resolve()
    routes: dict[tuple[str, ...], Route] = {}
    if not api_dir.is_dir():
        return []
    for directory, subdirs, files in os.walk(api_dir):
        subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
        for name in sorted(files):
            if _is_hidden(name) or not name.endswith(".py"):
                continue
            if name.removesuffix(".py") in subdirs:
                # Vercel's dev server fails every function (EISDIR) on a file beside a
                # directory of its name; `[id]/index.py` serves the same URL.
                raise RouteError(
                    f"{Path(directory) / name} stands beside the directory of its name:"
                    f" move it to {name.removesuffix('.py')}/index.py"
                )
            file = Path(directory) / name
            relative = file.relative_to(api_dir).with_suffix("")
            parts = relative.parts
            segments = parts[:-1] if parts[-1] == "index" else parts
            for part in segments:
                if part.startswith("[") and not _PARAM.match(part):
                    raise RouteError(f"{file}: unsupported dynamic segment {part!r}")
            module_name = ".".join((api_dir.name, *parts))
            route = Route(segments, file, module_name)
            if segments in routes:
                raise RouteError(f"{routes[segments].file} and {file} both serve {route.path}")
            routes[segments] = route
    return sorted(routes.values(), key=lambda r: (r.rank, r.segments))


def resolve(
    routes: Iterable[Route], path: str, *, encoded: bool = True
) -> tuple[Route, dict[str, str]] | None:
    """The route serving `path` (starting with /api) and its dynamic values. `path` is
    as sent (percent-encoded, each segment decoded after splitting, so `%2F` stays in
    its segment) unless encoded=False (a PATH_INFO the server already decoded)."""
    parts = path.rstrip("/").split("/")[2:]
    segments = tuple(unquote(part) for part in parts) if encoded else tuple(parts)
    best: tuple[Route, dict[str, str]] | None = None
    for route in routes:
        params = route.match(segments)
        if params is not None and (best is None or route.rank < best[0].rank):
            best = (route, params)
    return best


def with_params(query: str, params: Mapping[str, str]) -> str:
    """The query string a function sees: the client's, then the dynamic values appended
    (a client's own `?id=` comes first, so functions read ids from the path)."""
    return "&".join(part for part in (query, urlencode(params)) if part)


def vercel_target(path: str, query: str, params: Mapping[str, str]) -> str:
    """The request target Vercel hands a function: the original path, extended query."""
    joined = with_params(query, params)
    return f"{path}?{joined}" if joined else path


# ---------------------------------------------------------------- functions


@dataclass
class _Function:
    route: Route
    app: WSGIApplication | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> WSGIApplication:
        """The module's `app`, importing the file on first use (threads racing here
        import it once)."""
        if self.app is not None:
            return self.app
        with self.lock:
            if self.app is None:
                self.app = _load_app(self.route)
            return self.app


def _load_app(route: Route) -> WSGIApplication:
    # As vercel_runtime.resolver.import_module does: by file path, registered in
    # sys.modules under the dotted name (dataclasses and pydantic look modules up there).
    spec = importlib.util.spec_from_file_location(route.module_name, route.file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {route.file}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[route.module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(route.module_name, None)
        raise
    app = getattr(module, "app", None)
    if not callable(app):
        raise ImportError(f"{route.file} has no top-level WSGI `app`")
    return app  # type: ignore[no-any-return]


def _raw_path(environ: WSGIEnvironment) -> str | None:
    """The request path as the client sent it, when the server kept it."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        return None
    path = urlsplit(str(target)).path  # also takes an absolute-form target
    return path if path.startswith("/api") else None


def _json_error(
    environ: WSGIEnvironment, status: str, code: str, message: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    """An answer the router gives itself, in the functions' envelope: the request id
    (the client's X-Request-Id when valid, as lib/http.py takes it), CORS, no caching."""
    from lib.http import CORS_HEADERS, new_request_id

    rid = new_request_id(environ)
    error = {"code": code, "message": message, "request_id": rid}
    body = json.dumps({"success": False, "error": error}).encode()
    headers = [
        *CORS_HEADERS.items(),
        ("X-Request-Id", rid),
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    return status, headers, body


# ---------------------------------------------------------------- static files


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    kind = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith(_TEXT_TYPES) else kind


def _static_file(public_dir: Path, path: str) -> Path | None:
    """The file under public_dir that `path` (a decoded PATH_INFO) names, or None.
    Never a file outside public_dir: `..`, backslashes and NULs are refused outright,
    and what remains must still resolve (symlinks followed) inside it."""
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") or "\\" in part or "\0" in part for part in parts):
        return None
    candidate = public_dir.joinpath(*parts)
    try:
        if candidate.is_dir():
            candidate = candidate / "index.html"
        elif path.endswith("/"):  # a trailing slash names a directory
            return None
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not resolved.is_relative_to(public_dir) or not resolved.is_file():
        return None
    return resolved


# ---------------------------------------------------------------- the router


class Router:
    """The WSGI callable of make_app()."""

    def __init__(self, api_dir: Path, public_dir: Path, trust_forwarded: bool = False) -> None:
        self.public_dir = public_dir.resolve()
        self.trust_forwarded = trust_forwarded
        self.routes = discover_routes(api_dir)
        self._functions = {route.segments: _Function(route) for route in self.routes}
        # Path -> what resolve() said. Matching walks every route (~11 us a request,
        # measured with `./run bench path-cpu`); in production Vercel's edge routes, so
        # none of that is the functions' own cost, which the load benchmark measures.
        # Bounded: dynamic paths (booking ids) and junk are endless. The params dicts
        # are shared between requests: read them, never change them.
        self._resolved: dict[tuple[str, bool], tuple[Route, dict[str, str]] | None] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "/")
        if path == "/api" or path.startswith("/api/"):
            return self._function(environ, start_response, path)
        return self._static(environ, start_response, path)

    def _function(
        self, environ: WSGIEnvironment, start_response: StartResponse, path: str
    ) -> Iterable[bytes]:
        # Vercel's runtime hands functions the path as sent, not percent-decoded as
        # PEP 3333 servers do; gunicorn keeps it in RAW_URI. Without it (wsgiref, tests)
        # the decoded path is all there is.
        raw = _raw_path(environ)
        found = self._resolve(path if raw is None else raw, encoded=raw is not None)
        if found is None:
            status, headers, body = _json_error(
                environ, "404 Not Found", "NOT_FOUND", f"No API endpoint at {path}"
            )
            start_response(status, headers)
            return [body]
        route, params = found
        environ = dict(environ)
        if raw is not None:
            environ["PATH_INFO"] = raw
        query = str(environ.get("QUERY_STRING") or "")
        environ["QUERY_STRING"] = with_params(query, params)
        # Vercel's edge overwrites these with the client it saw (no spoofing through
        # them), and the runtime derives REMOTE_ADDR from X-Forwarded-For: per-client
        # rate limits read them.
        # trust_forwarded keeps a client-sent X-Real-IP: the tests and the load
        # generator play many clients from one machine, as if Vercel's edge had set it.
        client = str(environ.get("REMOTE_ADDR") or "127.0.0.1")
        if self.trust_forwarded and environ.get("HTTP_X_REAL_IP"):
            client = str(environ["HTTP_X_REAL_IP"])
        environ["HTTP_X_FORWARDED_FOR"] = client
        environ["HTTP_X_REAL_IP"] = client
        environ["HTTP_X_FORWARDED_PROTO"] = str(environ.get("wsgi.url_scheme") or "http")
        if "HTTP_HOST" in environ:
            environ["HTTP_X_FORWARDED_HOST"] = environ["HTTP_HOST"]
        try:
            app = self._functions[route.segments].load()
            return app(environ, start_response)
        except Exception:
            # What Vercel answers for a function that crashes (FUNCTION_INVOCATION_FAILED),
            # in our envelope so that pages show an error instead of choking on HTML.
            log.exception("function %s failed", route.file)
            status, headers, body = _json_error(
                environ,
                "500 Internal Server Error",
                "FUNCTION_INVOCATION_FAILED",
                "The function crashed; see the server log",
            )
            # exc_info: if the function had already started its response, the server
            # re-raises and drops the connection rather than sending a second status.
            start_response(status, headers, sys.exc_info())
            return [body]

    def _resolve(self, path: str, *, encoded: bool) -> tuple[Route, dict[str, str]] | None:
        key = (path, encoded)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        found = resolve(self.routes, path, encoded=encoded)
        if len(self._resolved) >= RESOLVED_PATHS_KEPT:
            self._resolved.clear()  # threads may race here: at worst a path resolves twice
        self._resolved[key] = found
        return found

    def _static(
        self, environ: WSGIEnvironment, start_response: StartResponse, path: str
    ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        if method not in ("GET", "HEAD"):
            body = b"405: METHOD_NOT_ALLOWED\n"
            start_response(
                _STATUS[405],
                [
                    ("Allow", "GET, HEAD"),
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        file = _static_file(self.public_dir, path)
        if file is None:
            body = b"404: NOT_FOUND\n"
            start_response(
                _STATUS[404],
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [] if method == "HEAD" else [body]
        content_type = _content_type(file)
        # HTML revalidates on every load so a deploy shows at once; assets get Vercel's
        # default for static files (cache, but revalidate before use).
        cache = (
            "no-cache"
            if content_type.startswith("text/html")
            else "public, max-age=0, must-revalidate"
        )
        data = b"" if method == "HEAD" else file.read_bytes()
        start_response(
            _STATUS[200],
            [
                ("Content-Type", content_type),
                ("Content-Length", str(file.stat().st_size)),
                ("Cache-Control", cache),
            ],
        )
        return [data]


def make_app(
    api_dir: Path = API_DIR, public_dir: Path = PUBLIC_DIR, *, trust_forwarded: bool | None = None
) -> WSGIApplication:
    """The router over api_dir and public_dir. Discovers the routes now; imports each
    function on its first request. trust_forwarded (default: the environment variable
    LOCAL_TRUST_FORWARDED=1) keeps client-sent X-Real-IP headers; never in front of
    real users."""
    if trust_forwarded is None:
        trust_forwarded = os.environ.get("LOCAL_TRUST_FORWARDED") == "1"
    return Router(api_dir, public_dir, trust_forwarded)


# ---------------------------------------------------------------- gunicorn


@dataclass(frozen=True)
class Options:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    api_dir: Path = API_DIR
    public_dir: Path = PUBLIC_DIR
    reload: bool = False


def _gunicorn_settings(options: Options) -> dict[str, Any]:
    return {
        "bind": [f"{options.host}:{options.port}"],
        "worker_class": "gthread",
        "workers": options.workers,
        "threads": options.threads,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        # The functions log one structured line per request themselves (lib/http.py).
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        # Workers build the router after the fork: no pool or socket crosses it.
        "preload_app": False,
        # gunicorn >= 25 opens a control socket at one fixed path per user, which two
        # servers (./run dev and a test) would fight over; nothing here uses it.
        "control_socket_disable": True,
        "reload": options.reload,
        "proc_name": "mock-exam-booking",
        # Vercel passes on URLs up to 14 KB and headers up to 16 KB; gunicorn's own
        # limits (4 KB and 8 KB) answered 414 to a request Vercel would serve (the
        # fuzzer's valid id and email of non-ASCII letters, percent-encoded). The
        # request line is unlimited here (gunicorn allows at most 8 KB otherwise).
        "limit_request_line": 0,
        "limit_request_field_size": VERCEL_HEADER_BYTES,
    }


def serve(options: Options) -> None:
    """Run gunicorn in this process until it is stopped (SIGINT, SIGTERM). Exits the
    process (SystemExit) when gunicorn ends, as gunicorn does."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    class _Application(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            for key, value in _gunicorn_settings(options).items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApplication:
            # Called in each worker after the fork (preload_app is off).
            return make_app(options.api_dir, options.public_dir)

    _Application().run()


def _stack_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """DATABASE_URL / REDIS_URL of the `./run dev` stack when it runs and they are not
    set, so `./run dev --no-wait` followed by `python -m local.server` just works."""
    found: dict[str, str] = {}
    if environ.get("DATABASE_URL") and environ.get("REDIS_URL"):
        return found
    from local import stack

    if not environ.get("DATABASE_URL"):
        port = stack.postgres_port(stack.DEFAULT_POSTGRES_DIR)
        if port is not None:
            found["DATABASE_URL"] = stack.postgres_url(port)
    if not environ.get("REDIS_URL"):
        port = stack.redis_port(stack.DEFAULT_REDIS_DIR)
        if port is not None:
            found["REDIS_URL"] = stack.redis_url(port)
    return found


# ---------------------------------------------------------------- as a child process


def command(options: Options) -> list[str]:
    """The command line that runs `options` in a fresh interpreter."""
    return [
        sys.executable, "-m", "local.server",
        "--host", options.host,
        "--port", str(options.port),
        "--workers", str(options.workers),
        "--threads", str(options.threads),
        "--api-dir", str(options.api_dir),
        "--public-dir", str(options.public_dir),
        *(["--reload"] if options.reload else []),
    ]  # fmt: skip


def port_in_use(host: str, port: int) -> bool:
    # SO_REUSEADDR as gunicorn binds: a port in TIME_WAIT is free to it, and must be here.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def start(
    options: Options, env: Mapping[str, str], output: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start the server as a child process with environment `env`; return once it
    accepts connections. Its stdout and stderr go to `output` when given (the
    reliability suite scans them), else to ours. Raises ServerError if the port is
    taken or the child exits."""
    if port_in_use(options.host, options.port):
        raise ServerError(
            f"port {options.port} on {options.host} is taken by another program; "
            f"stop it or choose another port"
        )
    process = subprocess.Popen(
        command(options), cwd=ROOT, env=dict(env), stdout=output, stderr=output
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(options.host, options.port):
        code = process.poll()
        if code is not None:
            raise ServerError(f"the API server exited with status {code} while starting")
        if time.monotonic() > deadline:
            stop(process)
            raise ServerError(f"the API server did not listen within {START_TIMEOUT_S:.0f} s")
        time.sleep(POLL_INTERVAL_S)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a child from start(): SIGTERM (requests in flight finish), then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(
    options: Options, env: Mapping[str, str], output: IO[bytes] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """start() ... stop(), for tests and scripts."""
    process = start(options, env, output)
    try:
        yield process
    finally:
        stop(process)


# ---------------------------------------------------------------- command line


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.server", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--workers", type=_positive, default=DEFAULT_WORKERS)
    parser.add_argument("--threads", type=_positive, default=DEFAULT_THREADS)
    parser.add_argument("--api-dir", type=Path, default=API_DIR)
    parser.add_argument("--public-dir", type=Path, default=PUBLIC_DIR)
    parser.add_argument(
        "--reload", action="store_true", help="restart the workers when loaded code changes"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        api_dir=args.api_dir,
        public_dir=args.public_dir,
        reload=args.reload,
    )
    for name, value in _stack_environment(os.environ).items():
        os.environ[name] = value
        print(f"{name} not set: using the ./run dev stack's ({value})", file=sys.stderr)
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            print(f"warning: {name} is not set; functions needing it will fail", file=sys.stderr)
    # Fail before forking workers, with the file named, rather than in every worker.
    discover_routes(options.api_dir)
    serve(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
