"""Cold start: how long each api/ function takes to import, against the import of the
third-party packages it pulls in.

On Vercel a cold instance imports the function file before it can answer, so import
time is cold-start time. The packages a function needs (psycopg, pydantic, redis, ...)
cost what they cost; what we control is the rest: our own modules and the standard
library modules only they use. Target: a function's import <= its third-party
packages' import + 50 ms.

For each function file, N fresh interpreters each import it by path as Vercel's
bootstrap does (spec_from_file_location under its Vercel module name) and note which
modules it loaded; the third-party ones are those from site-packages. N more fresh
interpreters then import just those modules, in the same order: every submodule, not
only the package (pydantic, for one, loads its submodules lazily, so `import pydantic`
alone costs a fraction of `from pydantic import BaseModel`). Both figures are the
median of the N, interpreter start-up excluded. One run per target is discarded first
so byte-code caches are warm (on Vercel our own files may compile at cold start:
their bundles leave __pycache__ out, so the figures here are the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from local.server import API_DIR, ROOT, Route, discover_routes

NAME = "cold-start"
SECTION = "cold-start"
# Odd, so the median is one real run; nine fresh interpreters per figure keep a run of
# the whole api/ around a minute on 2 cores while a stray slow start cannot move it.
DEFAULT_RUNS = 9
BUDGET_MS = 50.0  # the allowance for our own code on top of the packages
# Shown for context: what the usual dependencies cost on their own.
REFERENCE_PACKAGES = ("psycopg", "psycopg_pool", "redis", "pydantic")
# One import is well under a second; a minute means a hung interpreter.
PROBE_TIMEOUT_S = 60

# Imports one function file the way vercel_runtime.resolver.import_module does and
# reports the time and the site-packages modules it loaded, in first-loaded order.
_FUNCTION_PROBE = textwrap.dedent(
    """
    import importlib.util, json, sys, sysconfig, time

    path, name = sys.argv[1], sys.argv[2]
    before = set(sys.modules)
    started = time.perf_counter()
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    elapsed_ms = (time.perf_counter() - started) * 1000
    site = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    modules = [
        loaded
        for loaded, value in list(sys.modules.items())
        if loaded not in before
        and any((getattr(value, "__file__", None) or "").startswith(s + "/") for s in site)
    ]
    print(json.dumps({"ms": elapsed_ms, "modules": modules}))
    """
)
_PACKAGE_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, time

    started = time.perf_counter()
    for name in sys.argv[1:]:
        importlib.import_module(name)
    print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
    """
)


class BenchError(RuntimeError):
    """A probe interpreter failed: the function or a package does not import."""


@dataclass(frozen=True)
class FunctionTime:
    file: str  # relative to the repository root
    import_ms: float
    modules: tuple[str, ...]  # the third-party modules it loaded, first-loaded first
    packages_ms: float  # importing just those modules

    @property
    def packages(self) -> tuple[str, ...]:
        """The top-level packages of `modules`."""
        return tuple(dict.fromkeys(name.partition(".")[0] for name in self.modules))

    @property
    def own_ms(self) -> float:
        """What our code (and the stdlib only it uses) adds to the packages."""
        return self.import_ms - self.packages_ms

    @property
    def ok(self) -> bool:
        return self.own_ms <= BUDGET_MS


@dataclass(frozen=True)
class Outcome:
    runs: int
    functions: tuple[FunctionTime, ...]
    references: tuple[tuple[str, float], ...]
    measured_on: datetime

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.functions)


def _probe(code: str, args: Sequence[str]) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up run must leave .pyc behind
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,  # where Vercel's bootstrap runs: the project root on sys.path
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"importing {' '.join(args)} failed:\n{completed.stderr.strip()}")
    # The last line: a module may print while it is imported.
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def _median_ms(code: str, args: Sequence[str], runs: int) -> tuple[float, dict[str, object]]:
    last = _probe(code, args)  # warm-up, discarded
    times = []
    for _ in range(runs):
        last = _probe(code, args)
        times.append(float(last["ms"]))  # type: ignore[arg-type]
    return statistics.median(times), last


def function_routes(files: Sequence[str] = ()) -> list[Route]:
    """The api/ functions to measure: all, or those named (paths relative to the root)."""
    routes = {route.file.relative_to(ROOT).as_posix(): route for route in discover_routes(API_DIR)}
    unknown = sorted(set(files) - set(routes))
    if unknown:
        raise BenchError(f"not function files: {', '.join(unknown)} (known: {', '.join(routes)})")
    return [routes[file] for file in (files or sorted(routes))]


def measure(
    routes: Sequence[Route],
    runs: int = DEFAULT_RUNS,
    references: Sequence[str] = REFERENCE_PACKAGES,
    progress: Callable[[str], None] = print,
) -> Outcome:
    package_cache: dict[tuple[str, ...], float] = {}

    def packages_ms(modules: tuple[str, ...]) -> float:
        if modules not in package_cache:
            package_cache[modules] = (
                _median_ms(_PACKAGE_PROBE, modules, runs)[0] if modules else 0.0
            )
        return package_cache[modules]

    functions = []
    for route in routes:
        file = route.file.relative_to(ROOT).as_posix()
        import_ms, last = _median_ms(_FUNCTION_PROBE, (str(route.file), route.module_name), runs)
        modules = tuple(str(name) for name in last["modules"])  # type: ignore[attr-defined]
        result = FunctionTime(file, import_ms, modules, packages_ms(modules))
        functions.append(result)
        progress(
            f"{file:40} import {result.import_ms:7.1f} ms  packages {result.packages_ms:7.1f} ms"
            f"  ours {result.own_ms:+7.1f} ms  {'ok' if result.ok else 'OVER'}"
        )
    reference_times = tuple((name, packages_ms((name,))) for name in references)
    return Outcome(runs, tuple(functions), reference_times, datetime.now(UTC))


# ---------------------------------------------------------------- the report


def render(outcome: Outcome) -> str:
    """The BENCHMARKS.md section (also what the command prints)."""
    rows = [
        [
            f"`{f.file}`",
            f"{f.import_ms:.1f}",
            f"{f.packages_ms:.1f}",
            f"{f.own_ms:+.1f}",
            "ok" if f.ok else "OVER",
            ", ".join(f.packages) or "none",
        ]
        for f in outcome.functions
    ]
    reference_rows = [[f"`import {name}`", f"{ms:.1f}"] for name, ms in outcome.references]
    over = [f.file for f in outcome.functions if not f.ok]
    verdict = (
        f"Every function is within {BUDGET_MS:.0f} ms of its packages."
        if not over
        else f"OVER the {BUDGET_MS:.0f} ms allowance: {', '.join(over)}."
    )
    lines = [
        "## Cold start: import time per function",
        "",
        f"`./run bench cold-start --report`, measured {outcome.measured_on:%Y-%m-%d}.",
        "",
        f"- Machine: {report.machine().describe()}; Python {platform.python_version()}.",
        f"- Each figure: median of {outcome.runs} fresh interpreters (start-up excluded,"
        " byte-code caches warm). A function is imported by path as Vercel's bootstrap"
        " does; its packages figure imports just the site-packages modules that loaded"
        " (every submodule), in the same order.",
        f"- Target: ours (function minus packages) <= {BUDGET_MS:.0f} ms.",
        "",
        report.markdown_table(
            ["function", "import ms", "packages ms", "ours ms", "target", "third-party packages"],
            rows,
        ),
        "",
        report.markdown_table(["reference", "ms"], reference_rows),
        "",
        "References are the bare statement, for scale: `import pydantic` alone loads"
        " little, since pydantic imports its submodules on first use.",
        "",
        verdict,
    ]
    return "\n".join(lines)


def write_report(outcome: Outcome, path: Path = report.BENCHMARKS_PATH) -> None:
    report.update_section(path, SECTION, render(outcome))


# ---------------------------------------------------------------- command line


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", "-n", type=_positive, default=DEFAULT_RUNS, help="fresh interpreters per figure"
    )
    parser.add_argument(
        "--function",
        dest="functions",
        action="append",
        default=[],
        metavar="api/FILE.py",
        help="measure only this function file (repeatable; default: every one)",
    )
    parser.add_argument("--report", action="store_true", help="write the figures to BENCHMARKS.md")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a function is over the target"
    )


def main(args: argparse.Namespace) -> int:
    try:
        outcome = measure(function_routes(args.functions), runs=args.runs)
    except BenchError as exc:
        print(f"cold-start: {exc}", file=sys.stderr)
        return 2
    print()
    print(render(outcome))
    if args.report:
        write_report(outcome)
        print(f"\nwritten to {report.BENCHMARKS_PATH.relative_to(ROOT)}")
    return 1 if args.check and not outcome.ok else 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    add_arguments(cli)
    sys.exit(main(cli.parse_args()))
