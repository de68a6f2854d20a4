"""The fuzzing part of the reliability suite at the test command's size: schemathesis
against public/openapi.yaml on the live local server (reliability/fuzz.py). No answer
may be a server error or fall outside the document, no valid request may be refused
for a rule the document could state, and deeply nested bodies, on both sides of the
API's limit, must be refused or parsed as the limit says."""

from __future__ import annotations

from lib.http import MAX_JSON_DEPTH
from reliability import fuzz
from reliability.__main__ import DEFAULT_SEED
from reliability.outcome import RunSettings


def _listed(failures: list[fuzz.Failure]) -> str:
    return "\n".join(
        f"[{f.kind}] {f.operation} -> {f.status}: {f.title[:300]}\n  {f.curl[:500]}"
        for f in failures[:20]
    )


def test_fuzzing_finds_no_server_error_and_no_answer_outside_the_document() -> None:
    report = fuzz.measure(RunSettings(seed=DEFAULT_SEED, long=False))

    assert not report.server_errors, "server errors:\n" + _listed(report.server_errors)
    assert not report.schema_violations, "outside the document:\n" + _listed(
        report.schema_violations
    )
    assert report.tracebacks == 0, f"tracebacks in {report.log_path}"
    assert not report.tally.generation_errors, report.tally.generation_errors
    for family in fuzz.FAMILIES:
        generated = report.tally.family_cases(family) - report.tally.coverage_cases(family)
        assert generated >= report.per_family, (family, generated)
    assert not report.nesting_failures, "nested bodies:\n" + _listed(report.nesting_failures)
    nested = report.tally.nested
    assert nested["deeper, refused as INVALID_JSON"] > 0, nested
    assert nested["within, parsed"] > 0, nested
    assert report.tally.nested_max_depth > 1000 > MAX_JSON_DEPTH  # past json.loads's own
    assert report.passed
