"""Secrets, tokens and full email addresses never reach a log line or an error body.

tests/conftest.py installs the hooks below, so every run of the suite (the whole of
it under `./run test`) is watched:

* every log record of every test phase: a handler on the root logger, which is at
  DEBUG while a test runs, formats each record as lib/log.py writes it in production
  (one JSON line, the traceback included);
* what each test wrote to stdout and stderr as pytest captured it. Child processes
  that inherit the test's descriptors write there too: the local servers that
  tests/local and tests/browser start, the sync children of tests/sync/test_kills.py;
* child output a test reads itself and hands over (`child_output`): the Vercel
  bootstrap children of tests/vercel, the gunicorn server of tests/security;
* every error body the tests' API clients received (tests/api/conftest.py calls
  `check_error_body`, which fails the test at once and keeps the body for the end).

At the end of the session all of it is scanned for
* the value of every secret the suite used: those tests register
  (`register_secret`), every environment variable named *SECRET, *TOKEN or *KEY seen
  while a test ran, and every module-level string constant so named in the tests,
  local, bench and reliability modules (values under 8 characters are too common to
  search for: counted as skipped);
* JWT-shaped strings (`eyJ...eyJ...`) and `Bearer <value>`;
* full email addresses. The app writes masked ones (`d***@example.com`, lib/log.py),
  which do not match; so does DOCUMENTED_ADDRESSES (the `./run dev` admin, a made-up
  local address). One known exposure is counted, not failed: an address in the query
  string of a logged request line (`"GET /api/bookings/list?...&email=... HTTP/1.1"`).
  The students' GET endpoints take the email there (an API kept from the system being
  replaced), so every request log that records URLs holds it: the tests' HTTP client
  (urllib3) and Vercel's Python runtime (tests/vercel) do. The app never logs a URL.

A finding fails the run (exit status 1). Findings are printed with every secret
replaced by its label, emails masked and tokens cut out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lib import log
from lib.log import _JsonFormatter, mask_email

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?")
# `Bearer <token>`, not a challenge's parameters (`Bearer error="invalid_token"`).
BEARER = re.compile(r'\bbearer\s+(?![A-Za-z_]+=\\?")([A-Za-z0-9._~+/=-]{6,})', re.IGNORECASE)
# A full address, also percent-encoded (%40). A masked one (d***@...) does not match:
# the local part must end right before the @ and may not hold "*".
EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+*-])([A-Za-z0-9._+-]+(?:%[0-9A-F]{2}[A-Za-z0-9._+-]*)*)"
    r"(?:@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})(?![A-Za-z0-9-])",
    re.IGNORECASE,
)
DOCUMENTED_ADDRESSES = frozenset({"admin@localhost"})
# A request line as HTTP servers and clients log it: "GET /path?query HTTP/1.1".
REQUEST_LINE = re.compile(r'"(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+) HTTP/[0-9.]+\\?"')
SECRET_NAME = re.compile(r"(?:SECRET|TOKEN|KEY)$")
CONSTANT_NAME = re.compile(r"^(?:[A-Z0-9]+_)*(?:SECRET|TOKEN|KEY)$")
CONSTANT_MODULES = ("tests.", "local.", "bench.", "reliability.")
MIN_SECRET_LEN = 8
REPORT_ENV = "LOGSCAN_REPORT"  # where to write the session's summary as JSON
EXCERPT = 60  # characters shown on each side of a finding


@dataclass
class Finding:
    rule: str  # secret | jwt | bearer | email
    source: str  # the test phase (or "between tests") and what was read
    line: int
    excerpt: str  # redacted


@dataclass
class Summary:
    log_records: int = 0
    log_bytes: int = 0
    captured_bytes: int = 0  # pytest-captured stdout/stderr, child processes' included
    child_bytes: int = 0  # child output handed over by tests
    children: int = 0
    error_bodies: int = 0
    secrets: dict[str, int] = field(default_factory=dict)  # origin -> how many
    skipped_short: int = 0
    query_emails: int = 0  # the known exposure (module docstring): counted, not failed
    findings: list[Finding] = field(default_factory=list)

    def merge(self, other: Summary) -> None:
        for name, value in asdict(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        for origin, count in other.secrets.items():
            self.secrets[origin] = self.secrets.get(origin, 0) + count
        self.findings.extend(other.findings)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        findings = [Finding(**f) for f in data.pop("findings", [])]
        return cls(**data, findings=findings)


@dataclass
class _Text:
    source: str
    kind: str
    lines: list[str] = field(default_factory=list)


class Watch:
    """What one pytest process saw, and the secrets it knows."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # value -> label
        self.origins: dict[str, str] = {}  # value -> registered | env | constant
        self.skipped_short: set[str] = set()
        self.texts: list[_Text] = []
        self.summary = Summary()
        self.source = "between tests"
        self._logs: _Text | None = None
        self.handler = _Capture(self)

    # ---- secrets

    def register(self, value: str | None, label: str, origin: str = "registered") -> None:
        if not value:
            return
        if len(value) < MIN_SECRET_LEN:
            self.skipped_short.add(value)
            return
        self.secrets.setdefault(value, label)
        self.origins.setdefault(value, origin)

    def register_environment(self) -> None:
        for name, value in os.environ.items():
            if SECRET_NAME.search(name):
                self.register(value, f"environment {name}", "environment")

    def register_constants(self) -> None:
        for module_name, module in list(sys.modules.items()):
            if module is None or not module_name.startswith(CONSTANT_MODULES):
                continue
            for name, value in list(vars(module).items()):
                if isinstance(value, str) and CONSTANT_NAME.match(name):
                    self.register(value, f"{module_name}.{name}", "constant")

    # ---- what was written

    def log_line(self, line: str) -> None:
        self.summary.log_records += 1
        self.summary.log_bytes += len(line)
        if self._logs is None:
            self._logs = _Text(self.source, "log")
            self.texts.append(self._logs)
        self._logs.lines.append(line)

    def output(self, source: str, kind: str, text: str) -> None:
        self.texts.append(_Text(source, kind, text.splitlines()))

    @contextlib.contextmanager
    def phase(self, nodeid: str, when: str) -> Iterator[None]:
        """Attribute what is logged to this test phase, with the root logger at DEBUG
        and our handler on it."""
        # lib.log.configure() (each api function calls it when first imported) replaces
        # the root's handlers, once per process: done here first, it cannot drop ours
        # halfway through a test.
        log.configure()
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        level = root.level
        # The other handlers (lib.log's stderr, pytest's) keep getting what they got
        # before the root went down to DEBUG.
        others = [h for h in root.handlers if h is not self.handler and not h.level]
        for handler in others:
            handler.setLevel(level)
        root.setLevel(logging.DEBUG)
        self.source, self._logs = f"{nodeid} ({when})", None
        self.register_environment()
        try:
            yield
        finally:
            self.register_environment()
            root.setLevel(level)
            for handler in others:
                handler.setLevel(logging.NOTSET)
            self.source, self._logs = "between tests", None

    # ---- scanning

    def line_findings(self, line: str) -> Iterator[Finding]:
        """What on this line must not be there; query-string emails of request lines
        are counted in summary.query_emails instead."""
        for value, label in self.secrets.items():
            if value in line:
                yield self._finding("secret", line, line.index(value), value, label)
        for match in JWT.finditer(line):
            yield self._finding("jwt", line, match.start(), match.group(0), "JWT")
        for match in BEARER.finditer(line):
            yield self._finding("bearer", line, match.start(1), match.group(1), "token")
        urls = [m.span(1) for m in REQUEST_LINE.finditer(line)]
        for match in EMAIL.finditer(line):
            address = f"{match.group(1)}@{match.group(2)}"
            if address.lower() in DOCUMENTED_ADDRESSES:
                continue
            if any(start <= match.start() < end and "?" in line[start:end] for start, end in urls):
                self.summary.query_emails += 1
                continue
            masked = mask_email(address) or "***"
            yield self._finding("email", line, match.start(), match.group(0), masked)

    def _finding(self, rule: str, line: str, start: int, found: str, shown_as: str) -> Finding:
        """The line around a finding, the finding replaced by `shown_as`. The whole
        line is redacted before it is cut, so that no part of a secret survives."""
        marker = "\x00"
        line = line[:start] + marker + line[start + len(found) :]
        for value, label in self.secrets.items():
            line = line.replace(value, f"[{label}]")
        line = JWT.sub("[JWT]", line)
        line = BEARER.sub("Bearer [token]", line)
        line = EMAIL.sub(lambda m: mask_email(f"{m.group(1)}@{m.group(2)}") or "***", line)
        at = line.index(marker)
        window = line[max(0, at - EXCERPT) : at + EXCERPT]
        return Finding(rule, "", 0, window.replace(marker, f"[{shown_as}]"))

    def scan(self) -> Summary:
        self.register_environment()
        self.register_constants()
        summary = self.summary
        summary.skipped_short = len(self.skipped_short)
        summary.secrets = {}
        for origin in self.origins.values():
            summary.secrets[origin] = summary.secrets.get(origin, 0) + 1
        summary.query_emails = 0
        summary.findings = []
        seen: set[tuple[str, str, str]] = set()
        for text in self.texts:
            for number, line in enumerate(text.lines, start=1):
                for finding in self.line_findings(line):
                    finding.source, finding.line = f"{text.source}: {text.kind}", number
                    key = (finding.rule, finding.source, finding.excerpt)
                    if key not in seen:
                        seen.add(key)
                        summary.findings.append(finding)
        return summary


class _Capture(logging.Handler):
    def __init__(self, watch: Watch) -> None:
        super().__init__(logging.DEBUG)
        self.watch = watch
        self.setFormatter(_JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is still read
            line = f"{record.name} {record.msg!r} {record.args!r}"
        self.watch.log_line(line)


WATCH = Watch()
SUMMARY = pytest.StashKey[Summary]()


def register_secret(value: str | None, label: str) -> None:
    """A secret this test uses: it must never appear in a log line or an error body."""
    WATCH.register(value, label)


def child_output(name: str, output: bytes | str) -> None:
    """Output of a child process the test read itself, to be scanned at the end."""
    text = output.decode(errors="replace") if isinstance(output, bytes) else output
    WATCH.summary.child_bytes += len(text)
    WATCH.summary.children += 1
    WATCH.output(WATCH.source, f"child {name}", text)


def check_error_body(method: str, path: str, status: int, body: str) -> None:
    """An error answer echoes no secret, token or full email: fails the test at once."""
    if status < 400:
        return
    WATCH.summary.error_bodies += 1
    WATCH.output(WATCH.source, f"error body {method} {path.split('?', maxsplit=1)[0]}", body)
    found = list(WATCH.line_findings(body))
    assert not found, f"{method} {path} -> {status} echoes " + "; ".join(
        f"{f.rule}: {f.excerpt}" for f in found
    )


# ------------------------------------------------------------------ pytest hooks
# Imported by tests/conftest.py, so that they watch the whole suite.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with WATCH.phase(item.nodeid, "setup"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with WATCH.phase(item.nodeid, "call"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with WATCH.phase(item.nodeid, "teardown"):
        yield


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """This phase's captured stdout and stderr (a report repeats the earlier phases')."""
    if getattr(report, "node", None) is not None:
        return  # an xdist worker's report, already read by the worker
    for title, content in report.sections:
        if title.startswith(("Captured stdout", "Captured stderr")) and title.endswith(
            f" {report.when}"
        ):
            WATCH.summary.captured_bytes += len(content)
            WATCH.output(f"{report.nodeid} ({report.when})", title.lower(), content)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    summary = WATCH.scan()
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller decides
        workeroutput["logscan"] = json.dumps(asdict(summary))
        return
    for data in config.stash.get(WORKERS, []):
        summary.merge(Summary.from_dict(json.loads(data)))
    config.stash[SUMMARY] = summary
    target = os.environ.get(REPORT_ENV)
    if target:
        Path(target).write_text(json.dumps(asdict(summary), indent=2))
    if summary.findings and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


WORKERS = pytest.StashKey[list[str]]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist: a worker's summary, merged by the controller at the end."""
    data = getattr(node, "workeroutput", {}).get("logscan")
    if data:
        node.config.stash.setdefault(WORKERS, []).append(data)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    summary = config.stash.get(SUMMARY, None)
    if summary is None:
        return
    terminalreporter.write_line(describe(summary))
    for finding in summary.findings[:50]:
        terminalreporter.write_line(
            f"  LEAK {finding.rule} in {finding.source} line {finding.line}: {finding.excerpt}",
            red=True,
        )
    if len(summary.findings) > 50:
        terminalreporter.write_line(f"  ... and {len(summary.findings) - 50} more", red=True)


def describe(summary: Summary) -> str:
    secrets = ", ".join(f"{n} {origin}" for origin, n in sorted(summary.secrets.items()))
    return (
        f"log scan: {summary.log_records} log records ({summary.log_bytes} bytes),"
        f" {summary.captured_bytes} bytes of captured output,"
        f" {summary.child_bytes} bytes of output from {summary.children} children,"
        f" {summary.error_bodies} error bodies; {sum(summary.secrets.values())} secrets"
        f" ({secrets or 'none'}); {summary.query_emails} emails in request-line query"
        f" strings (known); findings: {len(summary.findings)}"
    )
