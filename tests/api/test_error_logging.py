"""A failure of the database reaches the log with what the database said (SQLSTATE,
message), so it can be diagnosed, without secrets or full email addresses; the answer
to the client still says only INTERNAL_ERROR or DATABASE_UNAVAILABLE."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from lib.db import PsycopgBackend
from lib.errors import DatabaseFailure, DatabaseUnavailable
from lib.http import Request, function
from lib.log import _JsonFormatter


def _call(app: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/probe"}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    return statuses[0], json.loads(body)


def _failure_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = _JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records]
    return [line for line in lines if line["msg"] == "dependency failure"]


def test_a_database_error_is_logged_with_its_sqlstate_and_message(
    backend: PsycopgBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    def handler(request: Request) -> object:
        return backend.call("no_such_function", {"p_email": "x"})

    status, answer = _call(function("probe", GET=handler))

    assert status.startswith("500") and answer["error"]["code"] == "INTERNAL_ERROR"
    assert "no_such_function" not in json.dumps(answer)  # the client learns nothing
    [line] = _failure_lines(caplog)
    assert line["sqlstate"] == "42883"  # undefined_function
    assert "no_such_function" in line["detail"]


def test_the_logged_detail_masks_emails_and_passwords(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    def failing(request: Request) -> object:
        raise DatabaseFailure(
            "23514",
            "new row for alice.smith@example.com violates check; tried postgresql://app:"
            "s3cret-pw@db.internal:6543/postgres and host=db password='hunter2' port=5432",
        )

    def unavailable(request: Request) -> object:
        try:
            raise OSError("connection to bob@example.com refused")
        except OSError as exc:
            raise DatabaseUnavailable() from exc

    _call(function("probe", GET=failing))
    status, _ = _call(function("probe", GET=unavailable))

    assert status.startswith("503")
    failure, outage = _failure_lines(caplog)
    assert failure["sqlstate"] == "23514"
    assert "a***@example.com" in failure["detail"] and "alice.smith" not in failure["detail"]
    assert "s3cret-pw" not in failure["detail"] and "hunter2" not in failure["detail"]
    assert "postgresql://app:***@db.internal" in failure["detail"]
    assert (outage["error"], outage["detail"]) == (
        "OSError",
        "connection to b***@example.com refused",
    )
