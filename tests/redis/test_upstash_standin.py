"""The Upstash stand-in (local/standins/upstash.py) on the wire, with plain HTTP, held
to Upstash's documented REST API: upstash.com/docs/redis/features/restapi."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis as redis_py
import requests
from upstash_redis import Redis as UpstashRedis

from local.standins.upstash import StandIn, serve
from tests.redis.conftest import TOKEN
from tests.redis.faults import closed_port

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE64 = {**AUTH, "Upstash-Encoding": "base64"}
# Loopback requests answer in milliseconds; this only bounds a hung test.
HTTP_TIMEOUT_S = 10


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def post(
    http: requests.Session,
    standin: StandIn,
    path: str,
    body: object,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    response = http.post(
        standin.url + path, json=body, headers=AUTH if headers is None else headers,
        timeout=HTTP_TIMEOUT_S,
    )  # fmt: skip
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, response.json()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_without_the_token_401(
    http: requests.Session, standin: StandIn, headers: dict[str, str]
) -> None:
    for path in ("/", "/pipeline", "/multi-exec"):
        status, body = post(http, standin, path, ["PING"], headers)
        assert (status, body) == (401, {"error": "Unauthorized"})


def test_token_as_query_parameter(standin: StandIn) -> None:
    # Sent with http.client, which logs nothing: a token in a URL must reach no log
    # line, the tests' own client's included (tests/security/logscan.py).
    connection = HTTPConnection(urlsplit(standin.url).netloc, timeout=HTTP_TIMEOUT_S)
    try:
        connection.request("POST", f"/?_token={TOKEN}", body=json.dumps(["PING"]))
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"result": "PONG"})
    finally:
        connection.close()


def test_single_command_results(http: requests.Session, standin: StandIn, prefix: str) -> None:
    key = prefix + "k"
    assert post(http, standin, "/", ["SET", key, "bar", "EX", 30]) == (200, {"result": "OK"})
    assert post(http, standin, "/", ["GET", key]) == (200, {"result": "bar"})
    assert post(http, standin, "/", ["GET", prefix + "none"]) == (200, {"result": None})
    assert post(http, standin, "/", ["APPEND", key, 1.5]) == (200, {"result": 6})
    assert post(http, standin, "/", ["MGET", key, prefix + "none"]) == (
        200,
        {"result": ["bar1.5", None]},
    )


def test_command_error_is_400_with_redis_message(
    http: requests.Session, standin: StandIn, prefix: str
) -> None:
    status, body = post(http, standin, "/", ["GET"])
    assert status == 400
    assert body["error"].startswith("ERR wrong number of arguments")
    status, body = post(http, standin, "/", ["EVALSHA", "0" * 40, 0])
    assert status == 400
    assert body["error"].startswith("NOSCRIPT")  # the code the client looks for


def test_base64_encodes_every_string_but_ok(
    http: requests.Session, standin: StandIn, prefix: str
) -> None:
    key = prefix + "k"
    assert post(http, standin, "/", ["SET", key, "bar", "EX", 30], BASE64) == (
        200,
        {"result": "OK"},
    )
    assert post(http, standin, "/", ["GET", key], BASE64) == (200, {"result": b64("bar")})
    assert post(http, standin, "/", ["PING"], BASE64) == (200, {"result": b64("PONG")})
    assert post(http, standin, "/", ["STRLEN", key], BASE64) == (200, {"result": 3})
    nested = ["EVAL", "return {1, 'a', {'b', false}, 'OK'}", 0]
    assert post(http, standin, "/", nested, BASE64) == (
        200,
        {"result": [1, b64("a"), [b64("b"), None], "OK"]},
    )
    status, body = post(http, standin, "/", ["GET"], BASE64)
    assert status == 400 and body["error"].startswith("ERR")  # errors are never encoded


def test_invalid_utf8_is_replaced_without_base64(
    http: requests.Session, standin: StandIn, prefix: str, admin: redis_py.Redis
) -> None:
    admin.set(prefix + "bin", b"a\xffb", ex=30)
    assert post(http, standin, "/", ["GET", prefix + "bin"]) == (200, {"result": "a\ufffdb"})
    assert post(http, standin, "/", ["GET", prefix + "bin"], BASE64) == (
        200,
        {"result": base64.b64encode(b"a\xffb").decode()},
    )


def test_pipeline_answers_each_command(
    http: requests.Session, standin: StandIn, prefix: str
) -> None:
    key = prefix + "p"
    status, body = post(
        http,
        standin,
        "/pipeline",
        [["SET", key, "valuex", "EX", 30], ["INCR", key], ["NOSUCHCOMMAND"], ["GET", key]],
    )
    assert status == 200
    assert body[0] == {"result": "OK"}
    assert body[1] == {"error": "ERR value is not an integer or out of range"}
    assert body[2]["error"].startswith("ERR unknown command")
    assert body[3] == {"result": "valuex"}  # not atomic: later commands still ran


def test_multi_exec_runs_atomically(http: requests.Session, standin: StandIn, prefix: str) -> None:
    key = prefix + "m"
    status, body = post(
        http,
        standin,
        "/multi-exec",
        [["SET", key, "1", "EX", 30], ["INCR", key], ["SET", key, "x", "EX", 30], ["INCR", key]],
        BASE64,
    )
    assert status == 200
    assert body == [
        {"result": "OK"},
        {"result": 2},
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},  # runs on, as Redis does
    ]


def test_multi_exec_is_discarded_whole(
    http: requests.Session, standin: StandIn, prefix: str, admin: redis_py.Redis
) -> None:
    key = prefix + "d"
    status, body = post(
        http, standin, "/multi-exec", [["SET", key, "1", "EX", 30], ["NOSUCHCOMMAND"]]
    )
    assert status == 400
    assert set(body) == {"error"} and body["error"].startswith("ERR unknown command")
    assert not admin.exists(key)


def test_multi_exec_pairs_are_never_interleaved(standin: StandIn, prefix: str) -> None:
    key = prefix + "atomic"
    mismatches: list[tuple[int, int]] = []

    def work() -> None:
        with requests.Session() as session:
            for _ in range(30):
                response = session.post(
                    standin.url + "/multi-exec",
                    json=[["INCR", key], ["EXPIRE", key, 30], ["GET", key]],
                    headers=AUTH,
                    timeout=HTTP_TIMEOUT_S,
                )
                incr, _, get = response.json()
                if int(get["result"]) != incr["result"]:
                    mismatches.append((incr["result"], int(get["result"])))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/", [], 400),
        ("/", {"command": "GET"}, 400),
        ("/", ["SET", "k", {"nested": True}], 400),
        ("/", ["SET", "k", True], 400),
        ("/", ["BLPOP", "k", 0], 400),
        ("/", ["SELECT", 1], 400),
        ("/pipeline", ["GET", "k"], 400),
        ("/multi-exec", [], 400),
        ("/set/foo/bar", ["PING"], 404),
    ],
)
def test_bad_requests(
    http: requests.Session, standin: StandIn, path: str, body: object, status: int
) -> None:
    got, reply = post(http, standin, path, body)
    assert got == status
    assert set(reply) == {"error"}


def test_not_json_and_wrong_method(http: requests.Session, standin: StandIn) -> None:
    response = http.post(standin.url, data=b"{", headers=AUTH, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 400 and "error" in response.json()
    response = http.get(standin.url + "/get/foo", headers=AUTH, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 405


def test_redis_down_behind_it_is_503(http: requests.Session) -> None:
    with serve(f"redis://127.0.0.1:{closed_port()}/0", TOKEN) as lonely:
        status, body = post(http, lonely, "/", ["PING"])
    assert status == 503
    assert body["error"].startswith("ERR Redis unavailable")


def test_the_real_client_talks_to_it_unchanged(standin: StandIn, prefix: str) -> None:
    # upstash-redis as any application would use it: typed commands, pipeline, multi.
    client = UpstashRedis(standin.url, TOKEN, rest_retries=0)
    try:
        key = prefix + "sdk"
        stored: object = client.set(key, "v", ex=30)  # typed str | None, answers a bool
        assert stored is True
        assert client.get(key) == "v"
        assert client.eval("return {KEYS[1], ARGV[1]}", keys=[key], args=["a"]) == [key, "a"]
        pipe = client.pipeline()
        pipe.incr(key + ":n")
        pipe.expire(key + ":n", 30)
        pipe.get(key)
        assert pipe.exec() == [1, True, "v"]
        tx = client.multi()
        tx.incr(key + ":n")
        tx.get(key + ":n")
        assert tx.exec() == [2, "2"]
    finally:
        client.close()  # type: ignore[no-untyped-call]  # untyped in upstash-redis 1.8


def test_stand_in_records_calls(http: requests.Session, redis_url: str) -> None:
    with serve(redis_url, TOKEN) as fresh:
        post(http, fresh, "/", ["PING"])
        post(http, fresh, "/pipeline", [["PING"]], {})
        assert [(call.path, call.status) for call in fresh.calls] == [
            ("/", 200),
            ("/pipeline", 401),
        ]


@pytest.mark.parametrize("gone", [BrokenPipeError, ConnectionResetError])
def test_a_client_gone_before_its_answer_prints_no_traceback(
    standin: StandIn, capsys: pytest.CaptureFixture[str], gone: type[Exception]
) -> None:
    """A torture-killed function instance closes its connection mid-answer; socketserver
    would print a traceback for every one. Anything else still does."""
    server = standin._server  # the socketserver, whose error hook this is
    for error in (gone(), ValueError("a bug in the stand-in")):
        try:
            raise error
        except Exception:
            server.handle_error(None, ("127.0.0.1", 1))
    printed = capsys.readouterr().err
    assert gone.__name__ not in printed
    assert "ValueError: a bug in the stand-in" in printed
