"""The sync as the admin dashboard sees it: the backlog against the 2-hour goal, the
runs and what each did, the alert conditions, and a run started by hand.

Everything read here comes from the sync's own tables through read-only SQL functions
(supabase/migrations/20251209000100_admin_sync_audit.sql); nothing here calls HubSpot,
so a dashboard left open never spends HubSpot's budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lib import db
from lib.admin_http import audit
from lib.config import settings
from lib.errors import AppError, rejection
from lib.health import SYNC_FAILED

if TYPE_CHECKING:
    from lib.admin_auth import Admin
    from lib.hubspot.sync_run import Mode

# The product's promise: HubSpot lags PostgreSQL by less than 2 hours, and 99% of new
# records carry a HubSpot id within 2 hours (product.md §2). The cron runs every 2 h,
# so a record normally waits at most one interval plus the run's own few minutes.
GOAL_S = 2 * 3600
# Past this share of the goal the dashboard shows the backlog in amber: one missed
# cron (a run every 2 h) already puts the oldest record near the goal.
GOAL_WARNING_FRACTION = 0.75
# The daily HubSpot call budget is "nearly spent" below this share. The budget is per
# account and shared with the school's other integrations; a full pass over every
# record costs a few thousand calls, so with under a tenth of the day's budget left it
# may not finish, and first logins (one search each) start to fail at zero.
DAILY_BUDGET_LOW_FRACTION = 0.10
# Statuses that mean the last run did not do its work. `partial` (some records failed,
# the rest went through) and `deadline` (out of time, the next run continues) are not
# failures; their records show up as errors and as backlog.
FAILED_STATUSES = SYNC_FAILED
# Run errors shown with a run's detail: the dashboard lists the last run's errors, and
# a run that fails thousands of records says so by its count; the rows stay in the
# table for SQL when someone needs all of them.
RUN_ERROR_LIMIT = 200

TABLES = ("contacts", "bookings", "mock_exams")
# What waits, in words, per table (an exam's pending change is its seat count).
RECORD_NAMES = {"contacts": "contact", "bookings": "booking", "mock_exams": "seat count"}


def age_text(seconds: int) -> str:
    """'45 s', '12 min', '2 h 05 min', '3 days 4 h': what a person reads in an alert."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{hours // 24} days {hours % 24} h"


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    if not result["ok"]:
        raise rejection(result)
    return result


def records_synced(run: dict[str, Any]) -> int:
    """Records a run wrote, on either side (created + updated, every phase)."""
    phases = run.get("phases") or {}
    return sum(
        int(counts.get("created") or 0) + int(counts.get("updated") or 0)
        for counts in phases.values()
        if isinstance(counts, dict)
    )


def _with_totals(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {**run, "records_synced": records_synced(run)}


def rate_limit_use(run: dict[str, Any] | None) -> dict[str, Any] | None:
    """How much of HubSpot's budgets a run used: its calls, 429s, retries and time
    spent waiting for the shared budget, its average calls per 10 s against the
    configured ceiling, and the daily budget HubSpot reported at its end."""
    if run is None:
        return None
    limit = settings().hubspot_rate_limit_per_10s
    calls = int(run.get("api_calls") or 0)
    # Calls per 10 s averaged over the run: 100% would be a run that kept the rolling
    # window full from start to end. A run shorter than the window fits in one window,
    # so it counts as 10 s (16 calls in half a second are 16 per 10 s, not 320).
    window_s = max((run.get("duration_ms") or 0) / 1000, 10.0)
    per_10s = calls / window_s * 10
    daily_limit = run.get("daily_limit")
    daily_remaining = run.get("daily_remaining")
    daily_used_fraction = (
        round(1 - daily_remaining / daily_limit, 4)
        if isinstance(daily_limit, int) and isinstance(daily_remaining, int) and daily_limit > 0
        else None
    )
    return {
        "run_id": run["id"],
        "api_calls": calls,
        "rate_limited": int(run.get("rate_limited") or 0),
        "retries": int(run.get("retries") or 0),
        "budget_wait_ms": int(run.get("budget_wait_ms") or 0),
        "calls_per_10s": round(per_10s, 1),
        "limit_per_10s": limit,
        "use_fraction": round(min(per_10s / limit, 1.0), 4) if limit else None,
        "daily_limit": daily_limit,
        "daily_remaining": daily_remaining,
        "daily_used_fraction": daily_used_fraction,
    }


# How each way a run can end reads in an alert.
_OUTCOMES = {
    "succeeded": "went through every phase",
    "partial": "went through every phase; {errors} failed (see its errors)",
    "deadline": "stopped at its time budget; the next run continues",
    "daily_limit": "stopped: HubSpot's daily call budget is spent",
    "rate_limited": "stopped: HubSpot kept answering 429",
    "failed": "failed",
    "lease_lost": "stopped: another run took its lease",
    "abandoned": "was killed or timed out before it finished",
}


def _outcome(run: dict[str, Any]) -> str:
    errors = int(run.get("error_count") or 0)
    words = _OUTCOMES.get(run["status"], run["status"]).format(
        errors=f"{errors} record{'' if errors == 1 else 's'}"
    )
    text = f"The last run ({run['mode']}) {words}"
    if run["status"] in FAILED_STATUSES and run.get("message"):
        text += f": {run['message']}"
    return text


def _alerts(
    lag_s: int | None, oldest_table: str | None, last: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The three alert conditions, always all three, each active or not, so a monitor
    can read them by code and the dashboard can show what was checked."""
    usage = rate_limit_use(last)
    daily_fraction = usage["daily_used_fraction"] if usage else None
    daily_spent = last is not None and last["status"] == "daily_limit"
    daily_low = daily_spent or (
        daily_fraction is not None and daily_fraction >= 1 - DAILY_BUDGET_LOW_FRACTION
    )
    failed = last is not None and last["status"] in FAILED_STATUSES
    over_goal = lag_s is not None and lag_s > GOAL_S
    return [
        {
            "code": "OLDEST_PENDING_OVER_GOAL",
            "active": over_goal,
            "severity": "critical",
            "title": "A record has waited more than 2 hours for HubSpot",
            "detail": (
                f"The oldest pending {RECORD_NAMES.get(oldest_table or '', 'record')} has"
                f" waited {age_text(lag_s)} (goal: {age_text(GOAL_S)})"
                if lag_s is not None
                else "Nothing is waiting for HubSpot"
            ),
            "value": lag_s,
            "threshold": GOAL_S,
        },
        {
            "code": "LAST_RUN_FAILED",
            "active": failed,
            "severity": "critical",
            "title": "The last sync run failed",
            "detail": _outcome(last) if last is not None else "No sync run has finished yet",
            "value": last["status"] if last is not None else None,
            "threshold": sorted(FAILED_STATUSES),
        },
        {
            "code": "DAILY_BUDGET_LOW",
            "active": daily_low,
            "severity": "warning",
            "title": "HubSpot's daily API budget is nearly spent",
            "detail": (
                "HubSpot refused calls: the daily budget is spent until midnight"
                if daily_spent
                else f"{round(daily_fraction * 100, 1)}% of the daily budget used"
                if daily_fraction is not None
                else "HubSpot has not reported the daily budget yet"
            ),
            "value": daily_fraction,
            "threshold": round(1 - DAILY_BUDGET_LOW_FRACTION, 4),
        },
    ]


def status() -> dict[str, Any]:
    """The sync's state in one snapshot: per-table backlog and ages, lag against the
    goal, the lease and the running run, the last run of each mode, the last run's
    use of HubSpot's budgets, and the alert conditions."""
    snapshot = _answer(db.rpc("admin_sync_status", {}))
    tables: dict[str, Any] = snapshot["tables"]
    pending = 0
    lag_s: int | None = None
    oldest_table: str | None = None
    for name in TABLES:
        table = tables[name]
        table["pending"] = int(table["awaiting_hubspot_id"]) + int(table["changed_since_sync"])
        pending += table["pending"]
        ages = [a for a in (table["oldest_awaiting_age_s"], table["oldest_changed_age_s"]) if a]
        table["oldest_pending_age_s"] = max(ages) if ages else None
        if table["oldest_pending_age_s"] is not None and (
            lag_s is None or table["oldest_pending_age_s"] > lag_s
        ):
            lag_s, oldest_table = table["oldest_pending_age_s"], name
    last = _with_totals(snapshot["last_finished"])
    alerts = _alerts(lag_s, oldest_table, last)
    lag_fraction = (lag_s or 0) / GOAL_S
    return {
        "now": snapshot["now"],
        "goal_s": GOAL_S,
        "tables": tables,
        "pending": {
            "total": pending,
            "oldest_age_s": lag_s,
            "oldest_table": oldest_table,
        },
        "lag": {
            "seconds": lag_s or 0,
            "goal_s": GOAL_S,
            "fraction_of_goal": round(lag_fraction, 4),
            "state": (
                "over"
                if lag_fraction > 1
                else "near"
                if lag_fraction >= GOAL_WARNING_FRACTION
                else "ok"
            ),
        },
        "lease": snapshot["lease"],
        "running": _with_totals(snapshot["running"]),
        "full_pass_pending": snapshot["full_pass_pending"],
        "last_runs": {
            mode: _with_totals(snapshot["last_runs"][mode]) for mode in ("delta", "full")
        },
        "last_finished": last,
        "last_success_at": snapshot["last_success_at"],
        "rate_limit": rate_limit_use(last),
        "alerts": alerts,
        "healthy": not any(alert["active"] for alert in alerts),
    }


def runs(page: int, limit: int, include_refused: bool) -> dict[str, Any]:
    result = _answer(
        db.rpc(
            "admin_sync_runs",
            {"p_page": page, "p_limit": limit, "p_include_refused": include_refused},
        )
    )
    return {
        "runs": [_with_totals(run) for run in result["runs"]],
        "pagination": result["pagination"],
    }


def run(run_id: str) -> dict[str, Any]:
    """One run: phases, counts, API calls, 429s, and its failed records with HubSpot's
    correlation ids (the first RUN_ERROR_LIMIT; errors_total counts all)."""
    result = _answer(
        db.rpc("admin_sync_run", {"p_run_id": run_id, "p_error_limit": RUN_ERROR_LIMIT})
    )
    return {
        "run": _with_totals(result["run"]),
        "holds_lease": result["holds_lease"],
        "rate_limit": rate_limit_use(result["run"]),
        "errors_total": result["errors_total"],
        "errors": result["errors"],
    }


def history(days: int) -> dict[str, Any]:
    """Runs of the last `days` days, oldest first, as the chart draws them."""
    result = _answer(db.rpc("admin_sync_history", {"p_days": days}))
    return {
        "since": result["since"],
        "runs": [
            {
                "id": r["id"],
                "mode": r["mode"],
                "status": r["status"],
                "started_at": r["started_at"],
                "duration_ms": r["duration_ms"],
                "records_synced": records_synced(r),
                "api_calls": r["api_calls"],
                "error_count": r["error_count"],
            }
            for r in result["runs"]
        ],
    }


def _in_progress(detail: str) -> AppError:
    return AppError(
        "SYNC_IN_PROGRESS",
        f"A sync run is in progress ({detail}); watch it on the dashboard, or start "
        "another when it has finished",
    )


def trigger(mode: Mode, admin: Admin) -> dict[str, Any]:
    """Run the sync now, inside this request, and answer the run as recorded.

    Why inside the request: a Vercel function may be frozen once it has answered, so
    work cannot continue after the response (the dashboard polls the status endpoint
    for progress meanwhile; the run's time budget, SYNC_TIME_BUDGET_S, keeps it inside
    the function's maxDuration). 409 SYNC_IN_PROGRESS when another run holds the
    lease: checked first, so a double click records no refused run, and then again by
    sync_begin itself, the arbiter when two clicks race."""
    if not settings().hubspot_access_token:
        raise AppError("HUBSPOT_UNAVAILABLE", "HubSpot is not configured (HUBSPOT_ACCESS_TOKEN)")
    lease = _answer(db.rpc("admin_sync_lease", {}))
    if lease["held"]:
        raise _in_progress(f"run {lease['run_id']}, lease until {lease['expires_at']}")
    from lib.hubspot.sync import run_once

    audit("sync run started", admin, mode=mode)
    result = run_once(mode, trigger="admin")
    if result.status == "refused":
        raise _in_progress(result.message or "it took the lease first")
    audit("sync run finished", admin, run_id=result.run_id, status=result.status)
    recorded = run(result.run_id)
    answer: dict[str, Any] = recorded["run"]
    return answer
