"""Fuzzing: schemathesis against public/openapi.yaml on the live local server.

Every operation of the document, grouped in endpoint families, gets generated
requests: schemathesis's coverage cases (boundary values, wrong types, missing
fields, unexpected methods; deterministic) and Hypothesis-generated cases, valid
(positive) and invalid (negative) by the document's schemas, seeded from the run's
seed. Each answer is checked: no 5xx; a status code the operation documents; a body
that conforms to the documented schema; the documented content type; a 400
VALIDATION_ERROR names the field it is about, and any field an error names is one the
operation takes (or one the request sent); a request valid by the document is not
refused with a 4xx the document cannot explain (schemathesis's
positive_data_acceptance, ST202: the document is looser than the API), short of the few
rules it cannot state (DOCUMENT_CANNOT_STATE).

Every operation that takes a body also gets deeply nested ones (`fuzz_data.nest`):
valid cases whose body, or a field of it, is an array or object nested 1 to 2,000
levels deep. A body deeper than lib.http.MAX_JSON_DEPTH must be refused as
INVALID_JSON (or for something read before the body), never taken; one within it must
be parsed, never refused as INVALID_JSON while it is an object.

The server is the real local stack (gunicorn, Vercel's routing) on a fresh database
holding the demo data (local/seed.py), with HubSpot's stand-in mirroring it
(local/hubspot_demo.py), so that a first login, the cron and the dashboard's "Run
now" run for real and their answers are checked too; the sync has run once before
fuzzing, so the runs endpoints have runs to show. Generated values almost never name
a student, an exam or a booking that exists, so half of the cases get real ones in
place of what was generated (`fuzz_data.ground`): the code behind the validation is
fuzzed too. Each case comes from a client address of its own (X-Real-IP), so the
per-client rate limits stay out of the way (429 is documented all the same).

Failures are recorded with a curl command that replays them (credentials masked);
`./run reliability fuzz --seed N` generates the same cases again, on that day's demo
data (its dates are relative to today; new bookings' ids and codes are the database's).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import re
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reliability import fuzz_data, stack
from reliability.outcome import Outcome, RunSettings

if TYPE_CHECKING:
    import requests
    from schemathesis import APIOperation, Case
    from schemathesis.schemas import BaseSchema

    Operation = APIOperation[Any, Any, Any, Any]
    AnyCase = Case[Operation]

NAME = "fuzz"
ROOT = Path(__file__).resolve().parent.parent
OPENAPI_PATH = ROOT / "public" / "openapi.yaml"
ARTIFACTS = ROOT / "artifacts" / "reliability"

# Endpoint families: operations that share their inputs and the code behind them.
# Every operation of the document must be in one (checked before the run).
FAMILIES: dict[str, tuple[str, ...]] = {
    "student identity": ("POST /api/user/login", "POST /api/mock-exams/validate-credits"),
    "exams": ("GET /api/mock-exams/available", "GET /api/mock-exams/{id}/capacity"),
    "bookings": (
        "POST /api/bookings/create",
        "GET /api/bookings/list",
        "GET /api/bookings/{id}",
        "DELETE /api/bookings/{id}",
    ),
    # Health and the cron take no input but a bearer secret: a few distinct cases
    # each, so they share the admin family (the operator's endpoints) rather than
    # repeat one request a thousand times to fill a family of their own.
    "admin and operations": (
        "GET /api/admin/me",
        "GET /api/admin/sync/status",
        "GET /api/admin/sync/runs",
        "POST /api/admin/sync/runs",
        "GET /api/admin/sync/runs/{id}",
        "GET /api/admin/sync/history",
        "GET /api/admin/search",
        "GET /api/admin/students/{id}",
        "POST /api/admin/students/{id}/credits",
        "GET /api/admin/bookings/{id}",
        "DELETE /api/admin/bookings/{id}",
        "GET /api/health",
        "GET /api/cron/sync",
    ),
}
# Generated cases per family (besides the coverage cases): the 1,000 for the
# on-demand run; the test command's size keeps its run well under a minute.
LONG_CASES_PER_FAMILY = 1000
SHORT_CASES_PER_FAMILY = 100
# Deeply nested bodies per operation that takes a body, besides the family's cases:
# enough at the long size for each to meet depths on both sides of the limit, in the
# body and in its fields, many times.
LONG_NESTED_CASES = 60
SHORT_NESTED_CASES = 12
# Share of a family's cases, relative to 1. A sync run per case (the cron, "Run now")
# costs a few HubSpot calls and up to a second for a full pass; their only input is
# a mode, so a few dozen cases say all there is to say.
WEIGHTS = {"POST /api/admin/sync/runs": 0.3, "GET /api/cron/sync": 0.2}
# A generation pass that falls short of its share (a small input space, exhausted)
# leaves the rest to the family's other operations, in further passes.
MAX_PASSES = 4
# Login looks up unknown students in HubSpot, whose search budget is 5 a second for
# the whole account: the fuzzer, one client sending hundreds of logins a minute, would
# spend most of its time waiting for it. The budget is tested in tests/hubspot; here
# it is raised to the most the settings allow, on both sides.
SEARCH_PER_S = 50
# One request: the slowest legitimate answer is a full sync pass (a few seconds here).
REQUEST_TIMEOUT_S = 60
# Failures listed in the report (all are in the artifacts file).
LISTED_FAILURES = 20
SCHEMA_KINDS = (
    "undocumented status",
    "body schema",
    "content type",
    "field not named",
    "field not an input",
    "valid refused",
)
# Statuses a valid request may get: schemathesis's default for positive_data_acceptance
# without 3xx (the API never redirects), and with 402, the answer when a student has no
# credit for the exam (a fact of the data, not of the request's form).
VALID_STATUSES = ("2xx", "401", "402", "403", "404", "409", "429", "5xx")
# Rules the document cannot state, for which a valid request is answered 400: by
# operation, the field named, and how the API's message begins. They are counted and
# listed in the report; any other 400 to a valid request is a failure.
DOCUMENT_CANNOT_STATE: tuple[tuple[str, str, str], ...] = (
    # Which one is required depends on the exam's type, which the request only names.
    ("POST /api/bookings/create", "attending_location", "attending_location is required for"),
    ("POST /api/bookings/create", "dominant_hand", "dominant_hand is required for"),
    # The identity comes in the optional body or, for clients that cannot send a
    # DELETE body, in the query string: one of the two, which JSON Schema cannot say
    # across a body and parameters.
    ("DELETE /api/bookings/{id}", "student_id", "student_id: Field required"),
)
# Nesting failures: a body over the limit was taken, or one within it refused.
NESTING_KIND = "nesting"


@dataclass
class Failure:
    family: str
    operation: str
    kind: str  # "server error", "no answer", or one of SCHEMA_KINDS
    status: int | None
    title: str
    curl: str


@dataclass
class Tally:
    """What a run sent and saw, per operation."""

    cases: Counter[str] = field(default_factory=Counter)
    by_mode: dict[str, Counter[str]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    generation_errors: list[str] = field(default_factory=list)
    # Cases valid by the document that the API refused with a 400 for a rule the
    # document cannot state (DOCUMENT_CANNOT_STATE), by operation and field named.
    valid_refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Nested bodies by outcome: "deeper, refused as INVALID_JSON", "deeper, refused
    # before the body was read", "within, parsed" (any other outcome is a failure).
    nested: Counter[str] = field(default_factory=Counter)
    nested_max_depth: int = 0

    def count(self, operation: str, mode: str, status: int | None) -> None:
        self.cases[operation] += 1
        self.by_mode.setdefault(operation, Counter())[mode] += 1
        if status is not None:
            self.statuses.setdefault(operation, Counter())[status] += 1

    def family_cases(self, family: str) -> int:
        return sum(self.cases[op] for op in FAMILIES[family])

    def coverage_cases(self, family: str) -> int:
        return sum(self.by_mode.get(op, Counter())["coverage"] for op in FAMILIES[family])

    def failures_of(self, *kinds: str) -> list[Failure]:
        return [f for f in self.failures if f.kind in kinds]


@dataclass(frozen=True)
class Target:
    """The live server and what a case needs to reach it as the right caller."""

    base_url: str
    admin_token: str
    cron_secret: str
    data: fuzz_data.KnownData
    session: requests.Session
    # Client addresses (X-Real-IP): a prefix of this run's own, so that runs sharing a
    # Redis never share a client's rate budget, and a number per case.
    client_prefix: str = field(default_factory=lambda: f"fuzz-{secrets.token_hex(4)}")
    clients: Iterator[int] = field(default_factory=lambda: itertools.count(1))


def run(settings: RunSettings) -> Outcome:
    report = measure(settings)
    cases = sum(report.tally.family_cases(family) for family in FAMILIES)
    summary = (
        f"{cases:,} cases in {len(FAMILIES)} endpoint families (at least"
        f" {report.per_family:,} generated each, and nested bodies):"
        f" {len(report.server_errors)} server errors,"
        f" {len(report.schema_violations)} answers outside the document,"
        f" {len(report.nesting_failures)} nested bodies mishandled"
    )
    return Outcome(NAME, report.passed, report.markdown(), summary)


def measure(settings: RunSettings) -> Report:
    """Fuzz a fresh server at the size `settings` asks for; what was sent and found."""
    import hypothesis
    import schemathesis

    started = time.monotonic()
    per_family = LONG_CASES_PER_FAMILY if settings.long else SHORT_CASES_PER_FAMILY
    nested = LONG_NESTED_CASES if settings.long else SHORT_NESTED_CASES
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "fuzz-server.log"
    schema = load_schema()
    with _quiet_http_client_log(), _live_server(log_path) as target:
        tally = fuzz(schema, target, seed=settings.seed, per_family=per_family, nested=nested)
    tracebacks = _tracebacks(log_path)
    _write_failures(ARTIFACTS / "fuzz-failures.txt", tally)
    return Report(
        settings=settings,
        per_family=per_family,
        nested_per_operation=nested,
        tally=tally,
        tracebacks=tracebacks,
        log_path=log_path,
        seconds=time.monotonic() - started,
        versions=(schemathesis.__version__, hypothesis.__version__),
    )


@contextlib.contextmanager
def _quiet_http_client_log() -> Iterator[None]:
    """urllib3 logs every request line at DEBUG: thousands a run, each with a student's
    email in the query string (the students' GET endpoints take it there). The run
    records what it needs itself; the request lines stay out of the process's log."""
    client_log = logging.getLogger("urllib3")
    level = client_log.level
    client_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        client_log.setLevel(level)


def load_schema() -> BaseSchema:
    import schemathesis
    from schemathesis.core.result import Ok

    # An explicit configuration: a schemathesis.toml lying around must not change what
    # this run does.
    config = schemathesis.Config.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": list(VALID_STATUSES)}}}
    )
    schema = schemathesis.openapi.from_path(OPENAPI_PATH, config=config)
    labels = set()
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise RuntimeError(f"{OPENAPI_PATH}: {result.err()}")
        labels.add(result.ok().label)
    placed = {label for operations in FAMILIES.values() for label in operations}
    if labels != placed:
        raise RuntimeError(
            "reliability/fuzz.py FAMILIES must place every documented operation exactly:"
            f" not placed {sorted(labels - placed)}, not documented {sorted(placed - labels)}"
        )
    return schema


@contextlib.contextmanager
def _live_server(log_path: Path) -> Iterator[Target]:
    """A fresh database with the demo data, HubSpot's stand-in mirroring it, an empty
    Redis database and the API server over them; the sync has run once."""
    import requests

    from local import admin_token, hubspot_demo, seed

    services = stack.services()
    jwt_secret = admin_token.new_secret()
    cron_secret = secrets.token_urlsafe(24)
    with stack.fresh_database(services.pg_admin_url) as database_url:
        seed.seed(database_url)
        stack.flush_redis(services.redis_url)
        hubspot = hubspot_demo.start(
            port=stack.free_port(), database_url=database_url, search_per_s=SEARCH_PER_S
        )
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": services.redis_url,
            "SUPABASE_JWT_SECRET": jwt_secret,
            "CRON_SECRET": cron_secret,
            "HUBSPOT_BASE_URL": hubspot.url,
            "HUBSPOT_ACCESS_TOKEN": hubspot.token,
            "HUBSPOT_APP_ID": hubspot.app_id,
            "HUBSPOT_SEARCH_PER_S": str(SEARCH_PER_S),
        }
        try:
            with (
                log_path.open("wb") as output,
                stack.api_server(env, output=output) as base_url,
                requests.Session() as session,
            ):
                # One full pass first (the cron's choice when none has run): runs
                # for the runs endpoints to show, and the bookings seeded since the
                # mirror pushed, so that later runs are quick deltas.
                answer = session.get(
                    f"{base_url}/api/cron/sync",
                    headers={"Authorization": f"Bearer {cron_secret}"},
                    timeout=REQUEST_TIMEOUT_S,
                )
                answer.raise_for_status()
                yield Target(
                    base_url=base_url,
                    admin_token=admin_token.sign(jwt_secret),
                    cron_secret=cron_secret,
                    data=fuzz_data.known(database_url),
                    session=session,
                )
        finally:
            hubspot.stop()


# ---------------------------------------------------------------- generation


def fuzz(schema: BaseSchema, target: Target, *, seed: int, per_family: int, nested: int) -> Tally:
    from schemathesis import GenerationMode

    tally = Tally()
    for family, labels in FAMILIES.items():
        operations = [schema.find_operation_by_label(label) for label in labels]
        for operation in operations:
            assert operation is not None
            for case in _coverage_cases(schema, operation, tally):
                send(case, family, "coverage", target, tally)
        weights = {op.label: WEIGHTS.get(op.label, 1.0) for op in operations if op}
        exhausted: set[str] = set()
        for attempt in range(MAX_PASSES):
            missing = per_family - _generated(tally, labels)
            live = [op for op in operations if op and op.label not in exhausted]
            if missing <= 0 or not live:
                break
            total_weight = sum(weights[op.label] for op in live)
            for operation in live:
                share = max(1, round(missing * weights[operation.label] / total_weight))
                sent = 0
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    count = share // 2 + (share % 2 if mode is GenerationMode.POSITIVE else 0)
                    if count == 0:
                        continue
                    sent += _generate(
                        operation,
                        mode,
                        count,
                        seed=_seed(seed, operation.label, mode.value, attempt),
                        data=target.data,
                        on_case=functools.partial(
                            send, family=family, mode=mode.value, target=target, tally=tally
                        ),
                        tally=tally,
                    )
                if sent < share:
                    exhausted.add(operation.label)
        for operation in operations:
            if operation is not None and operation.body:
                _generate(
                    operation,
                    GenerationMode.POSITIVE,
                    nested,
                    seed=_seed(seed, operation.label, "nested"),
                    data=target.data,
                    on_case=functools.partial(
                        send, family=family, mode="nested", target=target, tally=tally
                    ),
                    tally=tally,
                    nested=True,
                )
    return tally


def _generated(tally: Tally, labels: tuple[str, ...]) -> int:
    """A family's generated cases, valid and invalid (not coverage, not nested)."""
    return sum(
        count
        for label in labels
        for mode, count in tally.by_mode.get(label, Counter()).items()
        if mode in ("positive", "negative")
    )


def _seed(seed: int, *parts: object) -> int:
    """A seed per operation, mode and pass, stable across processes (hash() is not)."""
    return zlib.crc32(":".join(map(str, (seed, *parts))).encode())


def _coverage_cases(schema: BaseSchema, operation: Operation, tally: Tally) -> list[AnyCase]:
    from schemathesis import GenerationMode

    try:
        return list(
            schema.iter_coverage_cases(
                operation,
                generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                generation_config=schema.config.generation_for(operation=operation),
            )
        )
    except Exception as exc:  # the report says what could not be generated
        tally.generation_errors.append(f"{operation.label} (coverage): {exc!r}")
        return []


def _generate(
    operation: Operation,
    mode: Any,
    count: int,
    *,
    seed: int,
    data: fuzz_data.KnownData,
    on_case: Callable[..., None],
    tally: Tally,
    nested: bool = False,
) -> int:
    """Up to `count` cases of `operation` in `mode`, each passed to on_case, which
    records its failures rather than raising: every case is sent, none is shrunk.
    `nested`: each body made a deeply nested one (fuzz_data.nest), and on_case told
    how. Returns how many were generated (fewer when the input space ran out)."""
    import hypothesis
    import hypothesis.errors
    from hypothesis import HealthCheck, Phase
    from hypothesis import strategies as st

    generated = 0

    @hypothesis.settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=False,
        print_blob=False,
    )
    @hypothesis.seed(seed)
    @hypothesis.given(
        case=operation.as_strategy(generation_mode=mode),
        chooser=st.randoms(use_true_random=False),
    )
    def drive(case: AnyCase, chooser: Any) -> None:
        nonlocal generated
        generated += 1
        fuzz_data.ground(case, data, chooser)
        if nested:
            on_case(case, nesting=fuzz_data.nest(case, chooser))
        else:
            on_case(case)

    try:
        drive()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to generate in this mode (an operation without inputs)
    except Exception as exc:  # the report says what could not be generated
        kind = "nested" if nested else mode.value
        tally.generation_errors.append(f"{operation.label} ({kind}): {exc!r}")
    return generated


# ---------------------------------------------------------------- one case


def send(
    case: AnyCase,
    family: str,
    mode: str,
    target: Target,
    tally: Tally,
    nesting: fuzz_data.Nesting | None = None,
) -> None:
    """Send one case as a client of its own, with the operation's credentials, and
    check the answer. `nesting`: how its body was nested (fuzz_data.nest)."""
    import requests
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        positive_data_acceptance,
        response_schema_conformance,
        status_code_conformance,
    )

    label = case.operation.label
    headers = {"X-Real-IP": f"{target.client_prefix}-{next(target.clients)}"}
    credentials = _credentials(case, target)
    if credentials:
        headers["Authorization"] = credentials

    def fail(kind: str, status: int | None, title: str) -> None:
        tally.failures.append(
            Failure(family, label, kind, status, title, _curl(case, headers, target))
        )

    try:
        response = case.call(
            base_url=target.base_url,
            session=target.session,
            headers=headers,
            timeout=REQUEST_TIMEOUT_S,
        )
    except requests.RequestException as exc:
        tally.count(label, mode, None)
        fail("no answer", None, repr(exc))
        return
    tally.count(label, mode, response.status_code)
    error = _error(response)
    checks = [
        ("server error", not_a_server_error),
        ("undocumented status", status_code_conformance),
        ("content type", content_type_conformance),
        ("body schema", response_schema_conformance),
    ]
    if nesting is None:  # a nested body is no longer the valid one generated
        checks.append(("valid refused", positive_data_acceptance))
    for kind, check in checks:
        try:
            case.validate_response(response, checks=[check], headers=headers)
        except FailureGroup as group:
            if kind == "valid refused" and _document_cannot_state(label, error):
                tally.valid_refused[label, str(error.get("field"))] += 1
                continue
            answered = _answered(error)
            for failure in group.exceptions:
                fail(kind, response.status_code, f"{failure.title}{answered}: {failure.message}")
    named = error.get("field")
    sent = _sent(case) | (nesting.keys if nesting else set())
    if error.get("code") == "VALIDATION_ERROR" and not named:
        fail("field not named", response.status_code, f"VALIDATION_ERROR: {error.get('message')!r}")
    elif named and str(named).split(".")[0] not in _inputs(case.operation) | sent:
        fail(
            "field not an input",
            response.status_code,
            f"{error.get('code')} names {named!r}, which the operation does not take",
        )
    if nesting is not None:
        _check_nesting(case, nesting, response.status_code, error, tally, fail)


def _answered(error: dict[str, Any]) -> str:
    """The error's code, field and message, for a failure's title."""
    if not error.get("code"):
        return ""
    named = f" naming {error['field']!r}" if error.get("field") else ""
    return f" (answered {error['code']}{named}: {str(error.get('message', ''))[:120]!r})"


def _document_cannot_state(label: str, error: dict[str, Any]) -> bool:
    """Whether a 400 to a valid request is one of DOCUMENT_CANNOT_STATE's rules."""
    field, message = str(error.get("field")), str(error.get("message", ""))
    return any(
        label == rule_label and field == rule_field and message.startswith(rule_message)
        for rule_label, rule_field, rule_message in DOCUMENT_CANNOT_STATE
    )


# What a request can be refused for before its body is read: its credentials, its
# client's rate budget, and (400) its path's id.
_BEFORE_THE_BODY = (401, 403, 429)


def _check_nesting(
    case: AnyCase,
    nesting: fuzz_data.Nesting,
    status: int,
    error: dict[str, Any],
    tally: Tally,
    fail: Callable[[str, int | None, str], None],
) -> None:
    """A body nested deeper than the API's limit is refused as INVALID_JSON, or for
    something read before the body; anything else (a 404 for the student it names, a
    400 for one of its fields, a 200) means it was parsed. One within the limit is
    parsed: never INVALID_JSON while it is an object."""
    from lib.http import MAX_JSON_DEPTH

    tally.nested_max_depth = max(tally.nested_max_depth, nesting.depth)
    invalid_json = status == 400 and error.get("code") == "INVALID_JSON"
    path_fields = {p.name for p in case.operation.path_parameters}
    where = f"{nesting.shape} {nesting.depth} levels deep" + (
        f" in `{nesting.field}`" if nesting.field else " as the body"
    )
    if nesting.depth > MAX_JSON_DEPTH:
        if invalid_json:
            tally.nested["deeper, refused as INVALID_JSON"] += 1
        elif status in _BEFORE_THE_BODY or (status == 400 and error.get("field") in path_fields):
            tally.nested["deeper, refused before the body was read"] += 1
        else:
            fail(NESTING_KIND, status, f"{where} answered {status} {error.get('code')}")
    elif invalid_json and nesting.is_object:
        fail(NESTING_KIND, status, f"{where} refused: {error.get('message')}")
    else:
        tally.nested["within, parsed"] += 1


def _credentials(case: AnyCase, target: Target) -> str | None:
    """The Authorization header the caller of this operation holds, unless the case
    is about its absence (a coverage case without the security parameter)."""
    path = case.operation.path
    if path.startswith("/api/admin/"):
        secret = target.admin_token
    elif path == "/api/cron/sync":
        secret = target.cron_secret
    else:
        return None
    data = case.meta.phase.data if case.meta is not None else None
    if getattr(data, "parameter", None) == "Authorization":
        return None
    return f"Bearer {secret}"


_INPUTS: dict[str, frozenset[str]] = {}


def _inputs(operation: Operation) -> frozenset[str]:
    """What an error may name for this operation: its parameters (a header as the API
    names it, Idempotency-Key as idempotency_key), its body's properties, or the body."""
    if operation.label not in _INPUTS:
        parameters = (*operation.path_parameters, *operation.query, *operation.headers)
        names = {p.name.lower().replace("-", "_") for p in parameters} | {"body"}
        for body in operation.body:
            names |= set(((body.definition or {}).get("schema") or {}).get("properties") or {})
        _INPUTS[operation.label] = frozenset(names)
    return _INPUTS[operation.label]


def _sent(case: AnyCase) -> set[str]:
    """The names the case sent in its query and body (a 400 may name one the operation
    does not take: an unexpected property is the field at fault)."""
    return {
        str(key)
        for container in (case.query, case.body)
        if isinstance(container, dict)
        for key in container
    }


def _error(response: Any) -> dict[str, Any]:
    """The error object of an answer in the envelope ({} for anything else)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _curl(case: AnyCase, headers: dict[str, str], target: Target) -> str:
    command = case.as_curl_command(headers=headers, base_url=target.base_url)
    for secret in (target.admin_token, target.cron_secret):
        command = command.replace(secret, "<secret>")
    return command


# ---------------------------------------------------------------- report


_TRACEBACK = re.compile(rb"Traceback \(most recent call last\)")


def _tracebacks(log_path: Path) -> int:
    return len(_TRACEBACK.findall(log_path.read_bytes())) if log_path.exists() else 0


def _write_failures(path: Path, tally: Tally) -> None:
    lines = [
        f"[{f.kind}] {f.operation} -> {f.status}: {f.title}\n{f.curl}\n" for f in tally.failures
    ]
    path.write_text("\n".join(lines) or "no failures\n")


@dataclass(frozen=True)
class Report:
    settings: RunSettings
    per_family: int
    nested_per_operation: int
    tally: Tally
    tracebacks: int
    log_path: Path
    seconds: float
    versions: tuple[str, str]

    @property
    def server_errors(self) -> list[Failure]:
        return self.tally.failures_of("server error", "no answer")

    @property
    def schema_violations(self) -> list[Failure]:
        return self.tally.failures_of(*SCHEMA_KINDS)

    @property
    def nesting_failures(self) -> list[Failure]:
        return self.tally.failures_of(NESTING_KIND)

    @property
    def passed(self) -> bool:
        return (
            not self.tally.failures
            and not self.tally.generation_errors
            and self.tracebacks == 0
            and all(
                _generated(self.tally, labels) >= self.per_family for labels in FAMILIES.values()
            )
        )

    def markdown(self) -> str:
        from reliability import fuzz_report

        return fuzz_report.render(self)
