"""local/server.py: Vercel's routing of api/ and public/, on a fake tree of tiny WSGI
apps (so these tests hold whatever the real endpoints do), called in-process through
wsgiref's validator (which also holds the router to PEP 3333); and the real gunicorn
server serving the real api/ over TCP."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import socket
import textwrap
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from local import server

# Each fake function answers with what it was given, so a test sees exactly which
# file served a request and the environ it got.
ECHO = textwrap.dedent(
    """
    import json
    from pathlib import Path

    # One line per import: the router must import each file once, however many
    # requests and threads come.
    with Path(__file__).with_suffix(".loads").open("a") as loads:
        loads.write("x\\n")

    def app(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.dumps({
            "file": Path(__file__).relative_to(Path(__file__).parents[LEVEL]).as_posix(),
            "module": __name__,
            "method": environ["REQUEST_METHOD"],
            "path": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"],
            "body": environ["wsgi.input"].read(size).decode() if size else "",
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "real_ip": environ.get("HTTP_X_REAL_IP"),
        }).encode()
        start_response("200 OK", [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ])
        return [body]
    """
)
FUNCTIONS = (
    "api/health.py",
    "api/bookings/[id].py",
    "api/bookings/list.py",
    "api/bookings/create.py",
    "api/bookings/index.py",
    "api/mock-exams/[id]/capacity.py",
    "api/mock-exams/available.py",
    "api/[a]/x.py",
    "api/y/[b].py",
)
# Present in the tree, never a function: Vercel skips names starting with _ or .
# Each raises on import, so being imported at all would fail the test that asks.
NOT_FUNCTIONS = (
    "api/_helpers.py",
    "api/_lib/db.py",
    "api/.hidden.py",
    "api/__pycache__/stale.py",
    "api/bookings/_shared.py",
)
PAGES = {
    "public/index.html": b"<!doctype html><title>book</title>",
    "public/admin/index.html": b"<!doctype html><title>admin</title>",
    "public/app.js": b"console.log('hi')",
    "public/style.css": b"body{}",
    "public/data.json": b"{}",
    "public/logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "public/favicon.png": b"\x89PNG\r\n\x1a\n",
}
SECRET = b"outside public/"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _write(root: Path, relative: str, data: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for relative in FUNCTIONS:
        level = relative.count("/")  # parents[level] of the file is the tree root
        _write(tmp_path, relative, ECHO.replace("LEVEL", str(level)).encode())
    for relative in NOT_FUNCTIONS:
        _write(tmp_path, relative, b"raise RuntimeError('not a function, never imported')\n")
    for relative, data in PAGES.items():
        _write(tmp_path, relative, data)
    _write(tmp_path, "secret.txt", SECRET)
    return tmp_path


@pytest.fixture
def app(tree: Path) -> server.Router:
    router = server.make_app(tree / "api", tree / "public")
    assert isinstance(router, server.Router)
    return router


def call(
    app: Any,
    path: str,
    *,
    method: str = "GET",
    query: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    remote_addr: str = "10.1.2.3",
    raw_uri: str | None = None,
) -> Reply:
    """One request, as a PEP 3333 server would make it (PATH_INFO decoded; the
    request target as sent in RAW_URI if given, as gunicorn keeps it)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REMOTE_ADDR": remote_addr,
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.input": BytesIO(body),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if raw_uri is not None:
        environ["RAW_URI"] = raw_uri
    setup_testing_defaults(environ)
    started: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        started["status"] = int(status.split(maxsplit=1)[0])
        started["headers"] = dict(response_headers)
        return lambda data: None

    result = validator(app)(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    return Reply(started["status"], started["headers"], data)


def loads(tree: Path, relative: str) -> int:
    marker = (tree / relative).with_suffix(".loads")
    return len(marker.read_text().splitlines()) if marker.exists() else 0


# ---------------------------------------------------------------- routes


def test_routes_cover_function_files_only(app: server.Router) -> None:
    paths = {route.path for route in app.routes}
    assert paths == {
        "/api/health",
        "/api/bookings/[id]",
        "/api/bookings/list",
        "/api/bookings/create",
        "/api/bookings",
        "/api/mock-exams/[id]/capacity",
        "/api/mock-exams/available",
        "/api/[a]/x",
        "/api/y/[b]",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/api/_helpers",
        "/api/_lib/db",
        "/api/.hidden",
        "/api/__pycache__/stale",
        "/api/bookings/_shared/x",
    ],
)
def test_helper_files_are_not_served_nor_imported(app: server.Router, path: str) -> None:
    reply = call(app, path)
    assert reply.status == 404
    assert reply.json()["error"]["code"] == "NOT_FOUND"


def test_a_static_segment_beats_a_dynamic_one(app: server.Router) -> None:
    assert call(app, "/api/bookings/list").json()["file"] == "api/bookings/list.py"
    assert (
        call(app, "/api/bookings/create", method="POST").json()["file"] == "api/bookings/create.py"
    )
    assert call(app, "/api/bookings/42").json()["file"] == "api/bookings/[id].py"


def test_the_earliest_differing_segment_decides(app: server.Router) -> None:
    # /api/y/x fits both [a]/x.py and y/[b].py: the static "y" comes first.
    reply = call(app, "/api/y/x").json()
    assert reply["file"] == "api/y/[b].py"
    assert parse_qs(reply["query"]) == {"b": ["x"]}
    assert call(app, "/api/z/x").json()["file"] == "api/[a]/x.py"


def test_a_dynamic_value_is_appended_to_the_query_and_the_path_kept(app: server.Router) -> None:
    reply = call(
        app, "/api/bookings/00000000-0000-4000-8000-000000000000", query="email=a%40b.c"
    ).json()
    assert reply["path"] == "/api/bookings/00000000-0000-4000-8000-000000000000"
    assert reply["query"] == "email=a%40b.c&id=00000000-0000-4000-8000-000000000000"


def test_a_client_sent_id_stays_first_and_the_path_one_is_appended(app: server.Router) -> None:
    reply = call(app, "/api/bookings/42", query="id=7").json()
    assert parse_qs(reply["query"]) == {"id": ["7", "42"]}
    assert reply["path"] == "/api/bookings/42"


def test_dynamic_directories_route_with_their_value(app: server.Router) -> None:
    reply = call(app, "/api/mock-exams/abc/capacity").json()
    assert reply["file"] == "api/mock-exams/[id]/capacity.py"
    assert reply["query"] == "id=abc"
    assert call(app, "/api/mock-exams/available").json()["file"] == "api/mock-exams/available.py"


def test_dynamic_values_are_query_encoded(app: server.Router) -> None:
    reply = call(app, "/api/bookings/a b&c=d").json()
    assert parse_qs(reply["query"]) == {"id": ["a b&c=d"]}


def test_functions_get_the_path_as_sent_when_the_server_kept_it(app: server.Router) -> None:
    # Vercel's runtime passes the raw path; an encoded slash stays inside its segment.
    reply = call(
        app, "/api/bookings/a/b c", query="x=1", raw_uri="/api/bookings/a%2Fb%20c?x=1"
    ).json()
    assert reply["file"] == "api/bookings/[id].py"
    assert reply["path"] == "/api/bookings/a%2Fb%20c"
    assert parse_qs(reply["query"]) == {"x": ["1"], "id": ["a/b c"]}
    static_wins = call(app, "/api/bookings/list", raw_uri="/api/bookings/%6Cist").json()
    assert static_wins["file"] == "api/bookings/list.py"


def test_a_remembered_path_routes_as_the_first_time(app: server.Router) -> None:
    # The same text as sent (encoded) and as decoded by a server routes differently;
    # the router's memory of resolved paths must keep the two apart.
    for _ in range(2):
        as_sent = call(app, "/api/bookings/x", raw_uri="/api/bookings/a%2Fb").json()
        assert parse_qs(as_sent["query"]) == {"id": ["a/b"]}
        decoded = call(app, "/api/bookings/a%2Fb").json()
        assert parse_qs(decoded["query"]) == {"id": ["a%2Fb"]}
        assert call(app, "/api/nowhere/at/all").status == 404


def test_the_memory_of_paths_stays_bounded(app: server.Router) -> None:
    for n in range(server.RESOLVED_PATHS_KEPT + 10):
        assert parse_qs(call(app, f"/api/bookings/{n}").json()["query"]) == {"id": [str(n)]}
        assert len(app._resolved) <= server.RESOLVED_PATHS_KEPT
    assert call(app, "/api/bookings/list").json()["file"] == "api/bookings/list.py"


@pytest.mark.parametrize(
    ("path", "file"),
    [
        ("/api/health/", "api/health.py"),
        ("/api/bookings/list/", "api/bookings/list.py"),
        ("/api/bookings/42/", "api/bookings/[id].py"),
        ("/api/bookings", "api/bookings/index.py"),
        ("/api/bookings/", "api/bookings/index.py"),
    ],
)
def test_a_trailing_slash_and_index_files(app: server.Router, path: str, file: str) -> None:
    assert call(app, path).json()["file"] == file


@pytest.mark.parametrize(
    "path",
    [
        "/api",
        "/api/",
        "/api/nope",
        "/api/health/extra",
        "/api/bookings/42/x",
        "/api//health",
        "/api/mock-exams//capacity",
    ],
)
def test_unknown_api_paths_answer_404_in_the_envelope(app: server.Router, path: str) -> None:
    reply = call(app, path)
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert body["success"] is False
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["message"]
    # As every function's answer: a request id in the body and the header, and CORS.
    assert len(body["error"]["request_id"]) == 32
    assert reply.headers["X-Request-Id"] == body["error"]["request_id"]
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


def test_an_unknown_api_path_keeps_the_clients_request_id(app: server.Router) -> None:
    reply = call(app, "/api/nope", headers={"X-Request-Id": "trace-1234-abcd"})
    assert reply.status == 404
    assert reply.json()["error"]["request_id"] == "trace-1234-abcd"
    assert reply.headers["X-Request-Id"] == "trace-1234-abcd"
    other = call(app, "/api/nope", headers={"X-Request-Id": "bad id\u0000"})
    assert other.json()["error"]["request_id"] != "bad id\u0000"


def test_method_and_body_reach_the_function(app: server.Router) -> None:
    reply = call(app, "/api/bookings/create", method="POST", body=b'{"a": 1}').json()
    assert reply["method"] == "POST"
    assert reply["body"] == '{"a": 1}'


def test_forwarded_headers_carry_the_client_the_server_saw(app: server.Router) -> None:
    # Vercel's edge overwrites them: a client cannot pick its rate-limit identity.
    reply = call(
        app, "/api/health", headers={"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"}
    ).json()
    assert reply["forwarded_for"] == "10.1.2.3"
    assert reply["real_ip"] == "10.1.2.3"


def test_each_function_is_imported_once_under_vercels_module_name(
    app: server.Router, tree: Path
) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: call(app, "/api/bookings/42"), range(32)))
    assert {reply.json()["module"] for reply in replies} == {"api.bookings.[id]"}
    assert loads(tree, "api/bookings/[id].py") == 1
    assert loads(tree, "api/bookings/list.py") == 0  # nothing is imported before it is asked for


def test_a_function_that_fails_to_import_answers_500_and_is_retried(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tree / "api" / "health.py"
    good = broken.read_text()
    broken.write_text("raise RuntimeError('boom at import')\n")
    app = server.make_app(tree / "api", tree / "public")
    with caplog.at_level("ERROR", logger="local.server"):
        reply = call(app, "/api/health")
    assert reply.status == 500
    assert reply.json()["error"]["code"] == "FUNCTION_INVOCATION_FAILED"
    assert "boom at import" in caplog.text
    assert "boom" not in reply.body.decode()  # internals stay in the log
    broken.write_text(good)
    assert call(app, "/api/health").status == 200


def test_a_function_that_raises_answers_500(tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(
        tree,
        "api/crash.py",
        b"def app(environ, start_response):\n    raise ValueError('secret detail')\n",
    )
    _write(tree, "api/no_app.py", b"application = None\n")
    app = server.make_app(tree / "api", tree / "public")
    with caplog.at_level("ERROR", logger="local.server"):
        for path in ("/api/crash", "/api/no_app"):
            reply = call(app, path)
            assert reply.status == 500
            assert reply.json()["error"]["code"] == "FUNCTION_INVOCATION_FAILED"
            assert "secret detail" not in reply.body.decode()
    assert "secret detail" in caplog.text


@pytest.mark.parametrize(
    ("file", "beside"), [("api/x.py", "api/x/index.py"), ("api/[id].py", "api/[id]/credits.py")]
)
def test_a_file_beside_a_directory_of_its_name_is_refused(
    tmp_path: Path, file: str, beside: str
) -> None:
    # `vercel dev` fails every function (EISDIR) on this layout; `vercel build` takes it.
    _write(tmp_path, file, ECHO.encode())
    _write(tmp_path, beside, ECHO.encode())
    with pytest.raises(server.RouteError, match="stands beside the directory of its name"):
        server.make_app(tmp_path / "api", tmp_path / "public")


def test_catch_all_segments_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "api/[...slug].py", ECHO.encode())
    with pytest.raises(server.RouteError, match="unsupported dynamic segment"):
        server.make_app(tmp_path / "api", tmp_path / "public")


def test_no_api_dir_serves_no_functions(tmp_path: Path) -> None:
    app = server.make_app(tmp_path / "api", tmp_path / "public")
    assert call(app, "/api/health").status == 404


# ---------------------------------------------------------------- static files


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/", "public/index.html"),
        ("/index.html", "public/index.html"),
        ("/admin", "public/admin/index.html"),
        ("/admin/", "public/admin/index.html"),
        ("/admin/index.html", "public/admin/index.html"),
    ],
)
def test_pages_and_index_html(app: server.Router, path: str, page: str) -> None:
    reply = call(app, path)
    assert reply.status == 200
    assert reply.body == PAGES[page]
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-cache"
    assert reply.headers["Content-Length"] == str(len(PAGES[page]))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/app.js", "application/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/data.json", "application/json; charset=utf-8"),
        ("/logo.svg", "image/svg+xml; charset=utf-8"),
        ("/favicon.png", "image/png"),
    ],
)
def test_content_types(app: server.Router, path: str, content_type: str) -> None:
    reply = call(app, path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    assert reply.body == PAGES["public" + path]
    assert "no-cache" not in reply.headers["Cache-Control"]


def test_head_has_headers_and_no_body(app: server.Router) -> None:
    reply = call(app, "/app.js", method="HEAD")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.headers["Content-Length"] == str(len(PAGES["public/app.js"]))


def test_other_methods_on_pages_are_refused(app: server.Router) -> None:
    reply = call(app, "/index.html", method="POST", body=b"x")
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/missing.html", "/admin/missing", "/app.js/", "/api.html"])
def test_missing_pages_are_404(app: server.Router, path: str) -> None:
    assert call(app, path).status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/admin/../../secret.txt",
        "/./../secret.txt",
        "/..\\secret.txt",
        "/admin/..",
        "/%2e%2e/secret.txt",  # had the server not decoded it: still no such file
        "/secret.txt\0.html",
        "/link-out.txt",
        "/link-dir/secret.txt",
    ],
)
def test_no_file_outside_public_is_served(app: server.Router, tree: Path, path: str) -> None:
    (tree / "public" / "link-out.txt").symlink_to(tree / "secret.txt")
    (tree / "public" / "link-dir").symlink_to(tree)
    reply = call(app, path)
    assert reply.status == 404
    assert SECRET not in reply.body


def test_a_symlink_inside_public_is_served(app: server.Router, tree: Path) -> None:
    (tree / "public" / "alias.css").symlink_to(tree / "public" / "style.css")
    assert call(app, "/alias.css").body == PAGES["public/style.css"]


def test_no_public_dir_serves_no_pages(tree: Path) -> None:
    app = server.make_app(tree / "api", tree / "nothing")
    assert call(app, "/").status == 404


# ---------------------------------------------------------------- over TCP


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((server.DEFAULT_HOST, 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str) -> Reply:
    connection = http.client.HTTPConnection(server.DEFAULT_HOST, port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def test_gunicorn_serves_the_real_api(database_url: str, redis_url: str) -> None:
    port = _free_port()
    options = server.Options(port=port, workers=2, threads=2)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    with server.running(options, env) as process:
        health = _get(port, "/api/health")
        assert health.status == 200, health.body
        assert health.json()["success"] is True
        missing = _get(port, "/api/no-such-endpoint")
        assert missing.status == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"
        assert process.poll() is None
    assert process.returncode == 0  # SIGTERM: a graceful stop


def test_gunicorn_routes_the_path_as_sent(tree: Path) -> None:
    port = _free_port()
    options = server.Options(
        port=port, workers=1, threads=2, api_dir=tree / "api", public_dir=tree / "public"
    )
    with server.running(options, os.environ):
        reply = _get(port, "/api/bookings/a%2Fb?x=1").json()
        assert reply["file"] == "api/bookings/[id].py"
        assert reply["path"] == "/api/bookings/a%2Fb"
        assert parse_qs(reply["query"]) == {"x": ["1"], "id": ["a/b"]}
        page = _get(port, "/admin/")
        assert page.body == PAGES["public/admin/index.html"]


def test_gunicorn_passes_on_urls_and_headers_as_long_as_vercels(tree: Path) -> None:
    """Vercel's limits are 14 KB for the URL and 16 KB for a header; gunicorn's own
    (4 KB, 8 KB) answered 414 to a request the fuzzer made (reliability/fuzz.py)."""
    port = _free_port()
    options = server.Options(
        port=port, workers=1, threads=2, api_dir=tree / "api", public_dir=tree / "public"
    )
    with server.running(options, os.environ):
        connection = http.client.HTTPConnection(server.DEFAULT_HOST, port, timeout=30)
        try:
            connection.request(
                "GET", "/api/bookings/1?email=" + "%C3%A9" * 2000, headers={"X-Long": "a" * 12000}
            )
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
    assert response.status == 200, body[:200]
    assert json.loads(body)["file"] == "api/bookings/[id].py"


def test_start_refuses_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind((server.DEFAULT_HOST, 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(server.ServerError, match="taken"):
            server.start(server.Options(port=port), os.environ)
