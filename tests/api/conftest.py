"""End-to-end over HTTP: the real api/ functions behind the local router (Vercel's
routing), on a threaded WSGI server in this process, against real PostgreSQL and
Redis. Every response is checked against public/openapi.yaml."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator

from lib import config, db
from lib import redis_client as lib_redis
from local.server import make_app
from tests.helpers import Db
from tests.security.logscan import check_error_body

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "public" / "openapi.yaml").read_text())


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:  # one thread each
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running_api(database_url: str, redis_url: str) -> Iterator[str]:
    """The API on a free port, configured like production through the environment
    (DATABASE_URL, REDIS_URL, no HubSpot token); on exit the process's database and
    Redis clients and the environment are as they were."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "HUBSPOT_ACCESS_TOKEN")}
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ.pop("HUBSPOT_ACCESS_TOKEN", None)
    config.settings.cache_clear()
    previous_db = db.use_backend(None)
    previous_redis = lib_redis.use_redis(lib_redis.from_settings(config.settings()))
    server = make_server(
        "127.0.0.1",
        0,
        make_app(trust_forwarded=True),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        ours = db.use_backend(previous_db)
        if ours is not None:
            ours.close()
        our_redis = lib_redis.use_redis(previous_redis)
        if our_redis is not None:
            our_redis.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.settings.cache_clear()


@pytest.fixture(scope="session", params=["direct", "pgbouncer"])
def api_server(request: pytest.FixtureRequest, database_url: str, redis_url: str) -> Iterator[str]:
    """Every API test runs twice: with DATABASE_URL straight to PostgreSQL, and through a
    real transaction-mode pooler, as production reaches Supabase (port 6543): a
    prepared statement or session state that leaks across transactions fails there."""
    url = database_url
    if request.param == "pgbouncer":
        url = request.getfixturevalue("pooler").url(database_url)
    with running_api(url, redis_url) as base:
        yield base


def _path_template(path: str) -> str | None:
    parts = [p for p in path.split("?", maxsplit=1)[0].split("/") if p]
    for template in SPEC["paths"]:
        tparts = [p for p in template.split("/") if p]
        if len(tparts) == len(parts) and all(
            t.startswith("{") or t == p for t, p in zip(tparts, parts, strict=True)
        ):
            return str(template)
    return None


def check_against_spec(method: str, path: str, response: requests.Response) -> None:
    """The response's status is documented for this operation and its body matches."""
    template = _path_template(path)
    assert template is not None, f"{path} is not in openapi.yaml"
    operation = SPEC["paths"][template].get(method.lower())
    assert operation is not None, f"{method} {template} is not in openapi.yaml"
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {template} -> {response.status_code} undocumented"
    # No error body echoes a secret, a token or a full email (tests/security/logscan.py).
    check_error_body(method, path, response.status_code, response.text)
    if response.status_code == 204:
        return
    if "$ref" in documented:
        documented = SPEC["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    schema = documented["content"]["application/json"]["schema"]
    resolver_schema = {**schema, "components": SPEC["components"]}
    validator = Draft202012Validator(_rewrite_refs(resolver_schema))
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, (
        f"{method} {path} {response.status_code}: {errors[0].message} at {list(errors[0].path)}"
    )


def document_accepts(schema: dict[str, Any], value: Any) -> bool:
    """Whether a value is valid to a schema of the document (its $refs resolved)."""
    return Draft202012Validator({**schema, "components": SPEC["components"]}).is_valid(value)


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: ("#/components/" + v.split("#/components/")[1] if k == "$ref" else _rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


class Api:
    """requests against the local server; every response checked against the spec.
    Each instance is its own client address, so rate limits of one test never touch
    another."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.client_ip = (
            f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        )

    def call(
        self, method: str, path: str, *, check: bool = True, **kwargs: Any
    ) -> requests.Response:
        headers = {"X-Real-IP": self.client_ip, **kwargs.pop("headers", {})}
        response = self.session.request(
            method, self.base + path, headers=headers, timeout=30, **kwargs
        )
        if check:
            assert response.headers.get("X-Request-Id"), "every API response carries a request id"
            check_against_spec(method, path, response)
        else:
            check_error_body(method, path, response.status_code, response.text)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        return self.call("POST", path, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        return self.call("DELETE", path, **kwargs)


@pytest.fixture
def api(api_server: str, db: Db) -> Iterator[Api]:
    """A client of the running API, with the database emptied for this test and the
    short-lived exam-list cache cleared (it outlives a test's rows)."""
    from lib.models import MOCK_TYPES
    from lib.redis_scripts import exam_list_key

    client = lib_redis.redis()
    if client is not None:
        client.delete(*[exam_list_key(t) for t in MOCK_TYPES])
    client_api = Api(api_server)
    yield client_api
    client_api.session.close()
