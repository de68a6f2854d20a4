"""RELIABILITY.md: each part rewrites its own section; a run of every part puts the
summary table at the top, above the parts, and leaves the parts' sections alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report
from reliability import __main__ as command
from reliability.outcome import Outcome, RunSettings


def test_the_summary_goes_under_the_header_and_the_parts_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "RELIABILITY.md"
    monkeypatch.setattr(command, "RELIABILITY_PATH", path)
    for name in ("torture", "fuzz"):
        report.update_section(
            path, name, f"## {name} v1", namespace="reliability", header=command.HEADER
        )
    outcomes = [
        Outcome("torture", True, "", "1,000 requests, 0 violations"),
        Outcome("fuzz", False, ""),
    ]
    command.write_summary(outcomes, RunSettings(seed=7, long=True))
    # A later run of one part rewrites its row and keeps the others.
    command.write_summary([Outcome("fuzz", True, "", "4,000 cases")], RunSettings(8, False))
    text = path.read_text()
    assert text.startswith(command.HEADER)
    assert text.count("## Summary") == 1
    assert text.index("## Summary") < text.index("## torture v1") < text.index("## fuzz v1")
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| torture") or line.startswith("| fuzz")
    ]
    assert rows[0].startswith("| torture | passed | 1,000 requests, 0 violations | 7 (long) |")
    assert rows[1].startswith("| fuzz | passed | 4,000 cases | 8 (short) |")
    assert len(rows) == 2
