"""Figures from load-generator samples: per endpoint latency, throughput and errors,
and the summary of one level of a throughput sweep."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bench.load_client import ENDPOINTS, Sample
from bench.stats import percentiles

# The ceiling's latency bound (issue 7): the highest rate at which P95 stays under it.
CEILING_P95_MS = 200.0


@dataclass(frozen=True)
class EndpointStats:
    endpoint: str
    requests: int
    errors: int  # not 2xx, or no answer at all
    unanswered: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    per_s: float  # requests per second over the run
    error_codes: tuple[tuple[str, int], ...]


def endpoint_stats(samples: Sequence[Sample], duration_s: float) -> list[EndpointStats]:
    """One row per endpoint present, in ENDPOINTS order, then an "all" row."""
    rows = []
    groups = [e for e in ENDPOINTS if any(s.endpoint == e for s in samples)]
    for name in [*groups, "all"]:
        chosen = [s for s in samples if name in ("all", s.endpoint)]
        rows.append(summarise(name, chosen, duration_s))
    return rows


def is_error(sample: Sample) -> bool:
    return not 200 <= sample.status < 300


def summarise(name: str, samples: Sequence[Sample], duration_s: float) -> EndpointStats:
    latency = percentiles([s.latency_ms for s in samples])
    codes = Counter(s.code or str(s.status) for s in samples if is_error(s))
    return EndpointStats(
        endpoint=name,
        requests=len(samples),
        errors=sum(codes.values()),
        unanswered=sum(1 for s in samples if not s.answered),
        p50_ms=latency.p50,
        p95_ms=latency.p95,
        p99_ms=latency.p99,
        max_ms=max((s.latency_ms for s in samples), default=float("nan")),
        per_s=len(samples) / duration_s if duration_s > 0 else float("nan"),
        error_codes=tuple(codes.most_common()),
    )


@dataclass(frozen=True)
class Level:
    """One concurrency level of a closed-loop sweep, over its measured window."""

    concurrency: int
    bookings_per_s: float  # bookings answered 201 within the window, per second
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int
    cores_busy: float  # the whole machine, in cores
    cpu: tuple[tuple[str, float], ...]  # process group -> cores

    @property
    def within_bound(self) -> bool:
        return self.p95_ms < CEILING_P95_MS and self.errors == 0


def level(
    concurrency: int,
    samples: Iterable[Sample],
    window: tuple[float, float],
    cores_busy: float,
    cpu: dict[str, float],
) -> Level:
    """Latency of the requests that started in `window` (seconds since the start);
    throughput of the bookings answered within it."""
    begin, end = window
    started = [s for s in samples if begin <= s.started_s < end]
    booked = [s for s in samples if s.status == 201 and begin <= s.ended_s < end]
    latency = percentiles([s.latency_ms for s in started])
    return Level(
        concurrency=concurrency,
        bookings_per_s=len(booked) / (end - begin),
        p50_ms=latency.p50,
        p95_ms=latency.p95,
        p99_ms=latency.p99,
        requests=len(started),
        errors=sum(1 for s in started if is_error(s)),
        cores_busy=cores_busy,
        cpu=tuple(cpu.items()),
    )


def ceiling(levels: Sequence[Level]) -> Level | None:
    """The level with the most bookings/s among those within the bound."""
    within = [lv for lv in levels if lv.within_bound]
    return max(within, key=lambda lv: lv.bookings_per_s) if within else None


def median_by[T](items: Sequence[T], value: Callable[[T], float]) -> T:
    """The item with the median `value` (the lower middle one of an even count)."""
    ordered = sorted(items, key=value)
    return ordered[(len(ordered) - 1) // 2]


def spread(values: Iterable[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    listed = list(values)
    return statistics.median(listed), min(listed), max(listed)
