"""Every api/ function loads and answers through Vercel's own bootstrap.

`vercel-runtime` (PyPI, pinned in requirements-dev.txt) is the code that runs a Python
function on Vercel. Each test starts a fresh interpreter, as an instance's cold start
is: the `__VC_HANDLER_*` environment names one function file, importing
`vercel_runtime.vc_init` imports that file by path (as module `api.bookings.[id]`),
checks that its `app` is WSGI and serves it on a threaded HTTP server on 127.0.0.1;
`vc_handler(event, None)` then sends it one request over HTTP:
    event = {"body": json.dumps({"method", "path", "headers", "body", "encoding"})}
where `encoding: "base64"` marks a base64 body (else the string is sent as UTF-8),
and answers {"statusCode", "headers": {name: [values]}, "body"} (body base64 with
`encoding` when it is not UTF-8).

Vercel's edge, not the runtime, routes: the request path stays the client's and a
dynamic segment is appended to the query string, so the event carries what
local/server.py computes for that (vercel_target). The runner wraps the resolved
`app` only to record the environ the function received (after checking the real app
is WSGI, as the runtime does), so a test can see that a dynamic id arrived.

A new api/ file fails test_every_function_has_a_request until REQUESTS says how to call
it: no endpoint skips this check.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from local.server import API_DIR, ROOT, Route, discover_routes, resolve, vercel_target
from tests.security.logscan import child_output
from tests.vercel.calls import CRON_SECRET, REQUESTS, check_answer, lambda_event

# A cold start imports psycopg, pydantic and redis (~0.5 s here) and the first request
# opens connections; a minute only catches a bootstrap that hangs.
RUN_TIMEOUT_S = 60

# Entries whose file is still to come (none: the sync's cron function has landed).
NOT_YET_WRITTEN: frozenset[str] = frozenset()

# Runs in the fresh interpreter: argv[1] is where to write the result (stdout and stderr
# belong to the function's logs); stdin is the event.
RUNNER = textwrap.dedent(
    """
    import json, sys
    from vercel_runtime import resolver

    seen = {}
    _resolve_app = resolver.resolve_app

    def _observing_resolve_app(module, module_name, variable):
        name, app = _resolve_app(module, module_name, variable)
        seen["interface"] = resolver.detect_app_type(app, module_name, name)[0]

        def observed(environ, start_response):
            for key in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH"):
                seen[key] = environ.get(key)
            return app(environ, start_response)

        return name, observed

    resolver.resolve_app = _observing_resolve_app
    from vercel_runtime import vc_init  # imports the function, starts its server

    response = vc_init.vc_handler(json.loads(sys.stdin.read()), None)
    with open(sys.argv[1], "w") as out:
        json.dump({"response": response, "seen": seen}, out)
    """
)


def _routes() -> dict[str, Route]:
    return {route.file.relative_to(ROOT).as_posix(): route for route in discover_routes(API_DIR)}


FUNCTION_FILES = sorted(_routes())


def test_every_function_has_a_request() -> None:
    missing = sorted(set(FUNCTION_FILES) - set(REQUESTS))
    assert not missing, f"add these to REQUESTS in {Path(__file__).name}: {missing}"
    stale = sorted(set(REQUESTS) - set(FUNCTION_FILES) - NOT_YET_WRITTEN)
    assert not stale, f"REQUESTS names files that do not exist: {stale}"


@dataclass(frozen=True)
class Result:
    status: int
    headers: dict[str, list[str]]
    body: Any
    seen: dict[str, Any]


def _bootstrap(route: Route, event: dict[str, Any], env: dict[str, str], tmp: Path) -> Result:
    relative = route.file.relative_to(ROOT).as_posix()
    out = tmp / "result.json"
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out)],
        # Vercel runs the bundle from its root, which is on sys.path (lib/ imports).
        cwd=ROOT,
        input=json.dumps(event).encode(),
        env={
            **env,
            "__VC_HANDLER_ENTRYPOINT": relative,
            "__VC_HANDLER_ENTRYPOINT_ABS": str(route.file),
            "__VC_HANDLER_MODULE_NAME": route.module_name,
            "__VC_HANDLER_VARIABLE_NAME": "app",
        },
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    logs = completed.stderr.decode(errors="replace") + completed.stdout.decode(errors="replace")
    child_output(f"vercel bootstrap {relative}", logs)  # for the suite's log scan
    assert completed.returncode == 0, f"{relative} did not bootstrap:\n{logs}"
    result = json.loads(out.read_text())
    response = result["response"]
    text = response["body"]
    if response.get("encoding") == "base64":
        text = base64.b64decode(text).decode()
    try:
        body = json.loads(text)
    except ValueError:
        pytest.fail(f"{relative} answered {response['statusCode']} without JSON: {text!r}\n{logs}")
    return Result(response["statusCode"], response["headers"], body, result["seen"])


@pytest.fixture(scope="module")
def function_env(database_url: str, redis_url: str) -> dict[str, str]:
    """What a deployed function's environment holds, pointed at the test servers; no
    other variable of this machine leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CRON_SECRET": CRON_SECRET,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.mark.slow
@pytest.mark.parametrize("file", FUNCTION_FILES)
def test_function_answers_through_the_vercel_bootstrap(
    file: str, function_env: dict[str, str], tmp_path: Path
) -> None:
    call = REQUESTS.get(file)
    if call is None:
        pytest.fail(f"no entry for {file} in REQUESTS")
    split = urlsplit(call.path)
    found = resolve(_routes().values(), split.path)
    assert found is not None, f"{call.path} is not served by any api/ file"
    route, params = found
    assert route.file.relative_to(ROOT).as_posix() == file, f"{call.path} reaches {route.file}"
    target = vercel_target(split.path, split.query, params)
    result = _bootstrap(route, lambda_event(call, target), function_env, tmp_path)

    assert result.seen["interface"] == "wsgi"
    assert result.seen["REQUEST_METHOD"] == call.method
    assert result.seen["PATH_INFO"] == split.path  # the original path, not the file's
    for name, value in params.items():
        # The dynamic value reaches the function in its path and, appended, its query.
        assert value in result.seen["PATH_INFO"].split("/")
        assert parse_qs(result.seen["QUERY_STRING"])[name][-1] == value
    if call.body is not None:
        assert int(result.seen["CONTENT_LENGTH"]) == len(json.dumps(call.body).encode())
    check_answer(call, result.status, result.headers, result.body)
