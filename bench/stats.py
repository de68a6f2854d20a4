"""Latency summaries shared by the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    p99: float


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of values sorted ascending: the smallest value that at
    least `fraction` of all values do not exceed. NaN when there are none."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def percentiles(values: Sequence[float]) -> Percentiles:
    ordered = sorted(values)
    return Percentiles(
        p50=percentile(ordered, 0.50), p95=percentile(ordered, 0.95), p99=percentile(ordered, 0.99)
    )
