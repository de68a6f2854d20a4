"""Run by tests/security/test_secrets_in_logs.py in a pytest of its own (never
collected by the suite: its name does not start with test_). Each test leaks one
thing the log scan must find; every test passes, so only the scan can fail the run."""

import logging
import subprocess
import sys

from tests.security.logscan import register_secret

SECRET_VALUE = "sample-secret-" + "q" * 20
log = logging.getLogger("lib.sample")


def test_a_registered_secret_in_a_log_line() -> None:
    register_secret(SECRET_VALUE, "the sample secret")
    log.info("configured with %s", SECRET_VALUE)


def test_a_token_in_a_debug_record() -> None:
    log.debug("Authorization: Bearer abcdefghijklmnopqrstuvwx")


def test_a_full_email_in_an_exception() -> None:
    try:
        raise ValueError("no contact for pat.leaky@school.example")
    except ValueError:
        log.exception("lookup failed")


def test_a_jwt_printed_by_a_child_process() -> None:
    header = "eyJhbGciOiJIUzI1NiJ9"
    payload = "eyJzdWIiOiJzYW1wbGUifQ"
    code = f"import sys; sys.stderr.write('token {header}.{payload}.c2ln\\n')"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_what_may_be_logged() -> None:
    log.info("admin d***@school.example adjusted credits")
    log.debug('"GET /api/bookings/list?student_id=S1&email=pat%40school.example HTTP/1.1" 200')
