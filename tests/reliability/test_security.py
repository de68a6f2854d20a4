"""The security part of the reliability suite (reliability/security.py). Its checks
are the tests it runs, which the test command runs anyway (tests/security and the
access tests beside the code): here, that every test it names exists, that a junit
report is sorted under the right concern, and that a failure or a log-scan finding
fails the part and is reported."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

from reliability import security
from reliability.outcome import RunSettings

ROOT = Path(__file__).resolve().parents[2]


def test_every_named_test_exists() -> None:
    for test in security.selectors():
        file, _, function = test.partition("::")
        path = ROOT / file
        assert path.exists(), test
        if function:
            names = {
                n.name
                for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.FunctionDef)
            }
            assert function in names, test


def test_every_security_test_file_belongs_to_a_concern() -> None:
    named = {t.partition("::")[0] for t in security.selectors()}
    files = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "tests" / "security").glob("test_*.py")
    }
    assert files <= named


JUNIT = """<testsuites><testsuite>
<testcase classname="tests.security.test_credentials" name="test_a_forged_admin_token_is_401[x-y]"/>
<testcase classname="tests.security.test_credentials" name="test_every_wrong_cron_credential_is_the_same_401_and_runs_nothing"><failure message="boom"/></testcase>
<testcase classname="tests.api.test_student_flow" name="test_huge_body_is_413[/api/user/login]"/>
<testcase classname="tests.api.test_student_flow" name="test_demo_student_journey"/>
</testsuite></testsuites>"""


def _scan(findings: list[dict[str, object]]) -> dict[str, object]:
    return {
        "log_records": 10, "log_bytes": 1000, "captured_bytes": 5, "child_bytes": 7,
        "children": 1, "error_bodies": 3, "secrets": {"constant": 2, "environment": 1},
        "skipped_short": 0, "query_emails": 4, "findings": findings,
    }  # fmt: skip


def test_cases_are_sorted_under_their_concern() -> None:
    results = security.classify(ET.fromstring(JUNIT))

    assert results.cases["Cron and admin credentials"] == 2
    assert results.cases["Size limits and floods"] == 1
    assert results.failed == {
        "Cron and admin credentials": [
            "tests/security/test_credentials.py::"
            "test_every_wrong_cron_credential_is_the_same_401_and_runs_nothing"
        ]
    }
    assert results.unassigned == ["tests/api/test_student_flow.py::test_demo_student_journey"]


def test_the_section_says_what_failed_and_what_the_scan_found() -> None:
    results = security.classify(ET.fromstring(JUNIT))
    finding = {"rule": "email", "source": "t (call): log", "line": 1, "excerpt": "[p***@x.io]"}
    text = security.render(
        results, _scan([finding]), RunSettings(seed=1, long=False), False, 1, 12.0
    )

    assert text.startswith("## Security\n")
    assert "**FAILED**" in text
    assert "| Cron and admin credentials |" in text and "| 2 | 1 | 1 |" in text
    assert "test_every_wrong_cron_credential_is_the_same_401_and_runs_nothing" in text
    assert "**findings: 1**" in text and "[p***@x.io]" in text
    assert "4 emails in the query string" in text
    assert "### Left alone" in text
