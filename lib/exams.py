"""Availability of mock-exam sessions: what students poll while a session opens.

Reads are served from Redis where it can: the list of upcoming sessions of a type is
cached briefly, and each session's seat count comes from its versioned counter in one
MGET. Whatever Redis does not have (or Redis itself, when it is down) comes from
PostgreSQL, and what PostgreSQL answers is written back for the next reader.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from lib import db
from lib.errors import AppError, rejection

logger = logging.getLogger(__name__)

# Sessions are created and edited in HubSpot and arrive with the 2-hourly sync (or an
# admin's run): a new session may appear up to 30 s late, and a rush of 2,000 students
# polling the list costs PostgreSQL one query per type per 30 s.
EXAM_LIST_TTL_S = 30
# A seat counter is refreshed by every booking and cancellation (versioned, so never
# rolled back); the TTL only bounds how long a copy that missed an update can live,
# at the cost of one database read per exam per minute to re-fill it.
SEATS_TTL_S = 60
# "limited" when this few seats are left (the old system's threshold).
LIMITED_AT = 3
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def seat_status(available: int) -> str:
    if available <= 0:
        return "full"
    return "limited" if available <= LIMITED_AT else "available"


def _cached_list(mock_type: str) -> list[dict[str, Any]] | None:
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import exam_list_key

    client = redis()
    if client is None:
        return None
    try:
        raw = client.get(exam_list_key(mock_type))
    except RedisUnavailable:
        return None
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _remember_list(mock_type: str, exams: list[dict[str, Any]]) -> None:
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import exam_list_key

    client = redis()
    if client is None:
        return
    with contextlib.suppress(RedisUnavailable):
        client.set(exam_list_key(mock_type), json.dumps(exams, default=str), ex=EXAM_LIST_TTL_S)
    remember_seats(exams)


def reconcile_seats() -> int:
    """Overwrite the Redis copy of every upcoming exam's seat count with the database's
    (ignoring versions, so a copy whose version is wrong is mended too). Run by the
    sync and on demand; returns how many counters were written."""
    from lib.models import MOCK_TYPES
    from lib.redis_client import redis

    client = redis()
    if client is None:
        return 0
    exams: list[dict[str, Any]] = []
    for mock_type in MOCK_TYPES:
        result = db.rpc("available_exams", {"p_mock_type": mock_type})
        if result["ok"]:
            exams.extend(result["exams"])
    return remember_seats(exams, force=True)


def remember_seats(exams: list[dict[str, Any]], *, force: bool = False) -> int:
    """Write PostgreSQL's seat counts to Redis (versioned: never rolls a copy back).
    Accepts exam rows (`id`, `capacity`, `booked`, `seats_version`) or seat answers
    of the booking functions (`exam_id`, `capacity`, `booked`, `version`)."""
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import SeatCount, seats_key, write_seats

    client = redis()
    if client is None or not exams:
        return 0
    items = {
        seats_key(str(e.get("id") or e["exam_id"])): SeatCount(
            version=int(e.get("seats_version", e.get("version", 0))),
            booked=int(e["booked"]),
            capacity=int(e["capacity"]),
        )
        for e in exams
    }
    try:
        return write_seats(client, items, SEATS_TTL_S, force=force)
    except RedisUnavailable:
        return 0


def _overlay_seats(exams: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Current seat counts for a cached list: Redis first, PostgreSQL for the rest."""
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import read_seats, seats_key

    counts: dict[str, Any] = {}
    client = redis()
    if client is not None:
        try:
            counts = read_seats(client, [seats_key(e["id"]) for e in exams])
        except RedisUnavailable:
            counts = {}
    fresh: dict[str, dict[str, Any]] = {}
    missing = [e["id"] for e in exams if seats_key(e["id"]) not in counts]
    if missing:
        fresh = {e["id"]: e for e in seats_from_db(missing)}
        remember_seats(list(fresh.values()))
    out = []
    for exam in exams:
        current = dict(exam)
        count = counts.get(seats_key(exam["id"]))
        if count is not None:
            current["booked"], current["capacity"] = count.booked, count.capacity
        elif exam["id"] in fresh:
            current["booked"] = fresh[exam["id"]]["booked"]
            current["capacity"] = fresh[exam["id"]]["capacity"]
        out.append(current)
    return out


def seats_from_db(exam_ids: list[str]) -> list[dict[str, Any]]:
    result = db.rpc("exam_seats", {"p_exam_ids": exam_ids})
    if not result["ok"]:
        raise rejection(result)
    exams: list[dict[str, Any]] = result["exams"]
    return exams


def _public(exam: dict[str, Any]) -> dict[str, Any]:
    available = max(0, int(exam["capacity"]) - int(exam["booked"]))
    return {
        "id": exam["id"],
        "mock_exam_id": exam["id"],
        "hubspot_id": exam["hubspot_id"],
        "mock_exam_name": exam.get("mock_exam_name"),
        "mock_type": exam["mock_type"],
        "mock_set": exam.get("mock_set"),
        "exam_date": exam["exam_date"],
        "start_time": exam.get("start_time"),
        "end_time": exam.get("end_time"),
        "location": exam.get("location") or "TBD",
        "capacity": int(exam["capacity"]),
        "total_bookings": int(exam["booked"]),
        "available_slots": available,
        "status": seat_status(available),
        "is_active": True,
        "prerequisite_exam_ids": exam.get("prerequisite_exam_ids") or [],
    }


def available(mock_type: str, include_full: bool) -> list[dict[str, Any]]:
    exams = _cached_list(mock_type)
    if exams is None:
        result = db.rpc("available_exams", {"p_mock_type": mock_type})
        if not result["ok"]:
            raise rejection(result)
        exams = result["exams"]
        _remember_list(mock_type, exams)
    else:
        # The cached list may hold a session that has started since: drop it.
        now = datetime.now(UTC)
        exams = _overlay_seats(
            [
                e
                for e in exams
                if not e.get("start_time") or datetime.fromisoformat(e["start_time"]) > now
            ]
        )
    sessions = [_public(e) for e in exams]
    if not include_full:
        sessions = [s for s in sessions if s["status"] != "full"]
    return sessions


def capacity(exam_ref: str) -> dict[str, Any]:
    from lib.redis_client import RedisUnavailable, redis
    from lib.redis_scripts import read_seats, seats_key

    count = None
    client = redis()
    if client is not None and is_uuid(exam_ref):
        try:
            count = read_seats(client, [seats_key(exam_ref.lower())]).get(
                seats_key(exam_ref.lower())
            )
        except RedisUnavailable:
            count = None
    if count is not None:
        exam_id, booked, cap = exam_ref.lower(), count.booked, count.capacity
    else:
        found = seats_from_db([exam_ref])
        if not found:
            raise AppError("EXAM_NOT_FOUND")
        remember_seats(found)
        exam_id, booked, cap = found[0]["id"], int(found[0]["booked"]), int(found[0]["capacity"])
    available_slots = max(0, cap - booked)
    return {
        "mock_exam_id": exam_id,
        "capacity": cap,
        "total_bookings": booked,
        "available_slots": available_slots,
        "is_full": available_slots == 0,
        "status": seat_status(available_slots),
        "last_checked": datetime.now(UTC).isoformat(),
    }
