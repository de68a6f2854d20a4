"""The floor: a booking endpoint that does nothing but the one database call.

A plain WSGI callable: read the JSON body, call `hubspot_sync.book(...)` once on a
psycopg pool (autocommit, no prepared statements, as lib/db.py calls it), answer the
function's jsonb. No pydantic, no Redis, no envelope wrapper, no logging, no rate
limit. Served the same way as the real API (local.server's gunicorn settings:
gthread, the same workers and threads, the same pool size), what it sustains is what
Python plus one round trip costs on this machine; the real endpoint's ceiling is
reported as a share of it.

    python -m bench.bare_endpoint --port 3101 --workers 2 --threads 8
    (DATABASE_URL, DB_POOL_MAX_SIZE from the environment)

Every path answers as POST /api/bookings/create, with the same body, the same
Idempotency-Key header and the same status codes (201 booked, 200 replayed, 409 and
so on from the function's code) as the real endpoint, so one load generator drives
both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg_pool import ConnectionPool

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

_BOOK = (
    "select hubspot_sync.book(p_student_id => %s, p_email => %s, p_exam_id => %s,"
    " p_attending_location => %s, p_dominant_hand => %s, p_idempotency_key => %s)"
)
# The same status per rejection as lib/errors.py gives the real endpoint; anything
# else a rejection may say is a 409 there too.
_STATUS = {
    "INVALID_INPUT": "400 Bad Request",
    "INSUFFICIENT_CREDITS": "402 Payment Required",
    "CONTACT_NOT_FOUND": "404 Not Found",
    "EXAM_NOT_FOUND": "404 Not Found",
}
_DEFAULT_POOL = 4  # lib/config.py's DB_POOL_MAX_SIZE default
_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()


def _connections() -> ConnectionPool:
    """The process's pool, opened on first use (after gunicorn's fork)."""
    global _pool  # noqa: PLW0603 - one pool per process, as lib/db.py
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ConnectionPool(
                    os.environ["DATABASE_URL"],
                    min_size=1,
                    max_size=int(os.environ.get("DB_POOL_MAX_SIZE") or _DEFAULT_POOL),
                    kwargs={"autocommit": True, "prepare_threshold": None},
                    name="bare",
                )
    return _pool


def _answer(start_response: StartResponse, status: str, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        request = json.loads(environ["wsgi.input"].read(length))
    except ValueError:
        return _answer(start_response, "400 Bad Request", {"success": False})
    with _connections().connection() as conn:
        row = conn.execute(
            _BOOK,
            (
                request.get("student_id"),
                request.get("email"),
                request.get("mock_exam_id"),
                request.get("attending_location"),
                request.get("dominant_hand"),
                environ.get("HTTP_IDEMPOTENCY_KEY"),
            ),
        ).fetchone()
    answer: dict[str, Any] = row[0] if row else {}
    if answer.get("ok"):
        status = "200 OK" if answer.get("replayed") else "201 Created"
        return _answer(start_response, status, {"success": True, "data": answer["booking"]})
    code = str(answer.get("code"))
    error = {"success": False, "error": {"code": code, "message": answer.get("message")}}
    return _answer(start_response, _STATUS.get(code, "409 Conflict"), error)


def serve(port: int, workers: int, threads: int, host: str = "127.0.0.1") -> None:
    """Run `app` under gunicorn exactly as local.server runs the API."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    from local import server

    # The real server's own settings, so the two differ only in the callable.
    options = server.Options(host=host, port=port, workers=workers, threads=threads)
    settings = server._gunicorn_settings(options)  # "served the same way"
    settings["proc_name"] = "bench-bare-endpoint"

    class _Application(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApplication:
            return app

    _Application().run()


def command(port: int, workers: int, threads: int, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "bench.bare_endpoint",
        "--host", host, "--port", str(port),
        "--workers", str(workers), "--threads", str(threads),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_endpoint", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3101)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    serve(args.port, args.workers, args.threads, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
