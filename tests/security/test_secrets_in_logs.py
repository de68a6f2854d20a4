"""Secrets, tokens and full emails never reach a log line or an error body.

The whole suite's logs are scanned by tests/security/logscan.py (installed by
tests/conftest.py); here: that its rules find what they must and pass what the app
writes, that a finding fails a run without printing the secret, and the known gap
it was built to close: HubSpot's error messages quote emails (a 409 on a contact
upsert names the conflicting address), and the sync logged and stored them as they
came.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lib.log import mask_email, mask_emails
from tests.security.logscan import Watch
from tests.sync.conftest import World, standin, world

__all__ = ["standin", "world"]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "security" / "samples" / "leaky.py"


def _rules(line: str, *secrets: str) -> list[str]:
    watch = Watch()
    for value in secrets:
        watch.register(value, "a secret")
    return sorted(f.rule for f in watch.line_findings(line))


def test_the_rules_find_secrets_tokens_and_full_emails() -> None:
    secret = "s3cr3t-value-0123456789"
    assert _rules(f'{{"msg":"key {secret}"}}', secret) == ["secret"]
    assert _rules("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig") == ["jwt"]
    assert _rules("authorization: bearer pat-na1-0000-1111") == ["bearer"]
    assert _rules("no contact for pat.one+tag@school.example") == ["email"]
    assert _rules("student_id=S1&email=pat%40school.example") == ["email"]
    assert _rules("a\\nb pat@SCHOOL.EXAMPLE.COM.") == ["email"]


def test_the_rules_pass_what_the_app_writes() -> None:
    assert _rules('{"admin_email":"o***@school.example","status":401}') == []
    assert _rules("Sign in as an admin (Authorization: Bearer <access token>)") == []
    assert _rules('WWW-Authenticate: Bearer error="invalid_token", error_description="x"') == []
    assert _rules("signed in as admin@localhost") == []  # the documented dev admin
    assert _rules("BK-20261203-7QK2MX hubspot 1599999 version 3.12.1") == []
    # Short values are not searched for: they would match everywhere.
    assert _rules("the token is t", "t") == []


def test_an_email_in_a_logged_request_url_is_counted_not_failed() -> None:
    watch = Watch()
    line = '"GET /api/bookings/list?student_id=S1&email=pat%40school.example HTTP/1.1" 200'
    assert list(watch.line_findings(line)) == []
    assert watch.summary.query_emails == 1
    # ... but only in the query of a request line.
    assert _rules('"POST /api/user/login HTTP/1.1" body pat@school.example') == ["email"]


def test_a_report_never_shows_the_secret() -> None:
    secret = "s3cr3t-value-0123456789"
    watch = Watch()
    watch.register(secret, "CRON_SECRET")
    line = f"x{secret}y eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln pat@school.example"
    excerpts = " ".join(f.excerpt for f in watch.line_findings(line))
    assert secret not in excerpts and "eyJ" not in excerpts and "pat@" not in excerpts
    assert "[CRON_SECRET]" in excerpts and "p***@school.example" in excerpts


def test_a_leak_anywhere_fails_the_run_and_is_reported_redacted(tmp_path: Path) -> None:
    """Negative control of the whole plugin: a pytest run whose tests all pass but leak
    (a registered secret in a log line, a Bearer token in a DEBUG record, an email in a
    traceback, a JWT from a child process) exits 1 and names each finding redacted."""
    report = tmp_path / "scan.json"
    env = {**os.environ, "LOGSCAN_REPORT": str(report)}
    env.pop("PYTEST_ADDOPTS", None)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(SAMPLE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert "5 passed" in output, output
    assert completed.returncode == 1, output
    summary = json.loads(report.read_text())
    rules = sorted(
        {(f["rule"], f["source"].split("::")[1].split(" ")[0]) for f in summary["findings"]}
    )
    assert rules == [
        ("bearer", "test_a_token_in_a_debug_record"),
        ("email", "test_a_full_email_in_an_exception"),
        ("jwt", "test_a_jwt_printed_by_a_child_process"),
        ("secret", "test_a_registered_secret_in_a_log_line"),
    ]
    assert summary["query_emails"] == 1
    for leaked in ("sample-secret-qqq", "abcdefghijklmnop", "pat.leaky@", "eyJzdWIiOiJzYW1wbGUifQ"):
        assert leaked not in output
        assert leaked not in report.read_text()
    assert "LEAK secret" in output and "[the sample secret]" in output


def test_mask_emails_masks_every_address_in_free_text() -> None:
    text = "Conflict: Pat.One+x@mail.school.example and b@c.io; id 12; user@localhost"
    assert (
        mask_emails(text)
        == "Conflict: P***@mail.school.example and b***@c.io; id 12; user@localhost"
    )


def test_hubspot_conflict_messages_are_masked_where_logged_and_stored(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: HubSpot answers a contact upsert 409 quoting the email. The failure
    is logged, stored in sync_run_errors and in the run's report (the dashboard shows
    both): each holds the masked address, never the full one."""
    email = "conflicted.student@school.example"
    contact = world.contact(in_hubspot=False, email=email)
    exam = world.exam()
    world.book(contact, exam)
    world.standin.set_faults(conflict_ids=[email])  # HubSpot: 409 naming the email
    caplog.set_level(logging.DEBUG)

    result = world.sync()

    assert result.status == "partial"
    [error] = world.db.all("select * from hubspot_sync.sync_run_errors where phase = 'contacts'")
    assert error["record_id"] == str(contact["id"])
    masked = mask_email(email)
    assert masked is not None and masked in error["message"]
    stored: list[Any] = [
        world.db.all("select message from hubspot_sync.sync_run_errors"),
        world.db.all("select * from hubspot_sync.sync_runs"),
        [e.message for e in result.errors],
        caplog.text,
    ]
    for where in stored:
        assert email not in json.dumps(where, default=str)
