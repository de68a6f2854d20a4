"""`./run dev`'s ports: each one has a flag, and a port that is taken ends the run at
once with status 2 and one line naming the port and its flag (no traceback, nothing
started). `--hubspot-port 0` puts the HubSpot stand-in on any free port and says which.

Nothing here boots the stack: the embedded servers' directories are moved to a scratch
directory, with no server in it, and the ports asked for are free ones, but for the
one a test holds."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import dev, hubspot_demo, server, stack

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ("--port", "--pg-port", "--redis-port", "--hubspot-port")
# Imports and the checks only; a run that gets further than the checks would boot the
# stack, which this bound would catch.
ENTRY_TIMEOUT_S = 60.0


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Not pytest's tmp_path (see test_stack.py: under root, PostgreSQL runs as another
    user and must reach the directory)."""
    path = Path(tempfile.mkdtemp(prefix="dev-ports-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def no_stack(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """./run dev as if on a fresh checkout: embedded servers in `scratch`, none
    running, no DATABASE_URL / REDIS_URL."""
    monkeypatch.setattr(stack, "DEFAULT_POSTGRES_DIR", scratch / "postgres")
    monkeypatch.setattr(stack, "DEFAULT_REDIS_DIR", scratch / "redis")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return scratch


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on, for as long as the test runs."""
    with socket.socket() as holder:
        holder.bind((stack.HOST, 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _argv(taken_flag: str, taken_port: int) -> list[str]:
    """Every port flag with a free port, but `taken_flag` with `taken_port`."""
    argv: list[str] = []
    for flag in FLAGS:
        argv += [flag, str(taken_port if flag == taken_flag else stack.free_port())]
    return argv


def _nothing_started(scratch: Path) -> bool:
    return (
        not (scratch / "postgres" / "pgdata").exists()
        and not (scratch / "redis" / "redis.pid").exists()
    )


@pytest.mark.parametrize("flag", FLAGS)
def test_a_taken_port_exits_2_naming_the_port_and_its_flag(
    flag: str, held_port: int, no_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dev.main(_argv(flag, held_port)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert f"port {held_port} " in err and f"pass {flag} " in err, err
    assert _nothing_started(no_stack)


def test_the_entry_point_says_which_port_is_taken_without_a_traceback(
    held_port: int, scratch: Path
) -> None:
    """`python -m local.dev`, as `./run dev` runs it, with the stand-in's port taken."""
    env = {
        key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}
    }
    result = subprocess.run(
        [sys.executable, "-m", "local.dev", *_argv("--hubspot-port", held_port)],
        cwd=ROOT,
        env={**env, "LOCAL_STACK_DIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=ENTRY_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"port {held_port} " in result.stderr, result.stderr
    assert "pass --hubspot-port " in result.stderr, result.stderr
    assert _nothing_started(scratch)


def test_a_port_our_own_embedded_server_listens_on_is_not_taken(
    no_stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reusing the running PostgreSQL and Redis of ./run dev is the normal case."""
    pg_port, redis_port = stack.free_port(), stack.free_port()
    monkeypatch.setattr(stack, "postgres_port", lambda data_dir: pg_port)
    monkeypatch.setattr(stack, "redis_port", lambda data_dir: redis_port)
    with socket.socket() as pg, socket.socket() as redis:
        for holder, port in ((pg, pg_port), (redis, redis_port)):
            holder.bind((stack.HOST, port))
            holder.listen()
        args = dev._parser().parse_args(
            [
                *("--pg-port", str(pg_port), "--redis-port", str(redis_port)),
                *("--hubspot-port", "0", "--port", str(stack.free_port())),
            ]
        )
        dev.check_ports(args, waiting=True)


def test_without_waiting_the_api_and_hubspot_ports_are_not_needed(
    held_port: int, no_stack: Path
) -> None:
    """--no-wait starts neither the API server nor the stand-in."""
    for flag in ("--port", "--hubspot-port"):
        dev.check_ports(dev._parser().parse_args(_argv(flag, held_port)), waiting=False)
    with pytest.raises(dev.PortTaken, match="--pg-port"):
        dev.check_ports(dev._parser().parse_args(_argv("--pg-port", held_port)), waiting=False)


def test_the_hubspot_port_flag_defaults_to_the_stand_in_s_port_and_takes_0() -> None:
    assert dev._parser().parse_args([]).hubspot_port == hubspot_demo.DEFAULT_PORT
    assert dev._parser().parse_args(["--hubspot-port", "0"]).hubspot_port == 0
    with pytest.raises(SystemExit):
        dev._parser().parse_args(["--hubspot-port", "-1"])
    with pytest.raises(SystemExit):
        dev._parser().parse_args(["--port", "0"])  # the API server's port is printed up front


def test_hubspot_port_0_binds_a_free_port_and_prints_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve() with the API server stubbed: the stand-in really listens on the port it
    prints, and hands that URL to the API server; it is stopped when serve() ends."""
    seen: dict[str, bool] = {}

    class Process:
        def wait(self) -> int:
            return 0

    def start(options: server.Options, env: dict[str, str]) -> Process:
        host, _, port = env["HUBSPOT_BASE_URL"].removeprefix("http://").partition(":")
        seen[env["HUBSPOT_BASE_URL"]] = _listening(host, int(port))
        return Process()

    monkeypatch.setattr(server, "start", start)
    monkeypatch.setattr(server, "stop", lambda process: None)
    with pytest.raises(server.ServerError):
        dev.serve(
            dev.Services(database_url, "redis://127.0.0.1:9/0"),
            server.Options(port=stack.free_port()),
            hubspot_port=0,
        )

    ((url, listened),) = seen.items()
    assert listened
    port = int(url.rpartition(":")[2])
    assert port not in (0, hubspot_demo.DEFAULT_PORT)
    assert f"HubSpot     stand-in at {url}" in capsys.readouterr().out
    assert not _listening(stack.HOST, port)


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)  # loopback refuses at once; this bounds a wedged port
        return probe.connect_ex((host, port)) == 0
