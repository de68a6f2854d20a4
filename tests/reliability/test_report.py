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
    command.write_summary(outcomes, RunSettings(seed=8, long=True))  # rewritten in place
    text = path.read_text()
    assert text.startswith(command.HEADER)
    assert text.count("## Summary") == 1 and "--seed 8" in text and "--seed 7" not in text
    assert text.index("## Summary") < text.index("## torture v1") < text.index("## fuzz v1")
    assert "| torture | passed | 1,000 requests, 0 violations |" in text
    assert "| fuzz | **FAILED** | - |" in text
