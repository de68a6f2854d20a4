"""The BENCHMARKS.md section and the plots of `./run bench load`.

Figures are the median of the repeated runs with the range of all; the reading at the
end is drawn from the figures themselves, so a re-run cannot leave a stale one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench import report
from bench.load_stats import CEILING_P95_MS, Level, median_by

if TYPE_CHECKING:
    from bench.load import Outcome, RushResult, StampedeResult, Sweep

# Issue 7's targets, with issue 16's on top: the API within 85% of the bare endpoint
# (median of the pairs, none below 70%), at most 1.4x its server CPU per booking, and
# the rush's P95 create at most 3x the same machine's unloaded latency (absolute
# milliseconds differ 3x between machines of one kind; the ratio does not).
RUSH_CREATE_P95_MS = 25.0
RUSH_VALIDATE_P95_MS = 15.0
CEILING_SHARE = 0.85
CEILING_SHARE_FLOOR = 0.70
CPU_RATIO = 1.4
RUSH_UNLOADED_RATIO = 3.0
STAMPEDE_ANSWERED_S = 2.0
# The figures this section reported before issue 16's changes (BENCHMARKS.md at
# 2a02acc, measured 2026-11-25 on 002c74d), quoted beside the new ones.
BEFORE_ISSUE_16 = (
    "Before issue 16 (measured 2026-11-25 on 002c74d, same kind of machine): rush P95"
    " create 17.9 ms, validate-credits 10.7 ms; API ceiling 789 bookings/s against bare"
    " 1,061 (74%, pairs 49%-96%); server CPU per booking 0.80 ms against bare 0.38 ms"
    " (2.1x)."
)
PLOT_DPI = 110


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _target(values: Sequence[float], bound: float) -> str:
    """The verdict on the median of repeated runs, with how many runs were under."""
    under = sum(1 for v in values if v < bound)
    verdict = _verdict(statistics.median(values) < bound)
    return verdict if under == len(values) else f"{verdict} ({under} of {len(values)} runs under)"


def _median_rush(outcome: Outcome) -> RushResult:
    return median_by(outcome.rushes, lambda r: r.create.p95_ms)


def _median_stampede(outcome: Outcome) -> StampedeResult:
    return median_by(outcome.stampedes, lambda s: s.all_answered_s)


def _sweeps(outcome: Outcome, target: str) -> list[Sweep]:
    return [s for s in outcome.sweeps if s.target == target]


def _ceilings(sweeps: Sequence[Sweep]) -> list[float]:
    return [s.ceiling.bookings_per_s if s.ceiling else 0.0 for s in sweeps]


def _level_medians(sweeps: Sequence[Sweep]) -> dict[int, Level]:
    """Per concurrency, the repeat with the median bookings/s."""
    by_level: dict[int, list[Level]] = {}
    for sweep in sweeps:
        for lv in sweep.levels:
            by_level.setdefault(lv.concurrency, []).append(lv)
    return {c: median_by(lvs, lambda lv: lv.bookings_per_s) for c, lvs in by_level.items()}


def _range(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    if len(values) < 2:
        return ""
    return f" ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _cpu(groups: Sequence[tuple[str, float]] | dict[str, float], skip: str) -> str:
    items = groups.items() if isinstance(groups, dict) else groups
    return ", ".join(f"{name} {cores:.2f}" for name, cores in items if name != skip and cores)


# ---------------------------------------------------------------- sections


def _setup(outcome: Outcome, command: str) -> list[str]:
    plan = outcome.plan
    after = outcome.quiet_after.describe() if outcome.quiet_after else "not measured"
    pin = f", pinned to core {plan.client_cpu}" if plan.client_cpu is not None else ""
    return [
        "## Booking path under load (HTTP)",
        "",
        f"`{command}`, measured {outcome.measured_on:%Y-%m-%d} on {outcome.source}.",
        "",
        f"- Machine: {_machine()}; everything below runs on it at once.",
        f"- The machine when the run started: {outcome.quiet_before.describe()}"
        + (
            ""
            if outcome.quiet_before.ok
            else f" (not quiet after waiting {outcome.plan.quiet_wait_s / 60:.0f} minutes:"
            " other engineers' work shares it, see 'other processes' below)"
        )
        + f"; after the last measurement (pgbench): {after}.",
        f"- Server: `python -m local.server --workers {plan.workers} --threads {plan.threads}`"
        f" (gunicorn gthread) with LOCAL_TRUST_FORWARDED=1, DB_POOL_MAX_SIZE={plan.pool_size}"
        " per worker; the bare-bones endpoint (`bench/bare_endpoint.py`) under the same"
        " gunicorn settings and pool size."
        + (
            ""
            if plan.api_redis
            else " **The API ran without Redis** (`--api-without-redis`: no REDIS_URL, so no"
            " per-student lock, seat counters or rate limits; the database alone decided):"
            " an experiment, not the production path."
        ),
        f"- PostgreSQL {outcome.server_version} and Redis at 127.0.0.1 (the machine's own"
        " servers), a scratch database and a Redis database of the benchmark's own, emptied"
        " and reloaded before every run, with the school's past as production holds it"
        f" ({plan.history_bookings:,} completed bookings on closed exams, which the"
        " checks leave out); audit trigger on, as in production.",
        "- CPU figures (in cores, read from /proc): `api` / `bare` are the gunicorn"
        " processes, `postgres` every process of the PostgreSQL server (sessions of other"
        " databases included), `other processes` whatever else kept the cores busy.",
        "- Load generator: one Python process, asyncio + aiohttp, keep-alive connections,"
        f" a distinct X-Real-IP per simulated student{pin}.",
        f"- Each part was run {plan.repeat} times; tables show the median run and (in"
        " brackets) the range over all runs.",
    ]


def _unloaded(outcome: Outcome) -> Level | None:
    """The API's unloaded create latency: the sweep's one-client level (bookings back to
    back, nothing else running), the repeat with the median bookings/s."""
    return _level_medians(_sweeps(outcome, "api")).get(1)


def _rush(outcome: Outcome, plots: dict[str, str]) -> list[str]:
    plan = outcome.plan
    median = _median_rush(outcome)
    nan = (math.nan, math.nan)
    rows = [
        [
            f"`{e.endpoint}`" if e.endpoint != "all" else "all",
            f"{e.requests:,}",
            f"{e.per_s:,.0f}",
            _ms(e.p50_ms),
            _ms(e.p95_ms),
            _ms(e.p99_ms),
            _ms(e.max_ms),
            str(e.errors),
            _ms(median.in_function.get(e.endpoint, nan)[0]),
            _ms(median.in_function.get(e.endpoint, nan)[1]),
        ]
        for e in median.endpoints
    ]
    create_p95 = [r.create.p95_ms for r in outcome.rushes]
    validate_p95 = [r.p95("validate-credits") for r in outcome.rushes]
    errors = [r.endpoints[-1].errors for r in outcome.rushes]
    checks = [
        "ok" if not r.checks.problems else "; ".join(r.checks.problems) for r in outcome.rushes
    ]
    c = median.checks
    lines = [
        "",
        "### 1. Booking rush",
        "",
        f"{plan.rush_students:,} students arrive over {plan.rush_arrival_s:g} s (open loop:"
        " arrival times drawn uniformly in advance, whatever the answers), each doing"
        " login -> available -> validate-credits -> create;"
        f" {plan.cancel_fraction:.0%} then cancel and book again. {RUSH_EXAMS_TEXT}",
        "",
        report.markdown_table(
            [
                "endpoint",
                "requests",
                "req/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "errors",
                "in function p50",
                "in function p95",
            ],
            rows,
        ),
        "",
        "Latencies are the client's (send to last byte). In function: the time lib/http.py"
        " logged inside the function for the same requests (server log), without gunicorn's"
        " parsing and queueing and the client's own delays.",
        "",
        f"- Targets (median of the runs): P95 create {statistics.median(create_p95):.1f} ms"
        f"{_range(create_p95, '{:.1f}')} < {RUSH_CREATE_P95_MS:g} ms:"
        f" {_target(create_p95, RUSH_CREATE_P95_MS)};"
        f" P95 validate-credits {statistics.median(validate_p95):.1f} ms"
        f"{_range(validate_p95, '{:.1f}')} < {RUSH_VALIDATE_P95_MS:g} ms:"
        f" {_target(validate_p95, RUSH_VALIDATE_P95_MS)};"
        f" errors {sum(errors)} over all runs: {_verdict(sum(errors) == 0)}.",
        *_rush_ratio(outcome, create_p95),
        *_lighter_rushes(outcome),
        f"- Invariants after each run: {', '.join(checks)}. Median run: {c.bookings:,} bookings"
        f" written ({c.active:,} active, {c.cancelled:,} cancelled), every one answered to its"
        f" student; credits {c.credits_given:,} given = {c.credits_held:,} held +"
        f" {c.credits_spent:,} spent; no exam over capacity.",
        *(
            [
                f"- Where create's time goes: P95 {_ms(median.create.p95_ms)} ms at the client,"
                f" {_ms(median.in_function['create'][1])} ms inside the function (P95 of the"
                " server's own log); the difference is gunicorn's queue and parsing, the"
                " loopback and the load generator's own scheduling on the same cores."
            ]
            if "create" in median.in_function
            else []
        ),
        f"- CPU during the median run, in cores: {median.cpu.describe()}.",
        f"- Generator: all answered in {median.duration_s:.1f} s; arrivals started at most"
        f" {median.arrival_lag_p99_ms:.1f} ms late (P99), event loop stalls up to"
        f" {median.loop_lag_max_ms:.1f} ms; {median.client_cpu_s:.1f} s of client CPU.",
    ]
    if "rush" in plots:
        lines += ["", f"![booking rush]({plots['rush']})"]
    return lines


def _rush_ratio(outcome: Outcome, create_p95: Sequence[float]) -> list[str]:
    """Rush P95 create over the unloaded P95 create of the same run (like with like:
    the same percentile with and without the rush), with the unloaded median beside."""
    unloaded = _unloaded(outcome)
    if unloaded is None or not unloaded.p95_ms:
        return ["- Rush / unloaded: not measured (no one-client level in the sweep)."]
    rush_p95 = statistics.median(create_p95)
    ratio = rush_p95 / unloaded.p95_ms
    return [
        f"- Rush against the same machine unloaded (one client booking back to back, the"
        f" sweep's first level): unloaded create P50 {_ms(unloaded.p50_ms)} ms, P95"
        f" {_ms(unloaded.p95_ms)} ms; rush P95 create / unloaded P95 = **{ratio:.1f}x**"
        f" (target <= {RUSH_UNLOADED_RATIO:g}x: {_verdict(ratio <= RUSH_UNLOADED_RATIO)});"
        f" / unloaded P50 = {rush_p95 / unloaded.p50_ms:.1f}x."
    ]


def _lighter_rushes(outcome: Outcome) -> list[str]:
    """The ratio at lower arrival rates (plan.rush_shares, one run each) beside the full
    rush's median: how much of the miss is the load on the two cores."""
    unloaded = _unloaded(outcome)
    if not outcome.lighter_rushes or unloaded is None or not unloaded.p95_ms:
        return []
    full = _median_rush(outcome)
    rows = [
        [
            f"{share:.0%}",
            f"{rush.endpoints[-1].per_s:,.0f}",
            f"{rush.cpu.cores_busy:.2f}",
            _ms(rush.create.p95_ms),
            f"{rush.create.p95_ms / unloaded.p95_ms:.1f}x",
        ]
        for share, rush in [*outcome.lighter_rushes, (1.0, full)]
    ]
    return [
        "- The same rush at lower arrival rates (fewer students over the same"
        f" {outcome.plan.rush_arrival_s:g} s; one run each, 100% is the median run above),"
        " against the same unloaded P95:",
        "",
        report.markdown_table(
            ["arrival rate", "req/s", "cores busy", "p95 create ms", "/ unloaded P95"], rows
        ),
        "",
    ]


RUSH_EXAMS_TEXT = (
    "Ten Clinical Skills sessions with room for every student twice; each student holds"
    " two credits."
)


def _ceiling(outcome: Outcome, plots: dict[str, str]) -> list[str]:
    plan = outcome.plan
    api, bare = _sweeps(outcome, "api"), _sweeps(outcome, "bare")
    api_levels, bare_levels = _level_medians(api), _level_medians(bare)
    rows = []
    for concurrency in plan.levels:
        a, b = api_levels.get(concurrency), bare_levels.get(concurrency)
        rows.append(
            [
                str(concurrency),
                f"{a.bookings_per_s:,.0f}" if a else "-",
                _ms(a.p95_ms) if a else "-",
                str(a.errors) if a else "-",
                f"{b.bookings_per_s:,.0f}" if b else "-",
                _ms(b.p95_ms) if b else "-",
                str(b.errors) if b else "-",
            ]
        )
    api_ceilings, bare_ceilings = _ceilings(api), _ceilings(bare)
    api_ceiling = statistics.median(api_ceilings) if api_ceilings else float("nan")
    bare_ceiling = statistics.median(bare_ceilings) if bare_ceilings else float("nan")
    # Each repeat sweeps the API and then the bare endpoint back to back: the ratio of
    # that pair shares the machine's state, which a ratio of medians would not.
    shares = [a / b for a, b in zip(api_ceilings, bare_ceilings, strict=False) if b]
    share = statistics.median(shares) if shares else float("nan")
    db = outcome.db
    db_best = db.best if db else float("nan")
    db_text = (
        ", ".join(f"{tps:,.0f}/s at {clients} clients" for clients, tps in db.by_clients)
        if db
        else "not measured"
    )
    lines = [
        "",
        "### 2. Throughput ceiling",
        "",
        f"Closed loop: N clients book back to back ({plan.scenario}:"
        + (
            f" each booking picks one of {plan.spread_exams} exams at random"
            if plan.scenario == "spread"
            else " every booking on one exam"
        )
        + f"), each level {plan.level_warmup_s:g} s warm-up then {plan.level_s:g} s measured,"
        " every booking by a student not used before. Ceiling: the most bookings/s at a"
        f" level whose P95 stays under {CEILING_P95_MS:g} ms without errors.",
        "",
        report.markdown_table(
            [
                "clients",
                "API bookings/s",
                "API p95 ms",
                "API errors",
                "bare bookings/s",
                "bare p95 ms",
                "bare errors",
            ],
            rows,
        ),
        "",
        f"- API ceiling: **{api_ceiling:,.0f} bookings/s**{_range(api_ceilings)}.",
        f"- Bare-bones endpoint ceiling: {bare_ceiling:,.0f} bookings/s{_range(bare_ceilings)}."
        f" API / bare, per repeat (each pair measured back to back): **{share:.0%}**"
        f"{_range(shares, '{:.0%}')} (target: median >= {CEILING_SHARE:.0%} and no pair"
        f" below {CEILING_SHARE_FLOOR:.0%}:"
        f" {_verdict(share >= CEILING_SHARE and min(shares, default=0) >= CEILING_SHARE_FLOOR)}).",
        f"- The database function alone (pgbench, same exams, same run): {db_text}."
        f" API / function = **{api_ceiling / db_best:.0%}**; bare / function ="
        f" {bare_ceiling / db_best:.0%}.",
    ]
    for name, levels in (("API", api_levels), ("bare endpoint", bare_levels)):
        top = max(levels.values(), key=lambda lv: lv.bookings_per_s, default=None)
        if top is not None:
            lines.append(
                f"- CPU at the {name}'s best level ({top.concurrency} clients), in cores:"
                f" {top.cores_busy:.2f} of the machine busy; "
                + _cpu(top.cpu, skip="bare" if name == "API" else "api")
                + f", other processes {max(0.0, top.cores_busy - sum(c for _, c in top.cpu)):.2f}."
            )
    if "ceiling" in plots:
        lines += ["", f"![throughput ceiling]({plots['ceiling']})"]
    return lines


def _stampede(outcome: Outcome, plots: dict[str, str]) -> list[str]:
    s = _median_stampede(outcome)
    answered = [r.all_answered_s for r in outcome.stampedes]
    p95 = [r.p95_ms for r in outcome.stampedes]
    exact = all(r.booked == r.seats and r.full == r.creates - r.seats for r in outcome.stampedes)
    other = ", ".join(f"{code} x{n}" for code, n in s.other) or "none"
    first = min((x.ended_s for x in s.samples), default=math.nan) - min(
        (x.started_s for x in s.samples), default=math.nan
    )
    checks = [
        "ok" if not r.checks.problems else "; ".join(r.checks.problems) for r in outcome.stampedes
    ]
    lines = [
        "",
        "### 3. Stampede",
        "",
        f"{s.creates:,} creates for one exam of {s.seats} seats, by {s.creates:,} students,"
        f" all sent at once over {s.creates:,} connections.",
        "",
        report.markdown_table(
            [
                "booked",
                "EXAM_FULL",
                "other answers",
                "all answered s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
            ],
            [
                [
                    str(s.booked),
                    f"{s.full:,}",
                    other,
                    f"{s.all_answered_s:.2f}",
                    _ms(s.p50_ms),
                    _ms(s.p95_ms),
                    _ms(s.p99_ms),
                ]
            ],
        ),
        "",
        f"- Exactly {s.seats} booked and every other answer EXAM_FULL in every run:"
        f" {_verdict(exact)}. All answered within {STAMPEDE_ANSWERED_S:g} s:"
        f" {s.all_answered_s:.2f} s{_range(answered, '{:.2f}')}:"
        f" {_target(answered, STAMPEDE_ANSWERED_S)}. P95 {_ms(s.p95_ms)} ms"
        f"{_range(p95, '{:.0f}')}.",
        f"- The first answer came {first:.2f} s after the first request was sent (each"
        " request opens its own connection, all at once); that wait counts in every figure"
        " above. The plot shows the whole timeline.",
        f"- Invariants after each run: {', '.join(checks)}.",
    ]
    if "stampede" in plots:
        lines += ["", f"![stampede]({plots['stampede']})"]
    return lines


def _sync(outcome: Outcome) -> list[str]:
    lines = ["", "### 4. Sync rate", ""]
    if outcome.sync_section:
        lines.append(
            "From the sync benchmark's own section of this file (`./run bench sync --report`,"
            " `<!-- bench:sync:* -->`), as it stood when this run ended:"
        )
        section = outcome.sync_section.splitlines()
        measured = [line for line in section if line.startswith("`./run bench sync")]
        targets = [line for line in section if line.startswith("- Targets")]
        table = [line for line in section if line.startswith("|")]
        lines += ["", *measured, "", *targets, "", *table]
    else:
        lines.append(
            "No sync section in BENCHMARKS.md when this run ended: `./run bench sync`"
            " (the 50,000-booking sync into the HubSpot stand-in, issue 4) had not reported"
            " yet. Re-run this command after it has, to carry its figures here."
        )
    return lines


def _cold(outcome: Outcome) -> list[str]:
    lines = ["", "### 5. Cold start", ""]
    if outcome.cold is None:
        lines.append(f"Not measured: {outcome.cold_error or 'skipped'}.")
        return lines
    cold = outcome.cold
    worst = max(cold.functions, key=lambda f: f.own_ms)
    slowest = max(cold.functions, key=lambda f: f.import_ms)
    over = [f.file for f in cold.functions if not f.ok]
    lines.append(
        f"`bench/cold_start.py`, median of {cold.runs} fresh interpreters per figure, in the"
        f" same run ({len(cold.functions)} functions; `./run bench cold-start --report` writes"
        " the full table, its own section). Slowest import:"
        f" `{slowest.file}` {slowest.import_ms:.0f} ms, of which its packages"
        f" {slowest.packages_ms:.0f} ms. Most of our own on top of the packages:"
        f" `{worst.file}` {worst.own_ms:+.0f} ms. Target (ours <= 50 ms): "
        + (_verdict(True) if not over else f"**missed** by {', '.join(over)}")
        + "."
    )
    return lines


def _reading(outcome: Outcome) -> list[str]:
    """What limits throughput, from the CPU figures at the API's best level."""
    api_levels = _level_medians(_sweeps(outcome, "api"))
    bare_levels = _level_medians(_sweeps(outcome, "bare"))
    top = max(api_levels.values(), key=lambda lv: lv.bookings_per_s, default=None)
    bare_top = max(bare_levels.values(), key=lambda lv: lv.bookings_per_s, default=None)
    if top is None or bare_top is None:
        return []
    cpu = dict(top.cpu)
    cores = report.machine().cores
    server = cpu.get("api", 0.0)
    per_booking_ms = server * 1000 / top.bookings_per_s if top.bookings_per_s else math.nan
    bare_cpu = dict(bare_top.cpu).get("bare", 0.0)
    bare_ms = bare_cpu * 1000 / bare_top.bookings_per_s if bare_top.bookings_per_s else math.nan
    pg_ms = cpu.get("postgres", 0.0) * 1000 / top.bookings_per_s if top.bookings_per_s else math.nan
    saturated = top.cores_busy >= 0.9 * cores
    ratio = per_booking_ms / bare_ms if bare_ms else math.nan
    return [
        "",
        "### What limits throughput",
        "",
        f"At the API's best level ({top.concurrency} clients, {top.bookings_per_s:,.0f}"
        f" bookings/s) the machine had {top.cores_busy:.2f} of {cores} cores busy"
        + (" - it is CPU-bound" if saturated else " - not CPU-bound: the wait is elsewhere")
        + f". Each booking cost {per_booking_ms:.2f} ms of API server CPU (the bare endpoint:"
        f" {bare_ms:.2f} ms) and {pg_ms:.2f} ms of PostgreSQL CPU. The API server's Python"
        " (request parsing, pydantic validation, the envelope, the JSON log line, two Redis"
        " round trips) is what the bare endpoint does not pay; on one box the load generator's"
        " share comes out of the same two cores for both targets.",
        "",
        f"- Server CPU per booking, API / bare: **{ratio:.1f}x** (target <= {CPU_RATIO:g}x:"
        f" {_verdict(ratio <= CPU_RATIO)}).",
        "- Where that CPU goes without the load, part by part, and the floor of the work the"
        " API must do beyond the bare call: the section of `./run bench path-cpu --report`.",
        f"- {BEFORE_ISSUE_16}",
    ]


def _machine() -> str:
    import platform

    return f"{report.machine().describe()}; Python {platform.python_version()}"


def render(outcome: Outcome, command: str, plots: dict[str, str]) -> str:
    lines = _setup(outcome, command)
    if outcome.rushes:
        lines += _rush(outcome, plots)
    if outcome.sweeps:
        lines += _ceiling(outcome, plots)
    if outcome.stampedes:
        lines += _stampede(outcome, plots)
    lines += _sync(outcome) + _cold(outcome) + _reading(outcome)
    if outcome.problems:
        lines += ["", "**Problems:** " + "; ".join(outcome.problems)]
    return "\n".join(lines)


# ---------------------------------------------------------------- plots


def plots(outcome: Outcome, directory: Path) -> dict[str, str]:
    """Write the PNGs; {name: path relative to the repository root (or absolute)}."""
    import matplotlib

    matplotlib.use("Agg")
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for name, draw in (
        ("rush", _plot_rush),
        ("ceiling", _plot_ceiling),
        ("stampede", _plot_stampede),
    ):
        path = directory / f"load-{name}.png"
        if draw(outcome, path):
            written[name] = _relative(path)
    return written


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(report.ROOT).as_posix()
    except ValueError:
        return str(path)


COLOURS = {
    "login": "tab:blue",
    "available": "tab:green",
    "validate-credits": "tab:orange",
    "create": "tab:red",
    "cancel": "tab:purple",
}


def _plot_rush(outcome: Outcome, path: Path) -> bool:
    import matplotlib.pyplot as plt

    if not outcome.rushes:
        return False
    rush = _median_rush(outcome)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    end = max((s.ended_s for s in rush.samples), default=1.0)
    bin_s = 0.5
    bins = [i * bin_s for i in range(math.ceil(end / bin_s) + 1)]
    for endpoint, colour in COLOURS.items():
        chosen = [s for s in rush.samples if s.endpoint == endpoint]
        if not chosen:
            continue
        top.hist(
            [s.started_s for s in chosen],
            bins=bins,
            weights=[1 / bin_s] * len(chosen),
            histtype="step",
            color=colour,
            label=endpoint,
        )
        bottom.scatter(
            [s.started_s for s in chosen],
            [s.latency_ms for s in chosen],
            s=3,
            color=colour,
            alpha=0.5,
            label=endpoint,
        )
    top.set_ylabel("requests/s")
    top.set_title("Booking rush (median run): requests sent per second, by endpoint")
    top.legend(fontsize="small", ncol=5)
    bottom.set_yscale("log")
    bottom.axhline(RUSH_CREATE_P95_MS, color="tab:red", linestyle=":", linewidth=1)
    bottom.axhline(RUSH_VALIDATE_P95_MS, color="tab:orange", linestyle=":", linewidth=1)
    bottom.set_ylabel("latency ms (log)")
    bottom.set_xlabel("seconds since the first arrival")
    bottom.set_title("Each request's latency; dotted: P95 targets (create 25, validate 15 ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=PLOT_DPI)
    plt.close(fig)
    return True


def _plot_ceiling(outcome: Outcome, path: Path) -> bool:
    import matplotlib.pyplot as plt

    if not outcome.sweeps:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for target, label, colour in (("api", "API", "tab:red"), ("bare", "bare endpoint", "tab:blue")):
        levels = sorted(
            _level_medians(_sweeps(outcome, target)).values(), key=lambda lv: lv.concurrency
        )
        xs = [lv.concurrency for lv in levels]
        left.plot(xs, [lv.bookings_per_s for lv in levels], marker="o", color=colour, label=label)
        right.plot(xs, [lv.p95_ms for lv in levels], marker="o", color=colour, label=label)
    if outcome.db is not None and not math.isnan(outcome.db.best):
        left.axhline(
            outcome.db.best, color="grey", linestyle="--", label="function alone (pgbench)"
        )
    right.axhline(CEILING_P95_MS, color="grey", linestyle=":", label="200 ms bound")
    ticks = list(outcome.plan.levels)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("concurrent clients")
        ax.legend(fontsize="small")
    left.set_ylabel("bookings/s")
    left.set_ylim(bottom=0)
    left.set_title("Throughput (median of runs)")
    right.set_yscale("log")
    right.set_ylabel("P95 ms (log)")
    right.set_title("P95 latency")
    fig.tight_layout()
    fig.savefig(path, dpi=PLOT_DPI)
    plt.close(fig)
    return True


def _plot_stampede(outcome: Outcome, path: Path) -> bool:
    import matplotlib.pyplot as plt

    if not outcome.stampedes:
        return False
    s = _median_stampede(outcome)
    fig, ax = plt.subplots(figsize=(8, 4))
    groups = {
        "booked (201)": [x.ended_s for x in s.samples if x.status == 201],
        "EXAM_FULL": [x.ended_s for x in s.samples if x.code == "EXAM_FULL"],
        "other": [x.ended_s for x in s.samples if x.status != 201 and x.code != "EXAM_FULL"],
    }
    for (label, ends), colour in zip(
        groups.items(), ("tab:green", "tab:orange", "tab:red"), strict=True
    ):
        if ends:
            ends.sort()
            ax.step(
                ends,
                range(1, len(ends) + 1),
                where="post",
                color=colour,
                label=f"{label}: {len(ends)}",
            )
    ax.axvline(STAMPEDE_ANSWERED_S, color="grey", linestyle=":", label="2 s target")
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("answers received (cumulative)")
    ax.set_title(f"Stampede: {s.creates} creates, {s.seats} seats (median run)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=PLOT_DPI)
    plt.close(fig)
    return True
