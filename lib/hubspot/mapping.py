"""How PostgreSQL's rows and HubSpot's properties translate, both ways.

Conversions happen here, at the edge, so the tables keep their own types
(product.md §3: "convert at the edges"). HubSpot carries every property value as a
string; "" clears one. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

# The five balances, in the order every credit vector of the sync uses (the SQL
# functions' int[5] arrays follow it too).
CREDIT_KINDS = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)

MOCK_TYPES = frozenset({"Situational Judgment", "Clinical Skills", "Mini-mock", "Mock Discussion"})
MOCK_SETS = frozenset("ABCDEFGH")
EXAM_PROPERTIES = (
    "mock_exam_name",
    "mock_type",
    "mock_set",
    "exam_date",
    "start_time",
    "end_time",
    "location",
    "capacity",
    "total_bookings",
    "is_active",
    "scheduled_activation_datetime",
    "hs_lastmodifieddate",
)
# HubSpot's names for the attending locations PostgreSQL stores as slugs.
LOCATION_NAMES = {
    "mississauga": "Mississauga",
    "calgary": "Calgary",
    "vancouver": "Vancouver",
    "montreal": "Montreal",
    "richmond_hill": "Richmond Hill",
    "online": "Online",
}
_DIGITS = re.compile(r"^-?\d+(\.0+)?$")


class MappingError(ValueError):
    """A HubSpot record this system cannot take as it is (the message says why)."""


# ------------------------------------------------------------------ times


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def parse_ms(value: str | None) -> int | None:
    """A HubSpot datetime (epoch milliseconds, or ISO-8601 as v3 objects show their
    system dates) as epoch ms; None when empty. Raises MappingError when unreadable."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if _DIGITS.match(text):
        return int(float(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"{text!r} is not a date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return epoch_ms(parsed)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _date(value: str | None) -> str | None:
    """HubSpot's date property: 'YYYY-MM-DD', or midnight UTC in epoch ms."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if _DIGITS.match(text):
        return datetime.fromtimestamp(int(float(text)) / 1000, UTC).date().isoformat()
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise MappingError(f"{text!r} is not a date") from None


# ------------------------------------------------------------------ exams (HubSpot → PostgreSQL)


def exam_from_hubspot(record: Mapping[str, Any]) -> dict[str, Any]:
    """A mock exam as sync_exams_pulled takes it. Raises MappingError naming the
    property HubSpot holds a value for that PostgreSQL cannot (the admin fixes it in
    HubSpot; until then PostgreSQL keeps its copy)."""
    props: Mapping[str, Any] = record.get("properties") or {}

    def text(name: str) -> str | None:
        value = props.get(name)
        return None if value is None or str(value) == "" else str(value)

    def whole(name: str) -> int | None:
        value = text(name)
        if value is None:
            return None
        if not _DIGITS.match(value) or int(float(value)) < 0:
            raise MappingError(f"{name} {value!r} is not a whole number of at least 0")
        return int(float(value))

    mock_type = text("mock_type")
    if mock_type is not None and mock_type not in MOCK_TYPES:
        raise MappingError(f"mock_type {mock_type!r} is not one of {sorted(MOCK_TYPES)}")
    mock_set = text("mock_set")
    if mock_set is not None and mock_set not in MOCK_SETS:
        raise MappingError(f"mock_set {mock_set!r} is not one of A-H")
    try:
        times = {
            name: _iso(parse_ms(text(name)))
            for name in ("start_time", "end_time", "scheduled_activation_datetime")
        }
        exam_date = _date(text("exam_date"))
    except MappingError as exc:
        raise MappingError(f"{exc} (mock exam {record.get('id')})") from None
    return {
        "hubspot_id": str(record["id"]),
        "mock_exam_name": text("mock_exam_name"),
        "mock_type": mock_type,
        "mock_set": mock_set,
        "exam_date": exam_date,
        **times,
        "location": text("location"),
        "capacity": whole("capacity"),
        "is_active": text("is_active"),
        # HubSpot's copy of the seat count: only compared, never taken.
        "hubspot_total": whole("total_bookings"),
    }


# ------------------------------------------------------------------ bookings (PostgreSQL → HubSpot)


def _hand(value: str | None) -> str:
    """HubSpot's dominant_hand is a boolean: true = right-handed."""
    lowered = (value or "").strip().lower()
    if lowered in ("right", "true"):
        return "true"
    if lowered in ("left", "false"):
        return "false"
    return ""


def _location(value: str | None) -> str:
    if not value:
        return ""
    return LOCATION_NAMES.get(value.strip().lower(), value)


def _status(value: str | None) -> str:
    # The replaced system sometimes wrote statuses in lower case.
    return {"active": "Active", "cancelled": "Cancelled", "completed": "Completed"}.get(
        (value or "").strip().lower(), value or ""
    )


def _timestamp_ms(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return str(epoch_ms(value))
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return str(epoch_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)))


def booking_properties(row: Mapping[str, Any]) -> dict[str, str]:
    """The booking as HubSpot's booking object holds it: only properties the replaced
    system wrote (its create and its admin updates). Never the ones the portal
    calculates: from the associated exam (mock_type, exam_date, location, start_time,
    end_time), nor student_id, which the replaced system only ever read: writing any of
    those fails the record with READ_ONLY_VALUE. Nor booking_id: a
    code never changes; an upsert sets it on the record it creates, and a legacy code
    (not unique) written again could clash with its namesake."""
    return {
        "name": row.get("name") or "",
        "email": row.get("email") or "",
        "is_active": _status(row.get("is_active")),
        "attendance": row.get("attendance") or "",
        "attending_location": _location(row.get("attending_location")),
        "dominant_hand": _hand(row.get("dominant_hand")),
        "token_used": row.get("token_used") or "",
        "token_refunded": "true" if row.get("token_refunded") == "true" else "false",
        "token_refunded_at": _timestamp_ms(row.get("token_refunded_at")),
        "idempotency_key": row.get("idempotency_key") or "",
    }


# ------------------------------------------------------------------ contacts and credits


def contact_properties(row: Mapping[str, Any]) -> dict[str, str]:
    """A contact PostgreSQL created, as HubSpot gets it. Balances are left out on
    purpose: the credit merge writes them (if HubSpot already had this email, its own
    balances must be seen before anything overwrites them)."""
    return {
        "email": str(row["email"]),
        "student_id": row.get("student_id") or "",
        "firstname": row.get("firstname") or "",
        "lastname": row.get("lastname") or "",
        "ndecc_exam_date": row.get("ndecc_exam_date") or "",
    }


def credit_values(properties: Mapping[str, Any]) -> list[int] | None:
    """HubSpot's five balances as whole numbers (unset counts as 0); None when one is
    not a whole number of at least 0."""
    values: list[int] = []
    for kind in CREDIT_KINDS:
        raw = properties.get(kind)
        text = "" if raw is None else str(raw).strip()
        if text == "":
            values.append(0)
            continue
        if not _DIGITS.match(text) or int(float(text)) < 0:
            return None
        values.append(int(float(text)))
    return values


def credit_properties(values: list[int]) -> dict[str, str]:
    """A credit push: the five balances, in one write."""
    return {k: str(v) for k, v in zip(CREDIT_KINDS, values, strict=True)}


def credit_changes_elsewhere(
    history: Mapping[str, Any], since_ms: int, app_id: str
) -> list[int] | None:
    """What sources other than this sync changed in each balance after `since_ms`,
    from HubSpot's `propertiesWithHistory` of a contact: per kind, the sum over each
    change after it that this sync's app did not make (sourceType INTEGRATION with
    sourceId `app_id`) of the value it set minus the value before it (an unset value,
    or no earlier entry at all, counts as 0). None when an entry's value is not a whole
    number of at least 0 (a balance HubSpot should not hold) or has no readable time."""
    changes: list[int] = []
    for kind in CREDIT_KINDS:
        entries: list[tuple[int, int, bool]] = []  # (ms, value, ours)
        for entry in history.get(kind) or []:
            parsed = credit_values({kind: entry.get("value")})
            try:
                ms = parse_ms(entry.get("timestamp"))
            except MappingError:
                ms = None
            if parsed is None or ms is None:
                return None
            ours = entry.get("sourceType") == "INTEGRATION" and str(entry.get("sourceId")) == app_id
            entries.append((ms, parsed[CREDIT_KINDS.index(kind)], ours))
        # HubSpot lists history newest first; order by time (ties keep HubSpot's order).
        entries.reverse()
        entries.sort(key=lambda e: e[0])
        total = 0
        for position, (at, value, ours) in enumerate(entries):
            if at > since_ms and not ours:
                total += value - (entries[position - 1][1] if position else 0)
        changes.append(total)
    return changes
