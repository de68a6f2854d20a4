"""The cold-start benchmark, once, on one function: it runs and its report renders.
Never asserts timing: figures from a shared test machine mean nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import cold_start, report

FUNCTION = "api/health.py"


@pytest.mark.slow
def test_one_run_on_one_function_renders(tmp_path: Path) -> None:
    routes = cold_start.function_routes([FUNCTION])
    lines: list[str] = []
    outcome = cold_start.measure(routes, runs=1, references=("redis",), progress=lines.append)

    [result] = outcome.functions
    assert result.file == FUNCTION
    assert result.import_ms > 0
    assert result.packages_ms >= 0
    assert all(not name.startswith(("api", "lib")) for name in result.modules)
    assert [name for name, _ in outcome.references] == ["redis"]
    assert len(lines) == 1 and FUNCTION in lines[0]

    section = cold_start.render(outcome)
    assert section.startswith("## Cold start")
    assert f"`{FUNCTION}`" in section
    assert "`import redis`" in section

    path = tmp_path / "BENCHMARKS.md"
    cold_start.write_report(outcome, path)
    start, end = report.markers(cold_start.SECTION)
    assert start == "<!-- bench:cold-start:start -->"
    assert end == "<!-- bench:cold-start:end -->"
    text = path.read_text()
    assert text.index(start) < text.index(f"`{FUNCTION}`") < text.index(end)


def test_an_unknown_function_is_refused() -> None:
    with pytest.raises(cold_start.BenchError, match="not function files"):
        cold_start.function_routes(["api/nope.py"])


def test_command_line() -> None:
    parser = argparse.ArgumentParser()
    cold_start.add_arguments(parser)
    args = parser.parse_args(["-n", "1", "--function", FUNCTION, "--check"])
    assert (args.runs, args.functions, args.check, args.report) == (1, [FUNCTION], True, False)
