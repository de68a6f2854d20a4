"""The function wrapper: every `api/` file is `app = function(name, POST=handler, ...)`.

It owns everything an endpoint should not repeat: method dispatch (405 with Allow,
OPTIONS for CORS preflight), the body (size limit → 413, JSON → 400, nesting deeper
than 64 levels → 400), validation of pydantic models (400 naming the field), the
per-client rate limit shared through Redis (429 with Retry-After), one response
envelope
    {"success": true, "data": ...}  /  {"success": false, "error": {"code", "message", ...}}
a request id on every response, CORS headers, and one structured log line per
request. Errors flow one way: handlers raise lib.errors.AppError (or return data);
anything else is logged with its traceback and answered as a bare 500 with no
internals.

The result is a plain WSGI callable, which is what Vercel's Python runtime loads.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from lib import log
from lib.config import ConfigError
from lib.errors import AppError

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from pydantic import BaseModel
    from pydantic_core import ErrorDetails

logger = logging.getLogger("api")

# Our largest legitimate body (a booking create) is well under 1 KB; 16 KB leaves room
# for any future field and still refuses a flood of megabytes before we parse it.
MAX_BODY_BYTES = 16 * 1024
# Our bodies are flat objects (the deepest, an admin's credit adjustment, is 2 levels).
# json.loads recurses once per level and raises RecursionError near 1,000, which no
# handler expects; 64 is far above any real body and far below that.
MAX_JSON_DEPTH = 64
# The tokens that matter to nesting, left to right: a JSON string (escapes included;
# to the end of the text if unclosed), whose brackets are text, or a bracket. One pass,
# linear: a string is consumed whole, so no quote inside it starts another match.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
CORS_HEADERS = {
    # Students authenticate with student_id + email in each request, never with
    # cookies, so any origin may call (the existing frontend runs on another one).
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key, Authorization, X-Request-Id",
    "Access-Control-Expose-Headers": "X-Request-Id, Retry-After",
    # Browsers cache the preflight for 10 minutes: one OPTIONS per page visit.
    "Access-Control-Max-Age": "600",
}


@dataclass(frozen=True)
class RateLimit:
    """`limit` requests per `window_s` seconds per client, shared by all instances."""

    bucket: str
    limit: int
    window_s: int


@dataclass
class Response:
    data: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Extra fields for this request's one log line (ids of what it changed): one line
    # per request, not one more per event (a log line costs ~60 us of CPU, issue 16).
    log: dict[str, Any] = field(default_factory=dict)


Handler = Callable[["Request"], Response | Any]


class Request:
    def __init__(self, environ: WSGIEnvironment, request_id: str) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "GET").upper()
        self.path: str = environ.get("PATH_INFO", "") or "/"
        self.query: dict[str, str] = dict(
            parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        )
        self.request_id = request_id
        self._body: bytes | None = None

    def header(self, name: str) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            key = "CONTENT_TYPE"
        value = self.environ.get(key)
        return str(value) if value is not None else None

    @property
    def client_id(self) -> str:
        """Who to rate-limit: the client address Vercel's edge saw."""
        forwarded = self.header("X-Real-IP") or (self.header("X-Forwarded-For") or "").split(",")[0]
        return forwarded.strip()[:64] or str(self.environ.get("REMOTE_ADDR", "unknown"))

    def segment(self, index: int) -> str:
        """A path segment (negative counts from the end). Dynamic ids come from the path,
        never from the query string, where a client could override Vercel's `id=`."""
        parts = [p for p in self.path.split("/") if p]
        try:
            return parts[index]
        except IndexError:
            raise AppError("NOT_FOUND") from None

    def body(self) -> bytes:
        if self._body is None:
            try:
                length = int(self.environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise AppError("INVALID_INPUT", "Content-Length is not a number") from None
            if length > MAX_BODY_BYTES:
                raise AppError("PAYLOAD_TOO_LARGE")
            stream = self.environ.get("wsgi.input")
            data = stream.read(length) if stream is not None and length > 0 else b""
            # A body sent without Content-Length (chunked) is read up to the limit + 1.
            if length == 0 and stream is not None and self.environ.get("HTTP_TRANSFER_ENCODING"):
                data = stream.read(MAX_BODY_BYTES + 1)
                if len(data) > MAX_BODY_BYTES:
                    raise AppError("PAYLOAD_TOO_LARGE")
            self._body = data
        return self._body

    def json(self) -> dict[str, Any]:
        raw = self.body()
        content_type = (self.header("Content-Type") or "application/json").split(";")[0]
        if raw and content_type.strip().lower() not in ("application/json", "text/plain"):
            raise AppError("UNSUPPORTED_MEDIA_TYPE")
        if not raw.strip():
            return {}
        try:
            text = raw.decode(json.detect_encoding(raw), "surrogatepass")
            too_deep = _nests_deeper_than(text, MAX_JSON_DEPTH)
            value = None if too_deep else json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise AppError("INVALID_JSON") from None
        except RecursionError:
            # json.loads's own limit, should the scan ever miss a body: still the
            # client's error, never a 500.
            too_deep = True
        if too_deep:
            raise AppError(
                "INVALID_JSON", f"The request body nests deeper than {MAX_JSON_DEPTH} levels"
            )
        if not isinstance(value, dict):
            raise AppError("INVALID_JSON", "The request body must be a JSON object")
        return value

    def model[M: BaseModel](self, model: type[M]) -> M:
        return validate(model, self.json())

    def query_model[M: BaseModel](self, model: type[M]) -> M:
        return validate(model, self.query)


def _nests_deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON text opens more than `limit` arrays or objects inside one
    another. Checked before json.loads rather than left to its RecursionError, whose
    depth depends on how much stack the server already uses, and a body that parses
    just under it recurses again in validation and logging. Counting the opening
    brackets (C speed) settles almost every body; the rest cost one linear regex pass
    over at most MAX_BODY_BYTES, brackets inside strings left out. Malformed JSON may
    be miscounted; json.loads refuses it anyway."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for piece in _STRING_OR_BRACKET.findall(text):
        if piece in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif piece in ("]", "}"):
            depth -= 1
    return False


def validate[M: BaseModel](model: type[M], data: Mapping[str, Any]) -> M:
    """Validate input against a pydantic model; 400 naming the first bad field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(part) for part in err["loc"]) or "body",
                "message": _message(err),
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        first = details[0] if details else {"field": "body", "message": "invalid"}
        error = AppError(
            "VALIDATION_ERROR", f"{first['field']}: {first['message']}", first["field"]
        )
        error.details = details
        raise error from None


def _message(error: ErrorDetails) -> str:
    """pydantic's message in words a student can act on: a pattern mismatch quotes the
    regular expression, so it says what the pattern asks for instead (lib/models.py);
    our own validators' ValueErrors lose pydantic's "Value error, " prefix."""
    context = error.get("ctx") or {}
    if error["type"] == "string_pattern_mismatch":
        from lib.models import PATTERN_MESSAGES

        return PATTERN_MESSAGES.get(str(context.get("pattern")), "is not in the expected format")
    if error["type"] == "value_error" and "error" in context:
        return str(context["error"])
    return error["msg"]


def new_request_id(environ: WSGIEnvironment) -> str:
    """The id this request is logged and answered under: the client's X-Request-Id
    when it is well formed, else a new one."""
    incoming = str(environ.get("HTTP_X_REQUEST_ID", ""))
    # os.urandom, not uuid: importing uuid costs ~13 ms of every cold start.
    return incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, default=str, separators=(",", ":")).encode()


def _error_payload(error: AppError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    if error.details:
        body["details"] = error.details
    body["request_id"] = request_id
    return {"success": False, "error": body}


def check_rate_limit(request: Request, limit: RateLimit) -> None:
    """Count this request against the client's shared budget; 429 when over it.
    Redis down or absent: let the request through (the database is the arbiter of
    everything that matters; the limit only protects it)."""
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import hit_rate_limit, rate_key

    client = redis()
    if client is None:
        return
    try:
        decision = hit_rate_limit(
            client,
            key=rate_key(limit.bucket, request.client_id),
            limit=limit.limit,
            window_s=limit.window_s,
        )
    except RedisUnavailable:
        return
    if not decision.allowed:
        error = AppError("RATE_LIMITED")
        error.retry_after_s = max(1, decision.retry_after_s)
        raise error


def _log_dependency_failure(error: AppError, request_id: str, route: str) -> None:
    """What the database (or driver) said, for whoever reads the log: the answer says
    only INTERNAL_ERROR or *_UNAVAILABLE."""
    cause = error.__cause__
    detail = getattr(error, "detail", None) or (str(cause) if cause else None)
    log.event(
        logger,
        logging.ERROR,
        "dependency failure",
        request_id=request_id,
        route=route,
        code=error.code,
        sqlstate=getattr(error, "sqlstate", None) or getattr(cause, "sqlstate", None),
        error=type(cause).__name__ if cause else None,
        detail=log.scrub(detail),
    )


def function(
    name: str,
    *,
    rate_limit: RateLimit | None = None,
    **handlers: Handler,
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """The WSGI app of one endpoint. `handlers` maps HTTP methods (GET=, POST=,
    DELETE=) to functions taking a Request and returning data (→ 200) or a Response."""
    allowed = sorted({m.upper() for m in handlers} | {"OPTIONS"})
    by_method = {m.upper(): h for m, h in handlers.items()}
    log.configure()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = log.now_ms()
        request_id = new_request_id(environ)
        request = Request(environ, request_id)
        headers = {**CORS_HEADERS, "X-Request-Id": request_id, "Cache-Control": "no-store"}
        code: str | None = None
        logged: dict[str, Any] = {}
        try:
            if request.method == "OPTIONS":
                status, payload = 204, None
                headers["Allow"] = ", ".join(allowed)
            elif request.method not in by_method:
                headers["Allow"] = ", ".join(allowed)
                raise AppError("METHOD_NOT_ALLOWED", f"Use {', '.join(allowed)}")
            else:
                if rate_limit is not None:
                    check_rate_limit(request, rate_limit)
                result = by_method[request.method](request)
                response = result if isinstance(result, Response) else Response(result)
                status = response.status
                headers.update(response.headers)
                logged = response.log
                payload = {"success": True, "data": response.data}
        except AppError as error:
            code = error.code
            status, payload = error.status, _error_payload(error, request_id)
            if error.retryable and error.retry_after_s:
                headers["Retry-After"] = str(error.retry_after_s)
            if error.status >= 500:
                _log_dependency_failure(error, request_id, name)
        except ConfigError as error:
            # Named in the log (the variable, never its value), without a traceback:
            # the fix is in the deployment's environment, not in the code.
            code = "SERVICE_MISCONFIGURED"
            log.event(
                logger,
                logging.ERROR,
                "configuration error",
                request_id=request_id,
                route=name,
                error=str(error),
            )
            status, payload = 503, _error_payload(AppError(code), request_id)
        except Exception:
            code = "INTERNAL_ERROR"
            logger.exception(
                "unhandled error", extra={"fields": {"request_id": request_id, "route": name}}
            )
            status, payload = 500, _error_payload(AppError("INTERNAL_ERROR"), request_id)

        body = b"" if payload is None else _encode(payload)
        if payload is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        headers["Content-Length"] = str(len(body))
        start_response(f"{status} {_STATUS_TEXT.get(status, 'Unknown')}", list(headers.items()))
        log.event(
            logger,
            logging.INFO,
            "request",
            request_id=request_id,
            route=name,
            method=request.method,
            status=status,
            code=code,
            duration_ms=round(log.now_ms() - started, 2),
            **logged,
        )
        return [body]

    return app
