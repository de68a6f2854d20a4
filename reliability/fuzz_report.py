"""The fuzzing part's section of RELIABILITY.md."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from lib.http import MAX_JSON_DEPTH
from reliability.fuzz import (
    DOCUMENT_CANNOT_STATE,
    FAMILIES,
    LISTED_FAILURES,
    ROOT,
    SCHEMA_KINDS,
)

if TYPE_CHECKING:
    from reliability.fuzz import Failure, Report

# Bugs this fuzzer found, fixed where they were: (what and where, its regression test).
FIXED: tuple[tuple[str, str], ...] = (
    (
        "Bookings of the replaced system answered their stored dominant hand ('true',"
        " 'Right', ...) where the document promises right / left / null: the booking"
        " JSON now reads it as book() does"
        " (supabase/migrations/20251210000100_booking_json_dominant_hand.sql)",
        "tests/api/test_student_flow.py::"
        "test_a_legacy_bookings_dominant_hand_is_answered_as_right_or_left",
    ),
    (
        "The local server answered 414 to a valid request (an id and an email of"
        " non-ASCII letters, percent-encoded, over gunicorn's 4 KB request line) that"
        " Vercel (14 KB) passes on: local/server.py takes Vercel's limits",
        "tests/local/test_server.py::test_gunicorn_passes_on_urls_and_headers_as_long_as_vercels",
    ),
    (
        "The document allowed any email up to 254 characters, any exam id up to 64 (in"
        " the capacity path and a booking's body) and any Idempotency-Key up to 255, so"
        " valid requests were refused: public/openapi.yaml now states the API's patterns",
        "tests/api/test_student_flow.py::test_the_document_and_the_api_agree_on_an_email,"
        " ...::test_the_document_and_the_api_agree_on_an_exam_id,"
        " ...::test_the_document_and_the_api_agree_on_an_idempotency_key",
    ),
    (
        "A NUL in the admin's search or in a booking id was a 400 naming the database"
        " function's parameter (`query`, `ref`, `booking_ref`) instead of the client's"
        " field (`q`, `id`): lib/db.py names fields the client's way",
        "tests/admin/test_admin_students.py::"
        "test_a_nul_in_a_search_or_a_booking_id_is_a_400_naming_the_clients_field,"
        " tests/api/test_student_flow.py::test_a_nul_in_a_booking_id_is_a_400_naming_the_id",
    ),
    (
        "The document gave the runs list's `page` no maximum; the API's is 100,000",
        "tests/admin/test_admin_sync_status.py::"
        "test_the_last_page_the_document_allows_is_the_last_the_api_takes",
    ),
    (
        "A body nested about 1,500 levels deep was a 500 on every JSON endpoint"
        " (RecursionError in json.loads): lib/http.py refuses bodies deeper than"
        f" {MAX_JSON_DEPTH} levels as 400 `INVALID_JSON` before parsing them (issue 15)",
        "tests/api/test_student_flow.py::test_a_body_nested_1500_deep_is_invalid_json_not_a_500,"
        " tests/security/test_limits.py::"
        "test_a_body_nested_1500_deep_is_400_invalid_json_and_writes_nothing",
    ),
    (
        "The document was looser than the API, so valid requests were refused (ST202,"
        " issue 15): control characters in an email; white space around a student id,"
        " exam id or email that the API does not trim (`\\s` is another set in"
        " ECMA-262 and in Python: the document now spells out the API's); any attending"
        " location (now an enum of the twelve spellings the API takes); a credit"
        " adjustment of zeros (the document now asks for a non-zero delta) or of `2.0`"
        " (the API now takes it as 2); a search or a reason whose white space the API"
        " trims below its minimum; a NUL in a reason, a search or a booking id; an"
        " admin's booking id of white space alone. The search also matched `%` and `_`"
        " as wildcards, so `q=%%` listed every student"
        " (supabase/migrations/20251212000200_find_students_literal_prefix.sql)",
        "tests/api/test_student_flow.py::test_the_document_and_the_api_agree_on_an_email,"
        " ...::test_the_document_and_the_api_agree_on_a_student_id,"
        " ...::test_the_document_and_the_api_agree_on_an_attending_location,"
        " tests/admin/test_admin_students.py::test_the_document_and_the_api_agree_on_a_search,"
        " ...::test_a_search_matches_percent_underscore_and_backslash_as_themselves,"
        " ...::test_the_document_and_the_api_agree_on_credit_deltas,"
        " ...::test_the_document_and_the_api_agree_on_a_reason,"
        " ...::test_the_document_and_the_api_agree_on_a_booking_id",
    ),
)
# What the fuzzer showed and was deliberately left as it is, and why.
LEFT_ALONE: tuple[str, ...] = (
    "Rules the document cannot state (reliability/fuzz.py DOCUMENT_CANNOT_STATE): a"
    " location for Situational Judgment and Mini-mock and a hand for Clinical Skills"
    " (which depends on the exam the request names); `DELETE /api/bookings/{id}` takes"
    " the student's identity from the body or, for clients that cannot send a DELETE"
    " body, from the query string, so a request with neither is valid to the document"
    " and answered 400 `student_id`. Counted above; any other 400 to a valid request"
    " fails the run.",
    "The document is stricter than the API in places (never the other way round, which"
    " the run checks): U+FEFF inside an email, for one, is white space to ECMA-262 and"
    " not to the API.",
    "HubSpot's search budget is raised to 50 a second for the run (on the server and"
    " the stand-in): the fuzzer logs in far faster than students; the budget has its"
    " own tests (tests/hubspot).",
)


def render(report: Report) -> str:
    tally = report.tally
    size = "long" if report.settings.long else "short"
    command = "./run reliability fuzz" + ("" if report.settings.long else " --short")
    schemathesis_version, hypothesis_version = report.versions
    lines = [
        "## Fuzzing",
        "",
        f"`{command} --seed {report.settings.seed}`: schemathesis {schemathesis_version}"
        f" (Hypothesis {hypothesis_version}) against `public/openapi.yaml` on the local"
        " server (gunicorn 2 x 8, a fresh database with the demo data, HubSpot's"
        " stand-in mirroring it, the sync run once), every operation, with an admin's"
        " token for the admin operations and the cron secret for the cron, each case from"
        f" a client address of its own. {size.capitalize()} size: at least"
        f" {report.per_family:,} generated cases per endpoint family (half valid, half"
        " invalid by the document; half with real students, exams and bookings in place"
        " of generated ones), besides schemathesis's coverage cases;"
        f" {report.seconds:.0f} s in all. The test command runs the short size"
        " (tests/reliability/test_fuzz.py).",
        "",
        "Checks on every answer: no 5xx; a status code the operation documents; the"
        " documented content type; a body that conforms to the documented schema; a 400"
        " `VALIDATION_ERROR` names its field, and a field an error names is one the"
        " operation takes or the request sent; a request valid by the document is not"
        " refused (schemathesis's `positive_data_acceptance`, ST202: statuses"
        " 2xx, 401, 402, 403, 404, 409, 429), short of"
        f" {len(DOCUMENT_CANNOT_STATE)} rules the document cannot state (below).",
        "",
        f"Deeply nested bodies: {report.nested_per_operation} valid cases per operation"
        " that takes a body, the body or one of its fields made an array or object nested"
        f" 1 to {tally.nested_max_depth:,} levels deep (most near the limit of"
        f" {MAX_JSON_DEPTH}); deeper must be refused as `INVALID_JSON` (or for what is"
        " read before the body), within must be parsed.",
        "",
        f"- **server errors: {len(report.server_errors)}**",
        f"- **responses outside the documented schema: {len(report.schema_violations)}**"
        + _by_kind(report.schema_violations),
        f"- **nested bodies taken or refused wrongly: {len(report.nesting_failures)}**"
        f" ({_nested(tally.nested)})",
        f"- server log (`{report.log_path.relative_to(ROOT)}`): "
        + ("no traceback" if report.tracebacks == 0 else f"**{report.tracebacks} traceback(s)**"),
    ]
    if tally.generation_errors:
        lines.append(f"- **cases that could not be generated: {len(tally.generation_errors)}**")
        lines += [f"  - {error}" for error in tally.generation_errors[:LISTED_FAILURES]]
    lines += [
        "",
        "| family | operations | generated | coverage | all cases |",
        "|---|---:|---:|---:|---:|",
    ]
    for family, labels in FAMILIES.items():
        coverage = tally.coverage_cases(family)
        total = tally.family_cases(family)
        lines.append(
            f"| {family} | {len(labels)} | {total - coverage:,} | {coverage:,} | {total:,} |"
        )
    lines += [
        "",
        "| operation | valid | invalid | coverage | nested | answers (status x count) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for labels in FAMILIES.values():
        for label in labels:
            modes = tally.by_mode.get(label, Counter())
            statuses = ", ".join(
                f"{status} x{count}"
                for status, count in sorted(tally.statuses.get(label, Counter()).items())
            )
            lines.append(
                f"| `{label}` | {modes['positive']} | {modes['negative']}"
                f" | {modes['coverage']} | {modes['nested']} | {statuses} |"
            )
    if tally.failures:
        lines += ["", "Failures, alike ones once (every one in artifacts/reliability/):", ""]
        lines += _failures(tally.failures)
    if tally.valid_refused:
        lines += [
            "",
            f"Valid by the document, answered 400 ({sum(tally.valid_refused.values()):,}"
            " cases; not failures: rules the document cannot state, see below), by"
            " operation and the field named:",
            "",
        ]
        lines += [
            f"- `{label}` `{field}`: {count}"
            for (label, field), count in tally.valid_refused.most_common(LISTED_FAILURES)
        ]
    lines += ["", "Bugs this fuzzer found, fixed (each with its regression test):", ""]
    lines += [f"- {bug} (`{test}`)" for bug, test in FIXED]
    lines += ["", "Left alone:", ""]
    lines += [f"- {item}" for item in LEFT_ALONE]
    return "\n".join(lines) + "\n"


def _nested(outcomes: Counter[str]) -> str:
    return "; ".join(f"{outcome}: {count:,}" for outcome, count in sorted(outcomes.items()))


def _by_kind(failures: list[Failure]) -> str:
    counts = Counter(f.kind for f in failures)
    parts = [f"{kind} {counts[kind]}" for kind in SCHEMA_KINDS if counts[kind]]
    return f" ({', '.join(parts)})" if parts else ""


def _failures(failures: list[Failure]) -> list[str]:
    """One line per kind of failure (kind, operation, status, first line), with how
    many cases showed it and a curl command replaying the first."""
    groups: dict[tuple[str, str, int | None, str], list[Failure]] = {}
    for failure in failures:
        first_line = failure.title.strip().splitlines()[0][:200] if failure.title else ""
        groups.setdefault((failure.kind, failure.operation, failure.status, first_line), [])
        groups[failure.kind, failure.operation, failure.status, first_line].append(failure)
    lines = []
    for (kind, operation, status, first_line), alike in list(groups.items())[:LISTED_FAILURES]:
        curl = alike[0].curl.replace("`", "'")[:500]
        lines.append(
            f"- [{kind}] `{operation}` answered {status} ({len(alike)} cases): {first_line}\n"
            f"  `{curl}`"
        )
    return lines
