"""A test session stops the embedded servers it started, and only those
(tests/suite_servers.py, local/stack_lease.py).

Each test runs inner pytest sessions with the suite's plugin, in a scratch
LOCAL_STACK_DIR: their servers live apart from this session's and from a real run's.
They start servers as the reliability part does (reliability/stack.py), then the test
looks at the ports the servers listened on once the session is over."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from local import stack, stack_lease

ROOT = Path(__file__).resolve().parents[2]
# An inner session imports the suite's modules (~1 s) and may initdb (~1 s); a
# minute means it hangs.
INNER_TIMEOUT_S = 60.0
# The head of every inner test file: report() gives the outer test the ports of the
# servers started, wait_for() lets it order two sessions.
PRELUDE = """
import os
import time
from pathlib import Path

from local import stack as local_stack
from reliability import stack

SIGNALS = Path(os.environ["SIGNALS"])


def report(*ports: int) -> None:
    (SIGNALS / "ports").write_text(" ".join(map(str, ports)))


def wait_for(name: str) -> None:
    deadline = time.monotonic() + 60
    while not (SIGNALS / name).exists():
        assert time.monotonic() < deadline, f"no {name} within 60 s"
        time.sleep(0.05)
"""


@dataclass(frozen=True)
class Inner:
    """A scratch place for inner sessions: their LOCAL_STACK_DIR and their signals."""

    root: Path

    @property
    def stack_dir(self) -> Path:
        return self.root / "stack"

    @property
    def signals(self) -> Path:
        return self.root / "signals"

    @property
    def pg_dir(self) -> Path:
        return self.stack_dir / "reliability-postgres"

    @property
    def redis_dir(self) -> Path:
        return self.stack_dir / "reliability-redis"

    def ports(self) -> list[int]:
        return [int(port) for port in (self.signals / "ports").read_text().split()]

    def signal(self, name: str) -> None:
        (self.signals / name).touch()

    def start(self, body: str, *args: str) -> subprocess.Popen[str]:
        """An inner session over a test file of `body`, with the suite's plugin."""
        tests = self.root / f"session-{uuid.uuid4().hex[:8]}"
        tests.mkdir()
        (tests / "test_inner.py").write_text(PRELUDE + body)
        env: Mapping[str, str] = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LOCAL_STACK_DIR": str(self.stack_dir),
            "SIGNALS": str(self.signals),
            # Only the plugins named (-p): loading every installed one (schemathesis,
            # hypothesis, playwright...) takes seconds per session.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
        return subprocess.Popen(
            [
                sys.executable, "-m", "pytest",
                "-p", "tests.suite_servers",
                "-p", "no:cacheprovider",
                "-q", "-W", "error",
                *args,
                "test_inner.py",
            ],
            cwd=tests,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    def run(self, body: str, *args: str) -> subprocess.CompletedProcess[str]:
        process = self.start(body, *args)
        return _finish(process)


def _finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        output, _ = process.communicate(timeout=INNER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"the inner session hung:\n{output}")
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)  # loopback refuses at once; this bounds a wedged port
        return probe.connect_ex((stack.HOST, port)) == 0


def _wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + INNER_TIMEOUT_S
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the inner session ended early:\n{_finish(process).stdout}")
        assert time.monotonic() < deadline, f"no {path.name} from the inner session"
        time.sleep(0.05)


@pytest.fixture
def inner() -> Iterator[Inner]:
    """Not pytest's tmp_path: under root PostgreSQL runs as another user, and a pytest
    session starting meanwhile re-tightens /tmp/pytest-of-root to 0700 (see
    test_stack.py). Whatever an inner session left running is stopped here."""
    place = Inner(Path(tempfile.mkdtemp(prefix="suite-servers-test-")))
    place.signals.mkdir()
    yield place
    stack.stop_postgres(place.pg_dir)
    stack.stop_redis(place.redis_dir)
    shutil.rmtree(place.root, ignore_errors=True)


def test_the_suite_holds_the_lease(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.has_plugin("tests.suite_servers")


@pytest.mark.slow
def test_the_servers_a_session_started_are_stopped_when_it_ends(inner: Inner) -> None:
    """As the torture starts them, on an xdist worker: the controller stops them after
    its workers are done."""
    result = inner.run(
        """
def test_the_torture_s_servers_start() -> None:
    services = stack.services(restartable=True)
    report(services.pg_port, services.redis_port)


def test_on_another_worker() -> None:
    pass
""",
        "-p",
        "xdist",
        "-n",
        "2",
    )
    assert result.returncode == 0, result.stdout
    pg_port, redis_port = inner.ports()
    assert "stopped PostgreSQL on port" in result.stdout, result.stdout
    assert not _listening(pg_port), result.stdout
    assert not _listening(redis_port), result.stdout
    assert stack.postgres_port(inner.pg_dir) is None
    assert stack.redis_port(inner.redis_dir) is None
    assert not (inner.pg_dir / stack_lease.MARK_FILE).exists()


@pytest.mark.slow
def test_servers_that_ran_before_the_session_are_left_running(inner: Inner) -> None:
    pg_port, redis_port = stack.free_port(), stack.free_port()
    stack.ensure_postgres(inner.pg_dir, pg_port, durable=False)
    stack.ensure_redis(inner.redis_dir, redis_port, durable=False)

    result = inner.run(
        """
def test_the_torture_s_servers_are_found_running() -> None:
    services = stack.services(restartable=True)
    report(services.pg_port, services.redis_port)
"""
    )
    assert result.returncode == 0, result.stdout
    assert inner.ports() == [pg_port, redis_port]  # it used them...
    assert _listening(pg_port) and _listening(redis_port), result.stdout  # ...and left them
    assert stack.postgres_port(inner.pg_dir) == pg_port
    assert stack.redis_port(inner.redis_dir) == redis_port


@pytest.mark.slow
def test_a_server_is_not_stopped_under_a_session_still_using_it(inner: Inner) -> None:
    """The first session starts Redis and ends while a second one, which began when
    Redis already ran, still works: Redis keeps running until the last one ends."""
    first = inner.start(
        """
def test_starts_redis_and_ends_first() -> None:
    port = local_stack.free_port()
    local_stack.ensure_redis(stack.REDIS_DIR, port, durable=False)
    report(port)
    wait_for("first may end")
"""
    )
    _wait_for(inner.signals / "ports", first)
    (port,) = inner.ports()
    second = inner.start(
        """
def test_uses_redis_and_ends_last() -> None:
    (SIGNALS / "second began").touch()
    wait_for("second may end")
"""
    )
    _wait_for(inner.signals / "second began", second)

    inner.signal("first may end")
    result = _finish(first)
    assert result.returncode == 0, result.stdout
    assert _listening(port), result.stdout

    inner.signal("second may end")
    result = _finish(second)
    assert result.returncode == 0, result.stdout
    assert not _listening(port), result.stdout


@pytest.mark.slow
def test_a_killed_session_s_servers_are_stopped_by_the_next_one(inner: Inner) -> None:
    result = inner.run(
        """
def test_starts_redis_and_dies() -> None:
    port = local_stack.free_port()
    local_stack.ensure_redis(stack.REDIS_DIR, port, durable=False)
    report(port)
    os._exit(9)
"""
    )
    assert result.returncode == 9, result.stdout
    (port,) = inner.ports()
    assert _listening(port)

    result = inner.run("\ndef test_nothing() -> None:\n    pass\n")
    assert result.returncode == 0, result.stdout
    assert not _listening(port), result.stdout
