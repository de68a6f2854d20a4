"""Security: credentials, cross-student access, database roles, secrets in logs and
error bodies, size limits and floods.

The checks are tests (tests/security, one file per concern, and the access tests that
live beside what they check: tests/admin, tests/sync/test_cron.py, tests/sql,
tests/api/test_student_flow.py). This part runs them in a pytest of their own on
this run's PostgreSQL and Redis (reliability/stack.py), with a junit report and the
log scan's summary (tests/security/logscan.py), and writes the "## Security" section:
each concern, its cases, passed and failed, and what the log scan read.

Long (`./run reliability security`): every rate-limited route's whole budget is
flooded for real (SECURITY_LONG=1). Short (`--short`): a head start in Redis, as the
test command runs them. The tests draw no random values that matter: no seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import markdown_table, source_version
from reliability import stack
from reliability.outcome import Outcome, RunSettings

NAME = "security"
ROOT = Path(__file__).resolve().parent.parent
# The whole run takes about a minute short and two long; this only bounds a hung one.
TIMEOUT_S = 1800


@dataclass(frozen=True)
class Concern:
    title: str
    shows: str
    tests: tuple[str, ...]  # files, or file::test (every parametrisation of it)


CONCERNS = (
    Concern(
        "Cron and admin credentials",
        "every admin route and method: no token, malformed, expired, another key, alg"
        " none, an edited payload, another audience, not yet valid, no expiry, outside"
        " the header: 401; no admin role: 403; nothing read or written. Cron: missing,"
        " wrong, prefix, suffix, one character off, other schemes and headers, query"
        " string: one identical 401, no run",
        (
            "tests/security/test_credentials.py",
            "tests/admin/test_admin_access.py",
            "tests/admin/test_admin_auth.py",
            "tests/sync/test_cron.py",
        ),
    ),
    Concern(
        "Secrets compared in constant time",
        "lib/ and api/ parsed: no secret-named value meets ==, != or in (with a"
        " negative control); cron through hmac.compare_digest, admin tokens through"
        " PyJWT with the algorithm pinned",
        ("tests/security/test_secret_comparisons.py",),
    ),
    Concern(
        "Another student's booking",
        "by UUID, HubSpot id, new and legacy code, in every state, with every identity:"
        " the same status, headers and body as a booking that does not exist; no row,"
        " no Redis key changed; student ids not enumerable on any student endpoint",
        (
            "tests/security/test_cross_student.py",
            "tests/api/test_student_flow.py::"
            "test_another_students_booking_is_indistinguishable_from_a_missing_one",
        ),
    ),
    Concern(
        "Database roles anon and authenticated",
        "no privilege of any kind on any table, column, sequence, function, type or"
        " schema, directly, through PUBLIC, by default privileges or by membership;"
        " each object tried as each role refused; RLS on everywhere",
        ("tests/security/test_database_roles.py", "tests/sql/test_access.py"),
    ),
    Concern(
        "Secrets, tokens and emails in logs and error bodies",
        "the scan's rules, a leaking run fails redacted (negative control), HubSpot's"
        " error messages masked where logged and stored; every error body the tests"
        " receive checked; the scan below",
        (
            "tests/security/test_secrets_in_logs.py",
            "tests/admin/test_admin_students.py::test_logs_carry_no_token_and_no_full_email",
        ),
    ),
    Concern(
        "Size limits and floods",
        "413 one byte over 16 KB on every endpoint taking a body (also chunked), 16 KB"
        " read; over-long headers refused by the server, query values 400; every"
        " rate-limited route, student and admin: 429 with Retry-After before any work,"
        " another address served",
        (
            "tests/security/test_limits.py",
            "tests/api/test_student_flow.py::test_huge_body_is_413",
            "tests/api/test_student_flow.py::"
            "test_a_flood_from_one_client_is_limited_without_hurting_others",
        ),
    ),
)

LEFT_ALONE = (
    "The students' GET endpoints take the email in the query string (an API kept from"
    " the system being replaced), so every request log that records URLs holds it:"
    " Vercel's runtime and edge, the tests' HTTP client. The log scan counts these"
    " (above) instead of failing on them; the app itself never logs a URL. Taking the"
    " identity in a header would end it, with the page and the old frontend changed"
    " alike.",
    "`/api/health` and `/api/cron/sync` have no per-client budget. Health costs one"
    " PostgreSQL and one Redis round trip; the cron endpoint refuses in constant time"
    " before any import or query, and its secret is not guessable.",
    "The URL's length is Vercel's edge's to limit (14 KB); the local server passes any"
    " on. The functions bound every value they read.",
    "HubSpot's stand-in (local/standins/hubspot.py, never deployed) compares its token"
    " with ==; the constant-time check reads lib/ and api/.",
    "Response timing of another student's booking against a missing one is not"
    " measured (both are one indexed look-up in the same function).",
)


@dataclass
class Results:
    cases: Counter[str] = field(default_factory=Counter)  # concern -> cases
    failed: dict[str, list[str]] = field(default_factory=dict)  # concern -> test ids
    skipped: Counter[str] = field(default_factory=Counter)
    unassigned: list[str] = field(default_factory=list)


def selectors() -> list[str]:
    return [test for concern in CONCERNS for test in concern.tests]


def classify(junit: ET.Element) -> Results:
    """Each test case of the junit report under the concern whose tests name it."""
    results = Results()
    for case in junit.iter("testcase"):
        module = case.get("classname", "")
        path = module.replace(".", "/") + ".py"
        name = case.get("name", "").split("[", 1)[0]
        concern = _concern_of(path, name)
        test_id = f"{path}::{case.get('name')}"
        if concern is None:
            results.unassigned.append(test_id)
            continue
        results.cases[concern] += 1
        if case.find("failure") is not None or case.find("error") is not None:
            results.failed.setdefault(concern, []).append(test_id)
        elif case.find("skipped") is not None:
            results.skipped[concern] += 1
    return results


def _concern_of(path: str, name: str) -> str | None:
    for concern in CONCERNS:
        for test in concern.tests:
            file, _, function = test.partition("::")
            if file == path and (not function or function == name):
                return concern.title
    return None


def run(settings: RunSettings) -> Outcome:
    started = time.monotonic()
    services = stack.services()
    with tempfile.TemporaryDirectory(prefix="security-") as scratch:
        junit_path = Path(scratch) / "junit.xml"
        scan_path = Path(scratch) / "scan.json"
        env = {
            **os.environ,
            "TEST_DATABASE_URL": services.pg_admin_url,
            "TEST_REDIS_URL": services.redis_url,
            "LOGSCAN_REPORT": str(scan_path),
            "SECURITY_LONG": "1" if settings.long else "0",
        }
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        completed = subprocess.run(
            [*command, f"--junitxml={junit_path}", *selectors()],
            cwd=ROOT,
            env=env,
            timeout=TIMEOUT_S,
            check=False,
        )
        junit = ET.parse(junit_path).getroot() if junit_path.exists() else ET.Element("none")
        scan = json.loads(scan_path.read_text()) if scan_path.exists() else None
    results = classify(junit)
    passed = (
        completed.returncode == 0
        and not results.failed
        and scan is not None
        and not scan["findings"]
        and all(results.cases[c.title] > 0 for c in CONCERNS)
        and not results.unassigned
    )
    markdown = render(
        results, scan, settings, passed, completed.returncode, time.monotonic() - started
    )
    failed = sum(len(tests) for tests in results.failed.values())
    findings = f"{len(scan['findings'])} findings" if scan is not None else "did not run"
    summary = (
        f"{sum(results.cases.values()):,} cases in {len(CONCERNS)} concerns, {failed} failed;"
        f" log scan of {scan['log_records'] if scan else 0:,} log records: {findings}"
    )
    return Outcome(NAME, passed, markdown, summary)


def render(
    results: Results,
    scan: dict[str, Any] | None,
    settings: RunSettings,
    passed: bool,
    returncode: int,
    duration_s: float,
) -> str:
    rows = []
    for concern in CONCERNS:
        cases = results.cases[concern.title]
        failed = len(results.failed.get(concern.title, []))
        rows.append(
            [
                concern.title,
                concern.shows,
                "<br>".join(
                    f"`{file}`" for file in dict.fromkeys(t.split("::")[0] for t in concern.tests)
                ),
                str(cases),
                str(cases - failed - results.skipped[concern.title]),
                str(failed),
            ]
        )
    total = sum(results.cases.values())
    failed_total = sum(len(v) for v in results.failed.values())
    passed_total = total - failed_total - sum(results.skipped.values())
    rows.append(["**all**", "", "", str(total), str(passed_total), str(failed_total)])
    size = "long: every route's budget flooded for real" if settings.long else "short"
    lines = [
        "## Security",
        "",
        f"`./run reliability security` ({size}), commit"
        f" {source_version('lib', 'api', 'tests', 'supabase', 'reliability')};"
        f" {'**passed**' if passed else '**FAILED**'} in {duration_s:.0f} s"
        f" (pytest exit status {returncode}). No seed: the tests draw nothing random that"
        " matters.",
        "",
        markdown_table(["check", "what is shown", "tests", "cases", "passed", "failed"], rows),
    ]
    for title, failed_ids in results.failed.items():
        lines += ["", f"Failed in {title}:", *[f"- `{t}`" for t in failed_ids[:20]]]
    if results.unassigned:
        lines += ["", "Run but under no concern:", *[f"- `{t}`" for t in results.unassigned]]
    lines += ["", "### Secrets in logs: the scan", "", *_scan_lines(scan)]
    lines += ["", "### Left alone", "", *[f"- {item}" for item in LEFT_ALONE]]
    return "\n".join(lines) + "\n"


def _scan_lines(scan: dict[str, Any] | None) -> list[str]:
    if scan is None:
        return ["The log scan wrote no summary: the run did not finish."]
    secrets = scan["secrets"]
    lines = [
        "Over this run's tests (`./run test` applies the same scan to the whole suite):",
        "",
        f"- {scan['log_records']:,} log records ({scan['log_bytes']:,} bytes), every record"
        " of every test at DEBUG, formatted as production writes them, tracebacks included;",
        f"- {scan['captured_bytes']:,} bytes of captured stdout and stderr, and"
        f" {scan['child_bytes']:,} bytes of output from child processes read by the"
        f" tests ({scan['children']}: the gunicorn server of the size and header tests);",
        f"- {scan['error_bodies']:,} API error bodies, each also checked when received;",
        f"- searched for {sum(secrets.values())} secret values"
        f" ({', '.join(f'{n} {origin}' for origin, n in sorted(secrets.items()))};"
        f" {scan['skipped_short']} under 8 characters skipped), JWT-shaped strings,"
        " `Bearer` values and full email addresses (masked ones, `d***@example.com`,"
        " pass; so does the `./run dev` admin, `admin@localhost`);",
        f"- known, counted, not failed: {scan['query_emails']:,} emails in the query"
        " string of a logged request line (Left alone, below);",
        f"- **findings: {len(scan['findings'])}**.",
    ]
    for finding in scan["findings"][:20]:
        lines.append(f"  - {finding['rule']} in `{finding['source']}`: `{finding['excerpt']}`")
    return lines
