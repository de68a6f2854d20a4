"""What `./run reliability` asks of each part, and what each part answers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSettings:
    """`seed` makes a run reproducible (the same operations in the same order per
    client; thread interleaving is the machine's); `long` picks the on-demand size
    over the short one the test command runs."""

    seed: int
    long: bool


@dataclass(frozen=True)
class Outcome:
    """A part's verdict and its RELIABILITY.md section (markdown, starting with a
    `## ` heading). `passed` is False when anything the part checks was violated.
    `summary`: one line for the summary table at the top of RELIABILITY.md."""

    name: str
    passed: bool
    markdown: str
    summary: str = ""
