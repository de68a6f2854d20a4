"""TEST / LOCAL STAND-IN for HubSpot's CRM API: a test double for local runs, tests
and benchmarks. NEVER ON THE PRODUCTION PATH: nothing under api/ or lib/ imports it.

It imitates the part of HubSpot the project calls, with HubSpot's request and
response shapes, so the official `hubspot-api-client` SDK and lib/hubspot/client.py
both talk to it unchanged. Behaviour follows shared/reference/hubspot-api.md (which
cites HubSpot's docs, OpenAPI specs and reported issues):

* Objects v3: `POST /crm/v3/objects/{type}/batch/create|update|upsert|read` (at most
  100 inputs; two inputs for one record rejected; upsert by a unique-value property
  with `new` in the results; create may carry inline associations), `POST
  /crm/v3/objects/{type}/search`, `POST /crm/v3/objects/{type}`, `GET|PATCH
  /crm/v3/objects/{type}/{id}` (`idProperty` query parameter; GET also takes
  `associations`).
* Archive: `DELETE /crm/v3/objects/{type}/{id}` and `POST .../batch/archive` (204)
  move records to the recycle bin. Archived records are missing to every read, write
  and association call (404 or an OBJECT_NOT_FOUND entry) and to search ("Archived CRM
  objects won't appear in any search results", HubSpot's search guide); reads with
  `archived=true` (single GET, batch read) return them with `archived` and
  `archivedAt`. Their unique values are freed and their associations dropped.
* Merge: `POST /crm/v3/objects/{type}/merge` (`primaryObjectId`, `objectIdToMerge`)
  makes a new record with a new id, as HubSpot's changelog "Updated merge
  functionality for contacts and companies" says; both old ids read it (single GET,
  batch read, single PATCH), answered under the new id, with `hs_merged_object_ids`;
  batch update by an old id is OBJECT_NOT_FOUND ("previous record ID values stored in
  hs_merged_object_ids ... are not supported when updating records using the batch
  update endpoint", HubSpot's objects guide); search finds old ids nowhere.
* Associations v4: `POST /crm/v4/associations/{from}/{to}/batch/create` and
  `.../batch/associate/default` (at most 2,000 inputs), `GET .../labels`,
  `GET /crm/v4/objects/{from}/{id}/associations/{to}`. Associations are two-way, as
  in HubSpot: each direction has its own type id.
* Auth: `Authorization: Bearer <token>`, else 401 INVALID_AUTHENTICATION.
* Rate limits: a rolling window (default 190 per 10 s) with the
  `X-HubSpot-RateLimit-*` headers; search 5 per second without those headers; a
  daily budget. 429 bodies carry `policyName` TEN_SECONDLY_ROLLING, SECONDLY or DAILY.
  A request answered 429 does not use up budget.
* Errors: `{"status": "error", "category", "message", "correlationId", "errors"?}`.
  A per-input failure (validation, unique-value conflict) fails the whole batch,
  except in a batch create whose input carries `objectWriteTraceId`: then the batch
  answers 207 with the failure in `errors[]` (HubSpot documents multi-status for
  create only). Records that do not exist are always reported in `errors[]` (207),
  as HubSpot's batch read does. Property values travel as strings.
* The school's portal profile (`default_types`): per object, the writable properties,
  the unique ones (`idProperty`), the calculated (read-only) ones and the options of
  enumerations and booleans; a value outside them is INVALID_OPTION, a read-only one
  READ_ONLY_VALUE.

Choices where HubSpot's behaviour is not documented (so tests do not over-trust them):
`hs_createdate` / `hs_lastmodifieddate` (and contacts' `createdate` /
`lastmodifieddate`) come back as ISO-8601 strings, as in HubSpot's v3 examples, and
search filters on them accept epoch milliseconds or ISO; a record without a value
matches only NEQ, NOT_IN, NOT_HAS_PROPERTY and NOT_CONTAINS_TOKEN; string comparisons
ignore case; a batch update naming a missing record gets a 207 entry even without a
trace id; results echo `objectWriteTraceId`, and upsert results show the record's
unique key; default (unlabelled, USER_DEFINED) association types exist between
bookings, contacts and mock exams (HubSpot may require labelled types for custom
objects: prefer `batch/create` with the type id from `labels`); associations share
the 10-second budget unless `associations_per_10s` is set; archiving an id with no
live record is answered 204 too; a single GET's `associations` name their types
`<from>_to_<to>` (unlabelled) or by label.

Fault injection (runtime, from Python or `POST /__standin/faults`), deterministic
under its seed for a given request order: added latency; 5xx answers (given before
any write); timeouts (the request is held `hold_s`, then applied and answered to a
client that has given up); lost responses (the write is applied, then the connection
is closed without an answer); a forced whole-batch 409 for batches naming given ids.

Control API (no auth, never rate limited or logged): `GET|POST /__standin/faults`,
`GET|POST /__standin/limits`, `POST /__standin/reset` (`{"objects": false}` keeps the
records), `GET /__standin/requests` (the request log: arrival time, method, path,
status, budget bucket, fault, batch size), `POST /__standin/objects/{type}` (seed a
record: `{"properties", "id"?}`). From Python: `serve()` returns a HubSpotStandIn with
the same controls, and `archive()` / `merge_contacts()` to act as a portal admin. Run
alone: `python -m local.standins.hubspot [port] [token]`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


CONTACTS = "0-1"
BOOKINGS = "2-50158943"
MOCK_EXAMS = "2-50158913"

# HubSpot's documented request-size limits.
BATCH_LIMIT = 100
ASSOCIATION_BATCH_LIMIT = 2000
SEARCH_PAGE_LIMIT = 200
SEARCH_RESULT_LIMIT = 10_000
SEARCH_IN_LIMIT = 100  # values of one IN / NOT_IN filter
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
ASSOCIATIONS_PAGE_LIMIT = 500
# A request body bigger than this is not one our code sends (100 inputs of a few
# hundred bytes each, or 2,000 association pairs).
MAX_BODY_BYTES = 5_000_000

CONTACT_PROPERTIES = _names(
    """
    student_id email firstname lastname sj_credits cs_credits sjmini_credits
    mock_discussion_token shared_mock_credits ndecc_exam_date
    """
)
MOCK_EXAM_PROPERTIES = _names(
    """
    mock_exam_name mock_type mock_set exam_date start_time end_time location capacity
    total_bookings is_active scheduled_activation_datetime
    """
)
BOOKING_PROPERTIES = _names(
    """
    booking_id name email is_active attendance attending_location dominant_hand
    token_used token_refunded token_refunded_at idempotency_key student_id
    """
)
# Booking properties HubSpot computes from the associated mock exam.
BOOKING_COMPUTED = ("mock_type", "exam_date", "location", "start_time", "end_time")
# The school's portal (the replaced system's code only ever reads these on bookings):
# calculated there, so a write is READ_ONLY_VALUE.
BOOKING_READ_ONLY = frozenset({"student_id"})
# Enumeration and boolean properties of bookings, with the portal's options (the
# replaced system's six attending locations; dominant_hand is a boolean).
BOOKING_OPTIONS: Mapping[str, frozenset[str]] = {
    "attending_location": frozenset(
        {"Mississauga", "Calgary", "Vancouver", "Montreal", "Richmond Hill", "Online"}
    ),
    "dominant_hand": frozenset({"true", "false"}),
}

# Where HubSpot lists the ids a record was merged from, `;`-separated.
MERGED_IDS = "hs_merged_object_ids"
# Maintained by HubSpot on every record; writing them is READ_ONLY_VALUE.
SYSTEM_PROPERTIES = ("hs_object_id", "hs_createdate", "hs_lastmodifieddate")
CONTACT_SYSTEM_PROPERTIES = ("createdate", "lastmodifieddate")
DATETIME_PROPERTIES = frozenset(
    {"hs_createdate", "hs_lastmodifieddate", "createdate", "lastmodifieddate"}
)
OPERATORS = _names(
    """
    EQ NEQ LT LTE GT GTE BETWEEN IN NOT_IN HAS_PROPERTY NOT_HAS_PROPERTY CONTAINS_TOKEN
    NOT_CONTAINS_TOKEN
    """
)
CATEGORIES = frozenset({"HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"})
# Who a property change came from, as HubSpot's property history tells it
# (`propertiesWithHistory`: sourceType, sourceId): a write through the API with a private
# app's token is an INTEGRATION change whose sourceId is the app's id; an edit in
# HubSpot's UI is CRM_UI with "userId:<id>". The stand-in's token belongs to this app.
STANDIN_APP_ID = "3100001"
UI_SOURCE = ("CRM_UI", "userId:4200001")
# Where the control API lives; never rate limited, never logged.
CONTROL_PREFIX = "/__standin/"


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class ObjectType:
    """One object type and the rules HubSpot applies to its properties."""

    type_id: str
    names: tuple[str, ...] = ()  # other names the URL may use ("contacts")
    label: str = "OBJECT"  # in messages, as HubSpot names the type
    properties: frozenset[str] | None = None  # writable names; None: any name
    unique: frozenset[str] = frozenset()  # hasUniqueValue: usable as idProperty
    email_id: bool = False  # contacts: `email` is an idProperty for read and upsert
    computed: tuple[str, ...] = ()  # read-only, copied from the associated record
    computed_from: str | None = None  # the type those values come from
    defaults: tuple[str, ...] = ()  # returned when a read names no properties
    read_only: frozenset[str] = frozenset()  # calculated in the portal: refused on write
    options: Mapping[str, frozenset[str]] = field(default_factory=dict)  # enumerations

    @property
    def system(self) -> tuple[str, ...]:
        extra = CONTACT_SYSTEM_PROPERTIES if self.type_id == CONTACTS else ()
        return SYSTEM_PROPERTIES + extra


def default_types(
    bookings_object: str = BOOKINGS,
    mock_exams_object: str = MOCK_EXAMS,
    *,
    unique_booking_id: bool = False,
) -> list[ObjectType]:
    """The school's portal: its three object types, with the properties shared/
    platform.md lists and the rules the replaced system's code shows. Its booking_id is
    a display label that repeats (not created with unique values, so no idProperty).
    `unique_booking_id` makes it one, for tests of HubSpot's upsert itself (a portal
    where a unique property exists); the sync is never tested that way."""
    return [
        ObjectType(
            CONTACTS,
            names=("contacts", "contact"),
            label="CONTACT",
            properties=CONTACT_PROPERTIES,
            # HubSpot keeps contact emails unique (a second create is a CONFLICT).
            unique=frozenset(),
            email_id=True,
            defaults=("email", "firstname", "lastname"),
        ),
        ObjectType(
            bookings_object,
            names=("bookings",),
            label="BOOKING",
            properties=BOOKING_PROPERTIES,
            unique=frozenset({"booking_id"}) if unique_booking_id else frozenset(),
            computed=BOOKING_COMPUTED,
            computed_from=mock_exams_object,
            read_only=BOOKING_READ_ONLY,
            options=BOOKING_OPTIONS,
        ),
        ObjectType(
            mock_exams_object,
            names=("mock_exams",),
            label="MOCK_EXAM",
            properties=MOCK_EXAM_PROPERTIES,
        ),
    ]


@dataclass(frozen=True)
class Limits:
    """HubSpot's budgets. `interval_ms` is the rolling window of `per_interval`."""

    per_interval: int = 190
    interval_ms: int = 10_000
    search_per_s: int = 5
    daily: int = 1_000_000
    # None: association calls share the main window. HubSpot documents a separate
    # association budget (about 150 / 10 s); set it to imitate that.
    associations_per_interval: int | None = None


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Rates are fractions of matching requests,
    drawn from a generator seeded with `seed`; the `*_next` counts hit the next N
    matching requests first, whatever the rates (exact, for tests)."""

    latency_ms: int = 0
    error_rate: float = 0.0
    error_next: int = 0
    error_statuses: tuple[int, ...] = (502, 503, 504)
    timeout_rate: float = 0.0
    timeout_next: int = 0
    # A timed-out request is held this long (longer than the client waits), then
    # applied and answered late.
    hold_s: float = 5.0
    lost_rate: float = 0.0
    lost_next: int = 0
    # A batch whose inputs name one of these (record id, unique value or
    # objectWriteTraceId) fails whole with 409 CONFLICT.
    conflict_ids: frozenset[str] = frozenset()
    # Only requests whose path matches this regular expression are hit (None: all).
    paths: str | None = None
    seed: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        values = dict(data)
        if "conflict_ids" in values:
            values["conflict_ids"] = frozenset(str(v) for v in values["conflict_ids"])
        if "error_statuses" in values:
            values["error_statuses"] = tuple(int(v) for v in values["error_statuses"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["conflict_ids"] = sorted(self.conflict_ids)
        data["error_statuses"] = list(self.error_statuses)
        return data


@dataclass(frozen=True)
class RequestRecord:
    """One API request: when it arrived (epoch seconds), what it was, how it ended.

    `bucket` is the budget it counted against ("general", "search", "associations")
    and `counted` whether it used budget (429s do not). `fault` names an injected
    fault ("error", "timeout", "lost", "conflict"). `inputs` is the batch size."""

    at: float
    method: str
    path: str
    status: int  # 0: not answered (held, lost, or a dropped connection)
    bucket: str | None
    counted: bool
    fault: str | None = None
    inputs: int | None = None


@dataclass(frozen=True)
class Association:
    from_id: str
    to_id: str
    type_id: int
    category: str
    label: str | None


@dataclass(frozen=True)
class _AssocType:
    type_id: int
    category: str
    label: str | None
    inverse: int  # the type id of the same association read from the other side


# ------------------------------------------------------------------ errors


class _Reply(Exception):
    """An error answer in HubSpot's shape; raised anywhere while handling a call."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }
        if errors:
            self.body["errors"] = errors
        if context:
            self.body["context"] = context


@dataclass
class _Failure:
    """Why one input of a batch failed."""

    status: int
    category: str
    message: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, list[str]] = field(default_factory=dict)

    def reply(self) -> _Reply:
        return _Reply(
            self.status, self.category, self.message, errors=self.errors, context=self.context
        )

    def item(self, extra: dict[str, list[str]]) -> dict[str, Any]:
        # StandardError: the SDK requires status, category, message, context, links
        # and errors to be present.
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": {**self.context, **extra},
            "errors": self.errors,
            "links": {},
        }


def _invalid_properties(problems: list[tuple[str, str, str]]) -> _Failure:
    """HubSpot's 400 for bad property values: (code, property, message) each."""
    summary = [
        {"isValid": False, "message": m, "error": c, "name": n, "localizedErrorMessage": m}
        for c, n, m in problems
    ]
    return _Failure(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: {json.dumps(summary)}",
        errors=[
            {"message": m, "code": c, "context": {"propertyName": [n]}} for c, n, m in problems
        ],
    )


def _bad_request(message: str, code: str | None = None) -> _Reply:
    errors = [{"message": message, "code": code}] if code else None
    return _Reply(400, "VALIDATION_ERROR", message, errors=errors)


def _not_found(type_label: str, ids: list[str]) -> _Failure:
    return _Failure(
        404,
        "OBJECT_NOT_FOUND",
        f"Could not get some {type_label} objects, they may be deleted or not exist. "
        "Check that ids are valid.",
        context={"ids": ids},
    )


# ------------------------------------------------------------------ the store


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def _to_ms(value: str) -> float | None:
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def _string(value: Any) -> str | None:
    """A property value as HubSpot stores it, or None when it cannot be one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""  # HubSpot clears a property set to null or ""
    return None


@dataclass(frozen=True)
class _Change:
    """One entry of a property's history: the value set, when, and by whom."""

    value: str
    ms: int
    source_type: str
    source_id: str

    def shaped(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "value": self.value,
            "timestamp": _iso(self.ms),
            "sourceType": self.source_type,
            "sourceId": self.source_id,
        }
        if self.source_id.startswith("userId:"):
            entry["updatedByUserId"] = int(self.source_id.removeprefix("userId:"))
        return entry


@dataclass
class _Record:
    id: str
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    # property -> its changes, oldest first (HubSpot answers newest first)
    history: dict[str, list[_Change]] = field(default_factory=dict)


class _Store:
    """Objects, unique-value indexes and associations. Callers hold `lock`."""

    def __init__(self, types: Iterable[ObjectType]) -> None:
        self.lock = threading.RLock()
        self.types: dict[str, ObjectType] = {}
        self.names: dict[str, str] = {}
        for object_type in types:
            self.types[object_type.type_id] = object_type
            self.names[object_type.type_id] = object_type.type_id
            for name in object_type.names:
                self.names[name.lower()] = object_type.type_id
        self.assoc_types: dict[tuple[str, str], list[_AssocType]] = {}
        self._next_type_id = 1000
        self.clear()

    def clear(self) -> None:
        self.records: dict[str, dict[str, _Record]] = {t: {} for t in self.types}
        self.index: dict[tuple[str, str], dict[str, str]] = {}
        # (from type, from id, to type) -> to id -> association type ids
        self.links: dict[tuple[str, str, str], dict[str, set[int]]] = {}
        # HubSpot's recycle bin: archived records leave `records` (so every read, write
        # and search treats them as missing) and are kept here with their archive time
        # (epoch ms), for reads with `archived=true`.
        self.archived: dict[str, dict[str, tuple[_Record, int]]] = {t: {} for t in self.types}
        # Ids of records merged away -> the id of the record they were merged into.
        self.merged: dict[str, dict[str, str]] = {t: {} for t in self.types}
        # HubSpot's record ids are large numbers; starting high keeps them from being
        # mistaken for row numbers or small test constants.
        self._next_id = 10_000_001
        self._last_ms = 0

    # ---- types

    def resolve(self, name: str) -> ObjectType:
        type_id = self.names.get(name.lower()) or self.names.get(name)
        if type_id is None:
            raise _bad_request(f"Unable to infer object type from: {name}")
        return self.types[type_id]

    def define(
        self,
        from_type: str,
        to_type: str,
        *,
        label: str | None = None,
        category: str = "USER_DEFINED",
        type_id: int | None = None,
        inverse_type_id: int | None = None,
    ) -> int:
        forward = type_id if type_id is not None else self._new_type_id()
        backward = inverse_type_id if inverse_type_id is not None else self._new_type_id()
        self.assoc_types.setdefault((from_type, to_type), []).append(
            _AssocType(forward, category, label, backward)
        )
        if (from_type, to_type) != (to_type, from_type) or forward != backward:
            self.assoc_types.setdefault((to_type, from_type), []).append(
                _AssocType(backward, category, label, forward)
            )
        return forward

    def _new_type_id(self) -> int:
        self._next_type_id += 1
        return self._next_type_id

    def assoc_type(self, from_type: str, to_type: str, type_id: int) -> _AssocType | None:
        for candidate in self.assoc_types.get((from_type, to_type), []):
            if candidate.type_id == type_id:
                return candidate
        return None

    def default_assoc(self, from_type: str, to_type: str) -> _AssocType | None:
        for candidate in self.assoc_types.get((from_type, to_type), []):
            if candidate.label is None:
                return candidate
        return None

    # ---- records

    def now_ms(self) -> int:
        # Never backwards and never equal for two writes: hs_lastmodifieddate must
        # order changes, as a sync's watermark relies on it.
        now = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = now
        return now

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    @staticmethod
    def key(prop: str, value: str) -> str:
        return value.lower() if prop == "email" else value

    def find(
        self, object_type: ObjectType, id_value: str, id_property: str | None
    ) -> _Record | None:
        records = self.records[object_type.type_id]
        if id_property in (None, "hs_object_id"):
            return records.get(id_value)
        assert id_property is not None
        found = self.index.get((object_type.type_id, id_property), {}).get(
            self.key(id_property, id_value)
        )
        return records.get(found) if found else None

    def owner(self, object_type: ObjectType, prop: str, value: str) -> str | None:
        return self.index.get((object_type.type_id, prop), {}).get(self.key(prop, value))

    def indexed(self, object_type: ObjectType) -> frozenset[str]:
        return object_type.unique | ({"email"} if object_type.email_id else set())

    def write(
        self,
        object_type: ObjectType,
        record: _Record | None,
        changes: Mapping[str, str],
        new_id: str | None = None,
        *,
        source: tuple[str, str],
    ) -> tuple[_Record, bool]:
        """Apply changes to a record, or create one (with `new_id`, else the next id).
        `source` (sourceType, sourceId) goes into the history of each property whose
        value changes; a write of the value a property already holds adds no entry."""
        now = self.now_ms()
        created = record is None
        if record is None:
            if new_id is not None and new_id.isdigit():
                # Seeded ids must never be handed out again.
                self._next_id = max(self._next_id, int(new_id))
            record = _Record(new_id or self.new_id(), {}, now, now)
            self.records[object_type.type_id][record.id] = record
        for prop in self.indexed(object_type):
            if prop in changes:
                index = self.index.setdefault((object_type.type_id, prop), {})
                old = record.properties.get(prop)
                if old:
                    index.pop(self.key(prop, old), None)
                if changes[prop]:
                    index[self.key(prop, changes[prop])] = record.id
        for prop, value in changes.items():
            if value != record.properties.get(prop, ""):
                record.history.setdefault(prop, []).append(_Change(value, now, *source))
            if value == "":
                record.properties.pop(prop, None)
            else:
                record.properties[prop] = value
        record.updated_ms = now
        return record, created

    def find_archived(
        self, object_type: ObjectType, id_value: str, id_property: str | None
    ) -> tuple[_Record, int] | None:
        """An archived record (and when it was archived) by id or unique value."""
        shelf = self.archived[object_type.type_id]
        if id_property in (None, "hs_object_id"):
            return shelf.get(id_value)
        assert id_property is not None
        wanted = self.key(id_property, id_value)
        for record, archived_ms in shelf.values():
            value = record.properties.get(id_property)
            if value and self.key(id_property, value) == wanted:
                return record, archived_ms
        return None

    def alias(self, object_type: ObjectType, record_id: str) -> str:
        """The live id for a record id: a merged-away id answers the merge's result."""
        return self.merged[object_type.type_id].get(record_id, record_id)

    def _forget(self, object_type: ObjectType, record_id: str) -> None:
        """Take a record out of the live set: its unique values and associations go."""
        del self.records[object_type.type_id][record_id]
        for prop in self.indexed(object_type):
            index = self.index.get((object_type.type_id, prop), {})
            for key in [k for k, owner in index.items() if owner == record_id]:
                del index[key]
        for link_from_type, link_from_id, link_to_type in list(self.links):
            if (link_from_type, link_from_id) != (object_type.type_id, record_id):
                continue
            for to_id in self.links.pop((link_from_type, link_from_id, link_to_type)):
                back = self.links.get((link_to_type, to_id, link_from_type), {})
                back.pop(record_id, None)

    def archive(self, object_type: ObjectType, record_id: str) -> bool:
        """Move a live record to the recycle bin; False when there is none by that id.

        HubSpot frees an archived record's unique values: its knowledge base says a
        deleted contact cannot be restored while an active contact has its email
        (https://knowledge.hubspot.com/records/restore-deleted-records), so a new record
        may take them. Its associations go too ("All activity is deleted and
        unassociated from the record", https://knowledge.hubspot.com/privacy-and-consent/
        understand-restorable-and-permanent-contact-deletions); the stand-in has no
        restore, so they are dropped."""
        record = self.records[object_type.type_id].get(record_id)
        if record is None:
            return False
        self._forget(object_type, record_id)
        self.archived[object_type.type_id][record_id] = (record, self.now_ms())
        return True

    def merge(self, object_type: ObjectType, primary: _Record, other: _Record) -> _Record:
        """Merge two live records into a new one, as HubSpot does since its "Updated
        merge functionality for contacts and companies" (developer changelog,
        https://developers.hubspot.com/changelog/updated-merge-functionality-for-contacts-
        and-companies; other object types already merged this way): a new record with a
        new id; the primary's values are current, the other's fill the gaps; both old ids
        answer the new record on reads and are listed in `hs_merged_object_ids`; the
        associations of both move to it. Choice: the other record's unique values (a
        contact's second email) keep pointing at the merged record and stay taken:
        HubSpot's knowledge base says a new contact cannot take a merged contact's
        address ("What happens when I merge two contacts?") and keeps it as an
        additional email of the result."""
        type_id = object_type.type_id
        old = (primary, other)
        merged_ids = {r.id for r in old}
        for record in old:
            merged_ids.update(filter(None, record.properties.get(MERGED_IDS, "").split(";")))
        changes = {**other.properties, **primary.properties}
        changes[MERGED_IDS] = ";".join(sorted(merged_ids, key=int))
        between = {(type_id, i) for i in merged_ids}  # links among the merged: dropped
        moved = [
            (to_type, to_id, type_ids)
            for record in old
            for (from_type, from_id, to_type), targets in self.links.items()
            if (from_type, from_id) == (type_id, record.id)
            for to_id, type_ids in targets.items()
            if (to_type, to_id) not in between
        ]
        keys = [
            (prop, key)
            for prop in self.indexed(object_type)
            for key, owner in self.index.get((type_id, prop), {}).items()
            if owner in merged_ids
        ]
        for record in old:
            self._forget(object_type, record.id)
        result, _ = self.write(object_type, None, changes, source=UI_SOURCE)
        # Choice (HubSpot does not document a merged record's history): each property's
        # history is that of the record whose value it kept, so the merge itself adds
        # no change to any value.
        result.history = {**other.history, **primary.history}
        for prop, key in keys:
            self.index.setdefault((type_id, prop), {})[key] = result.id
        for to_type, to_id, type_ids in moved:
            for association_type in sorted(type_ids):
                kind = self.assoc_type(type_id, to_type, association_type)
                if kind is not None:
                    self.link(type_id, result.id, to_type, to_id, kind)
        aliases = self.merged[type_id]
        for old_id, target in aliases.items():
            if target in merged_ids:
                aliases[old_id] = result.id
        for record in old:
            aliases[record.id] = result.id
        return result

    def view(self, object_type: ObjectType, record: _Record) -> dict[str, str]:
        """Every property of the record as a read shows it, computed ones included."""
        values = dict(record.properties)
        if object_type.computed_from:
            source = self.linked(object_type.type_id, record.id, object_type.computed_from)
            if source:
                other = self.records[object_type.computed_from].get(min(source, key=int))
                if other:
                    for prop in object_type.computed:
                        if prop in other.properties:
                            values[prop] = other.properties[prop]
        values["hs_object_id"] = record.id
        values["hs_createdate"] = _iso(record.created_ms)
        values["hs_lastmodifieddate"] = _iso(record.updated_ms)
        if object_type.type_id == CONTACTS:
            values["createdate"] = values["hs_createdate"]
            values["lastmodifieddate"] = values["hs_lastmodifieddate"]
        return values

    def linked(self, from_type: str, from_id: str, to_type: str) -> dict[str, set[int]]:
        return self.links.get((from_type, from_id, to_type), {})

    def link(
        self, from_type: str, from_id: str, to_type: str, to_id: str, kind: _AssocType
    ) -> None:
        self.links.setdefault((from_type, from_id, to_type), {}).setdefault(to_id, set()).add(
            kind.type_id
        )
        self.links.setdefault((to_type, to_id, from_type), {}).setdefault(from_id, set()).add(
            kind.inverse
        )


def _shape(
    object_type: ObjectType,
    record: _Record,
    view: Mapping[str, str],
    wanted: Iterable[str] | None,
    archived_ms: int | None = None,
    with_history: Iterable[str] = (),
) -> dict[str, Any]:
    """SimplePublicObject: the requested properties (null when unset) and the system
    ones, or the type's defaults when nothing was requested; `archivedAt` for a record
    in the recycle bin; `propertiesWithHistory` for the properties asked for with
    history (each newest first, [] if never set)."""
    names = list(wanted) if wanted else list(object_type.defaults)
    properties: dict[str, str | None] = {name: view.get(name) for name in names}
    for name in object_type.system:
        properties[name] = view[name]
    shaped: dict[str, Any] = {
        "id": record.id,
        "properties": properties,
        "createdAt": _iso(record.created_ms),
        "updatedAt": _iso(record.updated_ms),
        "archived": archived_ms is not None,
    }
    if archived_ms is not None:
        shaped["archivedAt"] = _iso(archived_ms)
    history = list(with_history)
    if history:
        shaped["propertiesWithHistory"] = {
            name: [c.shaped() for c in reversed(record.history.get(name, []))] for name in history
        }
    return shaped


# ------------------------------------------------------------------ request logic


def _inputs(body: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise _bad_request("Invalid input JSON: `inputs` must be a list of objects")
    if len(inputs) > limit:
        raise _bad_request(
            f"Too many inputs: {len(inputs)} were given, the limit is {limit}",
            "TOO_MANY_INPUTS",
        )
    return inputs


def _properties_of(item: Mapping[str, Any]) -> dict[str, Any]:
    properties = item.get("properties", {})
    if not isinstance(properties, dict):
        raise _bad_request("Invalid input JSON: `properties` must be an object")
    return properties


def _now_iso() -> str:
    return _iso(int(time.time() * 1000))


class _App:
    """HubSpot's behaviour, apart from HTTP plumbing. Every method holds the store
    lock for its whole batch, so a batch is applied all at once or not at all."""

    def __init__(self, store: _Store, strict_properties: bool, search_lag_ms: int) -> None:
        self.store = store
        self.strict = strict_properties
        self.search_lag_ms = search_lag_ms
        # Every API write is the stand-in token's private app's (property history).
        self.source = ("INTEGRATION", STANDIN_APP_ID)

    # ---- property checks

    def _changes(
        self, object_type: ObjectType, raw: Mapping[str, Any]
    ) -> dict[str, str] | _Failure:
        problems: list[tuple[str, str, str]] = []
        changes: dict[str, str] = {}
        for name, value in raw.items():
            text = _string(value)
            if (
                name in object_type.computed
                or name in object_type.system
                or name in object_type.read_only
            ):
                problems.append(
                    (
                        "READ_ONLY_VALUE",
                        name,
                        f'"{name}" is a calculated property; its value cannot be set',
                    )
                )
            elif (
                self.strict
                and object_type.properties is not None
                and name not in object_type.properties
            ):
                problems.append(
                    ("PROPERTY_DOESNT_EXIST", name, f'Property "{name}" does not exist')
                )
            elif text is None:
                problems.append(
                    ("INVALID_PROPERTY_VALUE", name, f'"{name}" must be a string value')
                )
            elif (
                text != "" and name in object_type.options and text not in object_type.options[name]
            ):
                problems.append(
                    (
                        "INVALID_OPTION",
                        name,
                        f"{text} was not one of the allowed options: "
                        f"{sorted(object_type.options[name])}",
                    )
                )
            else:
                changes[name] = text
        return _invalid_properties(problems) if problems else changes

    def _unique_clash(
        self, object_type: ObjectType, record_id: str | None, changes: Mapping[str, str]
    ) -> _Failure | None:
        for prop in sorted(self.store.indexed(object_type)):
            value = changes.get(prop)
            if not value:
                continue
            owner = self.store.owner(object_type, prop, value)
            if owner is not None and owner != record_id:
                if prop == "email" and object_type.type_id == CONTACTS:
                    message = f"Contact already exists. Existing ID: {owner}"
                else:
                    message = (
                        f"A {object_type.label} with {prop} {value!r} already exists "
                        f"(ID: {owner}); {prop} must be unique"
                    )
                return _Failure(409, "CONFLICT", message)
        return None

    def _id_property(self, object_type: ObjectType, name: Any, *, email: bool) -> str | None:
        if name in (None, "", "hs_object_id"):
            return None
        allowed = object_type.unique | ({"email"} if email and object_type.email_id else set())
        if name not in allowed:
            raise _bad_request(
                f"Unable to perform update/upsert by non-unique {object_type.type_id} "
                f"property {name}"
            )
        return str(name)

    @staticmethod
    def _duplicates(keys: list[str]) -> None:
        seen: set[str] = set()
        repeated: set[str] = set()
        for key in keys:
            (repeated if key in seen else seen).add(key)
        duplicates = sorted(repeated)
        if duplicates:
            raise _bad_request(
                f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique",
                "DUPLICATE_ID",
            )

    # ---- batch writes

    def batch(
        self,
        type_name: str,
        action: str,
        body: Mapping[str, Any],
        query: Mapping[str, list[str]] | None = None,
    ) -> tuple[int, Any]:
        object_type = self.store.resolve(type_name)
        inputs = _inputs(body, BATCH_LIMIT)
        with self.store.lock:
            if action == "read":
                return self._read(object_type, body, inputs, _flag(query or {}, "archived"))
            return self._write(object_type, action, inputs)

    def _plan(
        self, object_type: ObjectType, action: str, item: dict[str, Any], keys: list[str]
    ) -> tuple[_Record | None, dict[str, str], _Failure | None]:
        """One input's target record (None: create), its changes or its failure.
        Adds the input's record key to `keys` (to find two inputs for one record)."""
        raw = _properties_of(item)
        record: _Record | None = None
        failure: _Failure | None = None
        if action == "create":
            for prop in sorted(self.store.indexed(object_type)):
                if isinstance(raw.get(prop), str) and raw[prop]:
                    keys.append(f"{prop}:{self.store.key(prop, raw[prop])}")
        else:
            if "id" not in item or _string(item["id"]) in (None, ""):
                raise _bad_request("Invalid input JSON: every input needs an `id`")
            id_value = str(item["id"])
            id_property = self._id_property(
                object_type, item.get("idProperty"), email=action == "upsert"
            )
            if action == "upsert" and id_property is None:
                raise _bad_request(
                    f"Unable to perform update/upsert by non-unique {object_type.type_id} "
                    "property hs_object_id"
                )
            keys.append(self.store.key(id_property or "", id_value))
            record = self.store.find(object_type, id_value, id_property)
            if record is None and action == "update":
                failure = _not_found(object_type.label, [id_value])
            if record is None and action == "upsert" and id_property:
                raw = {**raw, id_property: id_value}  # a created record keeps its key
        changes = self._changes(object_type, raw)
        if isinstance(changes, _Failure):
            return record, {}, failure or changes
        if failure is None:
            failure = self._unique_clash(object_type, record.id if record else None, changes)
        return record, changes, failure

    def _write(
        self, object_type: ObjectType, action: str, inputs: list[dict[str, Any]]
    ) -> tuple[int, Any]:
        started = _now_iso()
        # Plan every input before writing any, so a failing batch writes nothing.
        keys: list[str] = []
        plans = [(item, *self._plan(object_type, action, item, keys)) for item in inputs]
        self._duplicates(keys)
        # HubSpot answers per input (207) only for batch create, and only for inputs
        # that carry a trace id; an update or upsert with one bad input fails whole
        # (a missing record is always a 207 entry).
        for item, _, _, failure in plans:
            per_input = action == "create" and item.get("objectWriteTraceId")
            if failure and failure.status != 404 and not per_input:
                raise failure.reply()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item, record, changes, failure in plans:
            trace = item.get("objectWriteTraceId")
            if failure is not None:
                errors.append(failure.item({"objectWriteTraceId": [str(trace)]} if trace else {}))
                continue
            written, created = self.store.write(object_type, record, changes, source=self.source)
            if action == "create":
                self._inline_associations(object_type, written, item.get("associations"))
            view = self.store.view(object_type, written)
            shown = list(changes)
            if action == "upsert":  # the record's key, so callers can match results
                shown += sorted(self.store.indexed(object_type) - set(changes))
            shaped = _shape(object_type, written, view, shown)
            if action == "upsert":
                shaped["new"] = created
            if trace:
                shaped["objectWriteTraceId"] = str(trace)
            results.append(shaped)
        return self._batch_answer(201 if action == "create" else 200, started, results, errors)

    def _inline_associations(
        self, object_type: ObjectType, record: _Record, associations: Any
    ) -> None:
        for association in associations or []:
            target = (association.get("to") or {}).get("id")
            for spec in association.get("types") or []:
                for to_type, to_records in self.store.records.items():
                    kind = self.store.assoc_type(
                        object_type.type_id, to_type, int(spec.get("associationTypeId", -1))
                    )
                    if kind and str(target) in to_records:
                        self.store.link(object_type.type_id, record.id, to_type, str(target), kind)

    def _validate_inline(self, object_type: ObjectType, inputs: list[dict[str, Any]]) -> None:
        for item in inputs:
            for association in item.get("associations") or []:
                target = str((association.get("to") or {}).get("id"))
                for spec in association.get("types") or []:
                    type_id = int(spec.get("associationTypeId", -1))
                    matches = [
                        to_type
                        for to_type, to_records in self.store.records.items()
                        if self.store.assoc_type(object_type.type_id, to_type, type_id)
                        and target in to_records
                    ]
                    if not matches:
                        raise _bad_request(
                            f"Association type {type_id} to object {target} is not valid "
                            f"for {object_type.type_id}",
                            "INVALID_ASSOCIATION",
                        )

    def create_batch(self, type_name: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        object_type = self.store.resolve(type_name)
        inputs = _inputs(body, BATCH_LIMIT)
        with self.store.lock:
            self._validate_inline(object_type, inputs)
            return self._write(object_type, "create", inputs)

    @staticmethod
    def _batch_answer(
        status: int, started: str, results: list[dict[str, Any]], errors: list[dict[str, Any]]
    ) -> tuple[int, Any]:
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _now_iso(),
        }
        if errors:
            answer["numErrors"] = len(errors)
            answer["errors"] = errors
            return 207, answer
        return status, answer

    def _read(
        self,
        object_type: ObjectType,
        body: Mapping[str, Any],
        inputs: list[dict[str, Any]],
        archived: bool = False,
    ) -> tuple[int, Any]:
        """Batch read. `archived` (query parameter): only records in the recycle bin.
        A merged-away record id answers the merge's result under the result's id
        (HubSpot: fetching by an original id returns the merged record with its new id),
        so callers match results by `id` and `hs_merged_object_ids`, not by input."""
        started = _now_iso()
        id_property = self._id_property(object_type, body.get("idProperty"), email=True)
        wanted = body.get("properties") or None
        with_history = body.get("propertiesWithHistory") or []
        if not isinstance(with_history, list) or not all(isinstance(n, str) for n in with_history):
            raise _bad_request(
                "Invalid input JSON: `propertiesWithHistory` must be a list of names"
            )
        ids = [str(item.get("id", "")) for item in inputs]
        self._duplicates([self.store.key(id_property or "", i) for i in ids])
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for id_value in ids:
            found = self._lookup(object_type, id_value, id_property, archived)
            if found is None:
                missing.append(id_value)
                continue
            record, archived_ms = found
            view = self.store.view(object_type, record)
            results.append(_shape(object_type, record, view, wanted, archived_ms, with_history))
        errors = [_not_found(object_type.label, missing).item({})] if missing else []
        return self._batch_answer(200, started, results, errors)

    # ---- single records

    def create_one(self, type_name: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        status, answer = self.create_batch(type_name, {"inputs": [body]})
        if status == 207:
            raise _Reply(**_reply_args(answer["errors"][0]))
        return 201, answer["results"][0]

    def _lookup(
        self, object_type: ObjectType, id_value: str, id_property: str | None, archived: bool
    ) -> tuple[_Record, int | None] | None:
        """A record for a read, with its archive time: with `archived`, only from the
        recycle bin; else a live one, a merged-away id answering the merge's result."""
        if archived:
            return self.store.find_archived(object_type, id_value, id_property)
        if id_property is None:
            id_value = self.store.alias(object_type, id_value)
        record = self.store.find(object_type, id_value, id_property)
        return None if record is None else (record, None)

    def get_one(self, type_name: str, record_id: str, query: Mapping[str, list[str]]) -> Any:
        """`GET /crm/v3/objects/{type}/{id}`: `properties`, `idProperty`, `archived`
        and `associations` (object type names or ids, repeated or comma-separated;
        unknown ones ignored, as the SDK's documentation of the parameter says)."""
        object_type = self.store.resolve(type_name)
        id_property = self._id_property(object_type, _first(query, "idProperty"), email=True)
        wanted = _listed(query, "properties")
        with_history = _listed(query, "propertiesWithHistory")
        with self.store.lock:
            found = self._lookup(object_type, record_id, id_property, _flag(query, "archived"))
            if found is None:
                raise _Reply(404, "OBJECT_NOT_FOUND", "resource not found")
            record, archived_ms = found
            view = self.store.view(object_type, record)
            shaped = _shape(object_type, record, view, wanted, archived_ms, with_history)
            associations = self._associations_of(
                object_type, record, _listed(query, "associations")
            )
            if associations:
                shaped["associations"] = associations
            return shaped

    def _associations_of(
        self, object_type: ObjectType, record: _Record, names: list[str]
    ) -> dict[str, Any]:
        """SimplePublicObjectWithAssociations' `associations`: per associated object
        type (keyed by its plural name, else its type id), `{"results": [{"id",
        "type"}]}`, one entry per association type, as in HubSpot's examples
        (`"companies": {"results": [{"id": "...", "type": "contact_to_company"}]}`).
        Types with no associations are left out. Choice: an unlabelled type is named
        `<from>_to_<to>` from the types' labels, a labelled one by its label in
        snake case (HubSpot's names for custom objects' types are not documented)."""
        answer: dict[str, Any] = {}
        for name in names:
            try:
                target = self.store.resolve(name)
            except _Reply:
                continue
            linked = self.store.linked(object_type.type_id, record.id, target.type_id)
            results = []
            for to_id in sorted(linked, key=int):
                for type_id in sorted(linked[to_id]):
                    kind = self.store.assoc_type(object_type.type_id, target.type_id, type_id)
                    if kind is None:
                        continue
                    label = kind.label or f"{object_type.label}_to_{target.label}"
                    results.append({"id": to_id, "type": re.sub(r"\W+", "_", label).lower()})
            if results:
                answer[target.names[0] if target.names else target.type_id] = {"results": results}
        return answer

    def patch_one(
        self,
        type_name: str,
        record_id: str,
        query: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> Any:
        object_type = self.store.resolve(type_name)
        id_property = self._id_property(object_type, _first(query, "idProperty"), email=True)
        with self.store.lock:
            # A merged-away id updates the merge's result: HubSpot documents old ids as
            # unsupported only by the batch update endpoint.
            found = self._lookup(object_type, record_id, id_property, archived=False)
            if found is None:
                raise _Reply(404, "OBJECT_NOT_FOUND", "resource not found")
            record = found[0]
            changes = self._changes(object_type, _properties_of(body))
            if isinstance(changes, _Failure):
                raise changes.reply()
            clash = self._unique_clash(object_type, record.id, changes)
            if clash:
                raise clash.reply()
            self.store.write(object_type, record, changes, source=self.source)
            return _shape(object_type, record, self.store.view(object_type, record), list(changes))

    # ---- archive and merge

    def archive_one(self, type_name: str, record_id: str) -> tuple[int, Any]:
        """`DELETE /crm/v3/objects/{type}/{id}`: to the recycle bin, 204 without a
        body. Choice: an id with no live record is answered 204 as well (HubSpot's
        specification lists only 204 and errors)."""
        object_type = self.store.resolve(type_name)
        with self.store.lock:
            self.store.archive(object_type, record_id)
        return 204, None

    def archive_batch(self, type_name: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        """`POST /crm/v3/objects/{type}/batch/archive` `{"inputs": [{"id"}]}` (at most
        100): 204 without a body; ids with no live record are passed over (choice)."""
        object_type = self.store.resolve(type_name)
        inputs = _inputs(body, BATCH_LIMIT)
        with self.store.lock:
            for item in inputs:
                self.store.archive(object_type, str(item.get("id", "")))
        return 204, None

    def merge(self, type_name: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        """`POST /crm/v3/objects/{type}/merge` `{"primaryObjectId", "objectIdToMerge"}`
        (contacts' endpoint; the generic one is the same): 200 with the merged record,
        which has a new id (see `_Store.merge`)."""
        object_type = self.store.resolve(type_name)
        ids = [body.get("primaryObjectId"), body.get("objectIdToMerge")]
        if not all(isinstance(i, str | int) and str(i) for i in ids):
            raise _bad_request(
                "Invalid input JSON: primaryObjectId and objectIdToMerge are required"
            )
        with self.store.lock:
            primary_id, other_id = (self.store.alias(object_type, str(i)) for i in ids)
            records = self.store.records[object_type.type_id]
            missing = [
                str(i)
                for i, live in zip(ids, (primary_id, other_id), strict=True)
                if live not in records
            ]
            if missing:
                raise _not_found(object_type.label, missing).reply()
            if primary_id == other_id:
                raise _bad_request("Cannot merge an object with itself")
            merged = self.store.merge(object_type, records[primary_id], records[other_id])
            wanted = [*object_type.defaults, MERGED_IDS]
            return 200, _shape(object_type, merged, self.store.view(object_type, merged), wanted)

    # ---- search

    def search(self, type_name: str, body: Mapping[str, Any]) -> Any:
        object_type = self.store.resolve(type_name)
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            raise _bad_request("filterGroups must be a list")
        total_filters = sum(len(g.get("filters") or []) for g in groups)
        if (
            len(groups) > MAX_FILTER_GROUPS
            or any(len(g.get("filters") or []) > MAX_FILTERS_PER_GROUP for g in groups)
            or total_filters > MAX_FILTERS
        ):
            raise _bad_request(
                f"Too many filters: at most {MAX_FILTER_GROUPS} filterGroups with "
                f"{MAX_FILTERS_PER_GROUP} filters each and {MAX_FILTERS} in total",
                "TOO_MANY_FILTERS",
            )
        for group in groups:
            for condition in group.get("filters") or []:
                _check_filter(condition)
        if object_type.type_id == CONTACTS:
            # Contacts' last-modified property is `lastmodifieddate`; a search of
            # contacts on `hs_lastmodifieddate` is reported (HubSpot community) to match
            # nothing, so the stand-in refuses it rather than answer as if it worked.
            named = [c.get("propertyName") for g in groups for c in g.get("filters") or []]
            named += [s.get("propertyName") for s in body.get("sorts") or [] if isinstance(s, dict)]
            if "hs_lastmodifieddate" in named:
                raise _bad_request(
                    "contacts are searched on lastmodifieddate, not hs_lastmodifieddate",
                    "VALIDATION_ERROR",
                )
        limit = int(body.get("limit") or 10)
        if not 0 < limit <= SEARCH_PAGE_LIMIT:
            raise _bad_request(f"limit must be between 1 and {SEARCH_PAGE_LIMIT}")
        after = str(body.get("after") or "0")
        if not after.isdigit():
            raise _bad_request(f"Invalid after value: {after}")
        offset = int(after)
        if offset + limit > SEARCH_RESULT_LIMIT:
            raise _bad_request(
                f"Paging past {SEARCH_RESULT_LIMIT} results is not supported", "PAGE_LIMIT"
            )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise _bad_request("Only one sort is supported")
        query = str(body.get("query") or "").lower()
        cutoff = int(time.time() * 1000) - self.search_lag_ms
        with self.store.lock:
            rows = [
                (record, self.store.view(object_type, record))
                for record in self.store.records[object_type.type_id].values()
                if record.created_ms <= cutoff or self.search_lag_ms == 0
            ]
        matched = [
            (record, view)
            for record, view in rows
            if (not groups or any(_group_matches(view, g) for g in groups))
            and (not query or any(query in v.lower() for v in view.values()))
        ]
        matched.sort(key=lambda row: int(row[0].id))
        if sorts:
            name, descending = _sort_spec(sorts[0])
            present = [r for r in matched if r[1].get(name) not in (None, "")]
            absent = [r for r in matched if r[1].get(name) in (None, "")]
            present.sort(key=lambda row: _sort_key(name, row[1][name]), reverse=descending)
            matched = present + absent
        page = matched[offset : offset + limit]
        wanted = body.get("properties") or None
        answer: dict[str, Any] = {
            "total": len(matched),
            "results": [_shape(object_type, r, v, wanted) for r, v in page],
        }
        next_offset = offset + limit
        if next_offset < len(matched) and next_offset < SEARCH_RESULT_LIMIT:
            answer["paging"] = {
                "next": {"after": str(next_offset), "link": f"?after={next_offset}"}
            }
        return answer

    # ---- associations

    def associate(
        self, from_name: str, to_name: str, body: Mapping[str, Any], *, default: bool
    ) -> tuple[int, Any]:
        from_type = self.store.resolve(from_name)
        to_type = self.store.resolve(to_name)
        inputs = _inputs(body, ASSOCIATION_BATCH_LIMIT)
        started = _now_iso()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self.store.lock:
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id", ""))
                to_id = str((item.get("to") or {}).get("id", ""))
                kinds: list[_AssocType] = []
                failure: _Failure | None = None
                missing = [
                    f"{t.label} {i}"
                    for t, i in ((from_type, from_id), (to_type, to_id))
                    if i not in self.store.records[t.type_id]
                ]
                if missing:
                    failure = _Failure(
                        404, "OBJECT_NOT_FOUND", f"No such object: {', '.join(missing)}"
                    )
                elif default:
                    kind = self.store.default_assoc(from_type.type_id, to_type.type_id)
                    if kind is None:
                        failure = _Failure(
                            400,
                            "VALIDATION_ERROR",
                            f"No default association between {from_type.type_id} and "
                            f"{to_type.type_id}",
                        )
                    else:
                        kinds.append(kind)
                else:
                    for spec in item.get("types") or []:
                        type_id = spec.get("associationTypeId")
                        kind = (
                            self.store.assoc_type(from_type.type_id, to_type.type_id, type_id)
                            if isinstance(type_id, int)
                            else None
                        )
                        if kind is None or kind.category != spec.get("associationCategory"):
                            failure = _Failure(
                                400,
                                "VALIDATION_ERROR",
                                f"{spec.get('associationCategory')} {type_id} is not a valid "
                                f"association type from {from_type.type_id} to "
                                f"{to_type.type_id}",
                            )
                            break
                        kinds.append(kind)
                if failure is not None:
                    errors.append(failure.item({"from": [from_id], "to": [to_id]}))
                    continue
                for kind in kinds:
                    self.store.link(from_type.type_id, from_id, to_type.type_id, to_id, kind)
                if default:
                    results.append(
                        {
                            "from": {"id": from_id},
                            "to": {"id": to_id},
                            "associationSpec": {
                                "associationCategory": kinds[0].category,
                                "associationTypeId": kinds[0].type_id,
                            },
                        }
                    )
                else:
                    results.append(
                        {
                            "fromObjectTypeId": from_type.type_id,
                            "fromObjectId": int(from_id),
                            "toObjectTypeId": to_type.type_id,
                            "toObjectId": int(to_id),
                            "labels": [k.label for k in kinds if k.label],
                        }
                    )
        return self._batch_answer(200 if default else 201, started, results, errors)

    def labels(self, from_name: str, to_name: str) -> Any:
        from_type = self.store.resolve(from_name)
        to_type = self.store.resolve(to_name)
        with self.store.lock:
            kinds = self.store.assoc_types.get((from_type.type_id, to_type.type_id), [])
            return {
                "results": [
                    {"category": k.category, "typeId": k.type_id, "label": k.label} for k in kinds
                ]
            }

    def object_associations(
        self, from_name: str, from_id: str, to_name: str, query: Mapping[str, list[str]]
    ) -> Any:
        from_type = self.store.resolve(from_name)
        to_type = self.store.resolve(to_name)
        limit = int(_first(query, "limit") or ASSOCIATIONS_PAGE_LIMIT)
        offset = int(_first(query, "after") or 0)
        with self.store.lock:
            if from_id not in self.store.records[from_type.type_id]:
                raise _Reply(404, "OBJECT_NOT_FOUND", f"No {from_type.label} with id {from_id}")
            linked = self.store.linked(from_type.type_id, from_id, to_type.type_id)
            rows = []
            for to_id in sorted(linked, key=int):
                types = []
                for type_id in sorted(linked[to_id]):
                    kind = self.store.assoc_type(from_type.type_id, to_type.type_id, type_id)
                    if kind:
                        types.append(
                            {"category": kind.category, "typeId": type_id, "label": kind.label}
                        )
                rows.append({"toObjectId": int(to_id), "associationTypes": types})
        answer: dict[str, Any] = {"results": rows[offset : offset + limit]}
        if offset + limit < len(rows):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return answer


def _reply_args(item: Mapping[str, Any]) -> dict[str, Any]:
    status = {"CONFLICT": 409, "OBJECT_NOT_FOUND": 404}.get(item["category"], 400)
    return {
        "status": status,
        "category": item["category"],
        "message": item["message"],
        "errors": item.get("errors"),
    }


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _listed(query: Mapping[str, list[str]], name: str) -> list[str]:
    """A list parameter, repeated (as the SDK sends it) or comma-separated."""
    return [item for raw in query.get(name, []) for item in raw.split(",") if item]


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    return (_first(query, name) or "").lower() == "true"


def _check_filter(condition: Mapping[str, Any]) -> None:
    operator = condition.get("operator")
    if operator not in OPERATORS:
        raise _bad_request(f"Unknown filter operator: {operator}")
    if not condition.get("propertyName"):
        raise _bad_request("Every filter needs a propertyName")
    if operator in ("IN", "NOT_IN") and not isinstance(condition.get("values"), list):
        raise _bad_request(f"{operator} needs a list of `values`")
    if operator in ("IN", "NOT_IN") and len(condition["values"]) > SEARCH_IN_LIMIT:
        raise _bad_request(f"{operator} takes at most {SEARCH_IN_LIMIT} values", "TOO_MANY_VALUES")
    if operator in ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "CONTAINS_TOKEN") and (
        condition.get("value") is None
    ):
        raise _bad_request(f"{operator} needs a `value`")
    if operator == "BETWEEN" and condition.get("highValue") is None:
        raise _bad_request("BETWEEN needs a `highValue`")


def _compare(name: str, actual: str, wanted: Any) -> int:
    want = str(wanted).lower() if isinstance(wanted, bool) else str(wanted)
    if name in DATETIME_PROPERTIES:
        left, right = _to_ms(actual), _to_ms(want)
        if left is not None and right is not None:
            return (left > right) - (left < right)
    try:
        a, b = float(actual), float(want)
        return (a > b) - (a < b)
    except ValueError:
        a_text, b_text = actual.lower(), want.lower()
        return (a_text > b_text) - (a_text < b_text)


# What each comparison operator accepts, given the sign of actual vs value.
_BY_SIGN: dict[str, Callable[[int], bool]] = {
    "EQ": lambda sign: sign == 0,
    "NEQ": lambda sign: sign != 0,
    "LT": lambda sign: sign < 0,
    "LTE": lambda sign: sign <= 0,
    "GT": lambda sign: sign > 0,
    "GTE": lambda sign: sign >= 0,
}


def _filter_matches(view: Mapping[str, str], condition: Mapping[str, Any]) -> bool:
    operator = str(condition["operator"])
    name = str(condition["propertyName"])
    actual = view.get(name)
    if actual is None or actual == "":
        return operator in ("NEQ", "NOT_IN", "NOT_HAS_PROPERTY", "NOT_CONTAINS_TOKEN")
    value = condition.get("value")
    if operator in _BY_SIGN:
        return bool(_BY_SIGN[operator](_compare(name, actual, value)))
    if operator == "BETWEEN":
        high = condition["highValue"]
        return _compare(name, actual, value) >= 0 and _compare(name, actual, high) <= 0
    if operator in ("IN", "NOT_IN"):
        found = any(_compare(name, actual, v) == 0 for v in condition["values"])
        return found if operator == "IN" else not found
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = str(value).strip("*").lower() in actual.lower()
        return found if operator == "CONTAINS_TOKEN" else not found
    return operator == "HAS_PROPERTY"


def _group_matches(view: Mapping[str, str], group: Mapping[str, Any]) -> bool:
    return all(_filter_matches(view, c) for c in group.get("filters") or [])


def _sort_spec(sort: Any) -> tuple[str, bool]:
    # The SDK sends sorts as strings ("-createdate" descending); the docs as objects.
    if isinstance(sort, str):
        return sort.lstrip("-"), sort.startswith("-")
    if isinstance(sort, dict) and sort.get("propertyName"):
        return str(sort["propertyName"]), sort.get("direction") == "DESCENDING"
    raise _bad_request(f"Invalid sort: {sort!r}")


def _sort_key(name: str, value: str) -> tuple[int, float, str]:
    if name in DATETIME_PROPERTIES and (ms := _to_ms(value)) is not None:
        return (0, ms, "")
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value.lower())


# ------------------------------------------------------------------ rate limits


class _Window:
    """A rolling window: at most `limit` requests in any `interval_ms`."""

    def __init__(self, limit: int, interval_ms: int) -> None:
        self.limit = limit
        self.interval_ms = interval_ms
        self.hits: deque[float] = deque()

    def take(self, now: float) -> int | None:
        """Remaining budget after taking one, or None when the window is full."""
        cutoff = now - self.interval_ms / 1000
        while self.hits and self.hits[0] <= cutoff:
            self.hits.popleft()
        if len(self.hits) >= self.limit:
            return None
        self.hits.append(now)
        return self.limit - len(self.hits)


class _RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.lock = threading.Lock()
        self.configure(limits)

    def configure(self, limits: Limits) -> None:
        with self.lock:
            self.limits = limits
            self.windows = {
                "general": _Window(limits.per_interval, limits.interval_ms),
                "search": _Window(limits.search_per_s, 1000),
                "associations": _Window(
                    limits.associations_per_interval or limits.per_interval, limits.interval_ms
                ),
            }
            self.daily_used = 0

    def take(self, bucket: str) -> tuple[str, dict[str, str], str | None]:
        """(the bucket that counted, headers, policyName when refused)."""
        now = time.monotonic()
        with self.lock:
            if bucket == "associations" and self.limits.associations_per_interval is None:
                bucket = "general"
            window = self.windows[bucket]
            headers: dict[str, str] = {}
            if self.daily_used >= self.limits.daily:
                policy: str | None = "DAILY"
                remaining: int | None = 0
            else:
                remaining = window.take(now)
                policy = (
                    None
                    if remaining is not None
                    else ("SECONDLY" if bucket == "search" else "TEN_SECONDLY_ROLLING")
                )
                if remaining is not None:
                    self.daily_used += 1
            if bucket != "search":  # HubSpot's search answers carry no rate headers
                headers = {
                    "X-HubSpot-RateLimit-Max": str(window.limit),
                    "X-HubSpot-RateLimit-Remaining": str(remaining or 0),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(window.interval_ms),
                    "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
                    "X-HubSpot-RateLimit-Daily-Remaining": str(
                        max(0, self.limits.daily - self.daily_used)
                    ),
                }
            return bucket, headers, policy


_RATE_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}


def rate_limit_body(policy: str) -> dict[str, str]:
    """HubSpot's 429 body for a policy (shared/reference/hubspot-api.md §1.4)."""
    return {
        "status": "error",
        "message": _RATE_MESSAGES[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
    }


# ------------------------------------------------------------------ faults


class _FaultState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.set(Faults())

    def set(self, faults: Faults) -> None:
        with self.lock:
            self.faults = faults
            self.pattern = re.compile(faults.paths) if faults.paths else None
            # Reproducible fault sequences, not secrecy: a seeded generator is the point.
            self.rng = random.Random(faults.seed)  # noqa: S311
            self.error_next = faults.error_next
            self.timeout_next = faults.timeout_next
            self.lost_next = faults.lost_next

    def draw(self, path: str) -> tuple[str | None, int]:
        """(fault for this request or None, the 5xx status when it is "error")."""
        with self.lock:
            faults = self.faults
            if self.pattern is not None and not self.pattern.search(path):
                return None, 0
            fault: str | None = None
            if self.error_next > 0:
                self.error_next -= 1
                fault = "error"
            elif self.timeout_next > 0:
                self.timeout_next -= 1
                fault = "timeout"
            elif self.lost_next > 0:
                self.lost_next -= 1
                fault = "lost"
            else:
                roll = self.rng.random()
                for name, rate in (
                    ("error", faults.error_rate),
                    ("timeout", faults.timeout_rate),
                    ("lost", faults.lost_rate),
                ):
                    if roll < rate:
                        fault = name
                        break
                    roll -= rate
            status = self.rng.choice(faults.error_statuses) if fault == "error" else 0
            return fault, status

    def conflicts(self, body: Any, path: str) -> str | None:
        """The forced-conflict id a batch names, if any (on the paths faults apply to)."""
        ids = self.faults.conflict_ids
        if not ids or not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            return None
        if self.pattern is not None and not self.pattern.search(path):
            return None
        for item in body["inputs"]:
            if not isinstance(item, dict):
                continue
            named = {str(item.get("id")), str(item.get("objectWriteTraceId"))}
            properties = item.get("properties")
            if isinstance(properties, dict):
                named |= {str(v) for v in properties.values()}
            hit = named & ids
            if hit:
                return min(hit)
        return None


# ------------------------------------------------------------------ HTTP plumbing

_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    # (method, path pattern, handler name, budget bucket)
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/(create)$"), "create_batch", "general"),
    (
        "POST",
        re.compile(r"^/crm/v3/objects/([^/]+)/batch/(update|upsert|read)$"),
        "batch",
        "general",
    ),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/archive$"), "archive_batch", "general"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/merge$"), "merge", "general"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/search$"), "search", "search"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)$"), "create_one", "general"),
    ("GET", re.compile(r"^/crm/v3/objects/([^/]+)/([^/]+)$"), "get_one", "general"),
    ("PATCH", re.compile(r"^/crm/v3/objects/([^/]+)/([^/]+)$"), "patch_one", "general"),
    ("DELETE", re.compile(r"^/crm/v3/objects/([^/]+)/([^/]+)$"), "archive_one", "general"),
    (
        "POST",
        re.compile(r"^/crm/v4/associations/([^/]+)/([^/]+)/batch/create$"),
        "associate",
        "associations",
    ),
    (
        "POST",
        re.compile(r"^/crm/v4/associations/([^/]+)/([^/]+)/batch/associate/default$"),
        "associate_default",
        "associations",
    ),
    ("GET", re.compile(r"^/crm/v4/associations/([^/]+)/([^/]+)/labels$"), "labels", "associations"),
    (
        "GET",
        re.compile(r"^/crm/v4/objects/([^/]+)/([^/]+)/associations/([^/]+)$"),
        "object_associations",
        "associations",
    ),
]


@dataclass
class _Trace:
    """A request log entry while its request is handled: logged on arrival, so a
    request that is held (or never answered) is in the log all the same."""

    at: float
    method: str
    path: str
    status: int = 0  # 0: no answer (yet)
    bucket: str | None = None
    counted: bool = False
    fault: str | None = None
    inputs: int | None = None

    def record(self) -> RequestRecord:
        return RequestRecord(
            self.at,
            self.method,
            self.path,
            self.status,
            self.bucket,
            self.counted,
            self.fault,
            self.inputs,
        )


@dataclass(frozen=True)
class _Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a held request must never keep the test process alive
    # Benchmarks open many connections at once; the default backlog of 5 would make
    # the kernel refuse some of them.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], token: str, app: _App, limiter: _RateLimiter
    ) -> None:
        super().__init__(address, _Handler)
        self.token = token
        self.app = app
        self.limiter = limiter
        self.faults = _FaultState()
        self.release = threading.Event()  # set on stop: held requests end early
        self.log_lock = threading.Lock()
        self.log: list[_Trace] = []
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.log_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request (a sync process killed on purpose, a
        # client timing out) is HubSpot's everyday life, not an error of the stand-in.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.log_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.log_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def record(self, entry: _Trace) -> None:
        with self.log_lock:
            self.log.append(entry)

    def snapshot(self) -> list[RequestRecord]:
        with self.log_lock:
            return sorted((t.record() for t in self.log), key=lambda r: r.at)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as HubSpot offers
    server_version = "hubspot-standin"
    # Headers and body leave in two writes; with Nagle's algorithm the second waits
    # for the client's delayed ACK, adding ~40 ms to every answer.
    disable_nagle_algorithm = True

    def _server(self) -> _Server:
        assert isinstance(self.server, _Server)
        return self.server

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET  # noqa: N815

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the body cannot be skipped reliably
            return None
        return self.rfile.read(length)

    def _handle(self) -> None:
        server = self._server()
        arrived = time.time()
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query)
        raw = self._body()
        if raw is None:
            self._send(_error(400, "VALIDATION_ERROR", "Content-Length missing or too large"))
            return
        if path.startswith(CONTROL_PREFIX):
            self._send(self._control(path, raw))
            return
        trace = _Trace(arrived, self.command, self.path)
        server.record(trace)
        try:
            response = self._api(path, query, raw, trace)
        except _Reply as reply:
            response = _Response(reply.status, reply.body)
        except Exception:  # a bug here must answer 500, not drop the connection
            log.exception("hubspot stand-in failed on %s", path)
            response = _error(500, "INTERNAL_ERROR", "stand-in internal error")
        latency = server.faults.faults.latency_ms
        if latency and trace.fault != "error":
            server.release.wait(latency / 1000)
        with server.log_lock:
            trace.status = response.status if response else 0
        if response is None:  # lost: the write happened, the answer never leaves
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def _api(
        self, path: str, query: Mapping[str, list[str]], raw: bytes, trace: _Trace
    ) -> _Response | None:
        """Authenticate, route, take budget, then run the call with its fault."""
        server = self._server()
        if not self._authorized():
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        route = _route(self.command, path)
        if route is None:
            return _error(404, "OBJECT_NOT_FOUND", f"No route for {self.command} {path}")
        name, groups, bucket = route
        trace.bucket, headers, policy = server.limiter.take(bucket)
        trace.counted = policy is None
        if policy is not None:
            return _Response(429, rate_limit_body(policy), headers)
        body = _parse(raw) if self.command in ("POST", "PATCH", "PUT") else {}
        if isinstance(body, dict) and isinstance(body.get("inputs"), list):
            trace.inputs = len(body["inputs"])
        trace.fault, response = self._apply(name, groups, query, body, headers, path)
        return response

    def _apply(
        self,
        name: str,
        groups: tuple[str, ...],
        query: Mapping[str, list[str]],
        body: Any,
        headers: dict[str, str],
        path: str,
    ) -> tuple[str | None, _Response | None]:
        """Run one API call with its injected fault. None as the response: lost."""
        server = self._server()
        fault, status = server.faults.draw(path)
        if fault == "error":
            return fault, _Response(
                status,
                {
                    "status": "error",
                    "message": f"{HTTPStatus(status).phrase} (injected)",
                    "correlationId": str(uuid.uuid4()),
                    "category": "INTERNAL_ERROR",
                },
            )
        conflict = (
            server.faults.conflicts(body, path) if name in ("batch", "create_batch") else None
        )
        if conflict is not None:
            return "conflict", _error(
                409, "CONFLICT", f"Conflict writing the record identified by {conflict}"
            )
        if fault == "timeout":
            server.release.wait(server.faults.faults.hold_s)
        app = server.app
        try:
            status, answer = _dispatch(app, name, groups, query, body)
        except _Reply as reply:
            status, answer = reply.status, reply.body
        if fault == "lost":
            return fault, None
        return fault, _Response(status, answer, headers)

    def _authorized(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self._server().token

    def _control(self, path: str, raw: bytes) -> _Response:
        server = self._server()
        action = f"{self.command} {path.removeprefix(CONTROL_PREFIX)}"
        try:
            body = _parse(raw) if raw.strip() else {}
            if action == "POST faults":
                server.faults.set(Faults.from_json(body))
            if action == "POST limits":
                current = asdict(server.limiter.limits)
                server.limiter.configure(Limits(**{**current, **body}))
            if action == "POST reset":
                _reset(server, objects=bool(body.get("objects", True)))
            answer: Any = None
            if action in ("GET faults", "POST faults"):
                answer = server.faults.faults.to_json()
            elif action in ("GET limits", "POST limits"):
                answer = asdict(server.limiter.limits)
            elif action == "POST reset":
                answer = {"ok": True}
            elif action == "GET requests":
                answer = {"requests": [asdict(e) for e in server.snapshot()]}
            elif action.startswith("POST objects/"):
                type_name = action.removeprefix("POST objects/")
                record_id = str(body["id"]) if body.get("id") is not None else None
                return _Response(
                    201,
                    {"id": _put(server.app.store, type_name, _properties_of(body), record_id)},
                )
        except (ValueError, TypeError, _Reply) as exc:
            return _error(400, "VALIDATION_ERROR", str(exc))
        if answer is None:
            return _error(404, "OBJECT_NOT_FOUND", f"No control action {action}")
        return _Response(200, answer)

    def _send(self, response: _Response) -> None:
        # 204 No Content (archive) carries no body, so no Content-Type or -Length.
        empty = response.status == 204
        payload = b"" if empty else json.dumps(response.body).encode("utf-8")
        self.send_response(response.status, _reason(response.status))
        if not empty:
            self.send_header("Content-Type", "application/json;charset=utf-8")
        correlation = (
            response.body.get("correlationId") if isinstance(response.body, dict) else None
        )
        self.send_header("X-HubSpot-Correlation-Id", str(correlation or uuid.uuid4()))
        for key, value in response.headers.items():
            self.send_header(key, value)
        if not empty:
            self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a held request answered after its timeout).
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("hubspot stand-in: " + format, *args)


def _route(method: str, path: str) -> tuple[str, tuple[str, ...], str] | None:
    for route_method, pattern, name, bucket in _ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return name, match.groups(), bucket
    return None


_Call = Callable[[_App, tuple[str, ...], Mapping[str, list[str]], Any], tuple[int, Any]]
_HANDLERS: dict[str, _Call] = {
    "create_batch": lambda app, g, q, b: app.create_batch(g[0], b),
    "batch": lambda app, g, q, b: app.batch(g[0], g[1], b, q),
    "archive_one": lambda app, g, q, b: app.archive_one(g[0], g[1]),
    "archive_batch": lambda app, g, q, b: app.archive_batch(g[0], b),
    "merge": lambda app, g, q, b: app.merge(g[0], b),
    "search": lambda app, g, q, b: (200, app.search(g[0], b)),
    "create_one": lambda app, g, q, b: app.create_one(g[0], b),
    "get_one": lambda app, g, q, b: (200, app.get_one(g[0], g[1], q)),
    "patch_one": lambda app, g, q, b: (200, app.patch_one(g[0], g[1], q, b)),
    "associate": lambda app, g, q, b: app.associate(g[0], g[1], b, default=False),
    "associate_default": lambda app, g, q, b: app.associate(g[0], g[1], b, default=True),
    "labels": lambda app, g, q, b: (200, app.labels(g[0], g[1])),
    "object_associations": lambda app, g, q, b: (200, app.object_associations(g[0], g[1], g[2], q)),
}


def _dispatch(
    app: _App, name: str, groups: tuple[str, ...], query: Mapping[str, list[str]], body: Any
) -> tuple[int, Any]:
    bodiless = ("get_one", "archive_one", "labels", "object_associations")
    if name not in bodiless and not isinstance(body, dict):
        raise _bad_request("Invalid input JSON: the body must be an object")
    return _HANDLERS[name](app, groups, query, body)


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise _bad_request(f"Invalid input JSON: {exc}") from None


def _error(status: int, category: str, message: str) -> _Response:
    return _Response(
        status,
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        },
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def _put(
    store: _Store,
    type_name: str,
    properties: Mapping[str, Any],
    record_id: str | None = None,
    source: tuple[str, str] = UI_SOURCE,
) -> str:
    object_type = store.resolve(type_name)
    changes = {k: s for k, v in properties.items() if (s := _string(v)) is not None}
    with store.lock:
        existing = store.records[object_type.type_id].get(record_id) if record_id else None
        record, _ = store.write(object_type, existing, changes, new_id=record_id, source=source)
    return record.id


def _reset(server: _Server, *, objects: bool) -> None:
    if objects:
        with server.app.store.lock:
            server.app.store.clear()
    server.faults.set(Faults())
    server.limiter.configure(server.limiter.limits)
    with server.log_lock:
        server.log.clear()


# ------------------------------------------------------------------ the public handle


class HubSpotStandIn:
    """A running stand-in. `url` is what HUBSPOT_BASE_URL (or the SDK's `host`)
    should be set to. Thread-safe; `stop()` or the context manager ends it."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.token = server.token
        # What HUBSPOT_APP_ID should be set to: the id the property history gives the
        # token's app.
        self.app_id = STANDIN_APP_ID

    @property
    def _store(self) -> _Store:
        return self._server.app.store

    # ---- seeding and inspection

    def put(
        self,
        object_type: str,
        properties: Mapping[str, Any],
        id: str | None = None,
        *,
        source: tuple[str, str] = UI_SOURCE,
    ) -> str:
        """Create a record directly (no validation, no budget, no log); its id. With
        `id`: create the record under that id (mirroring another system's ids), or, if
        it exists, change the given properties as an edit in HubSpot's UI would
        (hs_lastmodifieddate moves). `source` is what the property history records:
        an admin in HubSpot's UI unless given, e.g. ("INTEGRATION", STANDIN_APP_ID) for
        a write this system's app made, or another app's id for another integration."""
        return _put(self._store, object_type, properties, id, source)

    def objects(self, object_type: str, *, archived: bool = False) -> list[dict[str, Any]]:
        """Every record of a type, oldest first, with all properties (computed and
        system ones included), in HubSpot's object shape. `archived`: the records in
        the recycle bin instead (with `archivedAt`)."""
        store = self._store
        resolved = store.resolve(object_type)
        with store.lock:
            rows: list[tuple[_Record, int | None]] = (
                list(store.archived[resolved.type_id].values())
                if archived
                else [(r, None) for r in store.records[resolved.type_id].values()]
            )
            rows.sort(key=lambda row: int(row[0].id))
            found = []
            for record, archived_ms in rows:
                shaped = {
                    "id": record.id,
                    "properties": store.view(resolved, record),
                    "createdAt": _iso(record.created_ms),
                    "updatedAt": _iso(record.updated_ms),
                    "archived": archived_ms is not None,
                }
                if archived_ms is not None:
                    shaped["archivedAt"] = _iso(archived_ms)
                found.append(shaped)
            return found

    def archive(self, object_type: str, id: str) -> None:
        """Archive a record as an admin deleting it in HubSpot's UI would (to the
        recycle bin): reads by its id answer 404, searches leave it out, its unique
        values are free and its associations gone; `archived=true` reads find it."""
        store = self._store
        resolved = store.resolve(object_type)
        with store.lock:
            if not store.archive(resolved, id):
                raise ValueError(f"no live {object_type} record {id}")

    def merge_contacts(self, primary_id: str, merged_id: str) -> str:
        """Merge two contacts as an admin would in HubSpot's UI; the id of the result,
        a new record (HubSpot gives merged contacts a new id; both old ids still read
        it, and its `hs_merged_object_ids` lists them)."""
        store = self._store
        contacts = store.resolve(CONTACTS)
        with store.lock:
            records = store.records[CONTACTS]
            primary = records.get(store.alias(contacts, primary_id))
            other = records.get(store.alias(contacts, merged_id))
            if primary is None or other is None or primary is other:
                raise ValueError(f"cannot merge contacts {primary_id} and {merged_id}")
            return store.merge(contacts, primary, other).id

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None = None
    ) -> None:
        """Link two records (the default association type unless `type_id`)."""
        store = self._store
        source, target = store.resolve(from_type), store.resolve(to_type)
        with store.lock:
            kind = (
                store.default_assoc(source.type_id, target.type_id)
                if type_id is None
                else store.assoc_type(source.type_id, target.type_id, type_id)
            )
            if kind is None:
                raise ValueError(f"no such association type from {from_type} to {to_type}")
            store.link(source.type_id, from_id, target.type_id, to_id, kind)

    def associations(
        self, from_type: str, to_type: str, from_id: str | None = None
    ) -> list[Association]:
        """Associations from records of `from_type` (or one record) to `to_type`."""
        store = self._store
        source, target = store.resolve(from_type), store.resolve(to_type)
        found: list[Association] = []
        with store.lock:
            links: Iterable[tuple[tuple[str, str, str], dict[str, set[int]]]]
            if from_id is None:
                links = store.links.items()
            else:
                # One record's links by their key: scanning every link for each record
                # made the torture's check quadratic (hours at 100,000 bookings).
                key = (source.type_id, from_id, target.type_id)
                links = [(key, store.links[key])] if key in store.links else []
            for (link_from_type, link_from_id, link_to_type), targets in links:
                if (link_from_type, link_to_type) != (source.type_id, target.type_id):
                    continue
                for to_id, type_ids in targets.items():
                    for type_id in sorted(type_ids):
                        kind = store.assoc_type(source.type_id, target.type_id, type_id)
                        assert kind is not None
                        found.append(
                            Association(link_from_id, to_id, type_id, kind.category, kind.label)
                        )
        return sorted(found, key=lambda a: (int(a.from_id), int(a.to_id), a.type_id))

    def define_association(
        self,
        from_type: str,
        to_type: str,
        *,
        label: str | None = None,
        category: str = "USER_DEFINED",
    ) -> int:
        """Define an association type (both directions); its from→to type id."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown association category {category}")
        store = self._store
        with store.lock:
            return store.define(
                store.resolve(from_type).type_id,
                store.resolve(to_type).type_id,
                label=label,
                category=category,
            )

    def association_type(self, from_type: str, to_type: str) -> int:
        """The default (unlabelled) association type id from one type to another."""
        store = self._store
        kind = store.default_assoc(store.resolve(from_type).type_id, store.resolve(to_type).type_id)
        if kind is None:
            raise ValueError(f"no default association from {from_type} to {to_type}")
        return kind.type_id

    # ---- faults, limits, log

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the fault settings: a Faults, or its fields as keywords."""
        chosen = faults if faults is not None else Faults.from_json(changes)
        self._server.faults.set(chosen)
        return chosen

    def set_limits(self, **changes: Any) -> Limits:
        """Change budgets (Limits fields); the windows and daily count start afresh."""
        limiter = self._server.limiter
        limits = Limits(**{**asdict(limiter.limits), **changes})
        limiter.configure(limits)
        return limits

    @property
    def limits(self) -> Limits:
        return self._server.limiter.limits

    def requests(self) -> list[RequestRecord]:
        """Every API request so far, by arrival time (a copy)."""
        return self._server.snapshot()

    def peak(self, bucket: str = "general", window_ms: int | None = None) -> int:
        """The most requests of a bucket that arrived within any one window (the
        configured interval unless given), 429s included: what a client sent, not
        what the stand-in let through."""
        window = (window_ms or self.limits.interval_ms) / 1000
        times = [r.at for r in self.requests() if r.bucket == bucket]
        best = start = 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self, *, objects: bool = True) -> None:
        """Clear faults, budgets and the log; also the records unless objects=False.
        Association type definitions are kept."""
        _reset(self._server, objects=objects)

    # ---- lifetime

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.release.set()  # end held (timed-out) requests now
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()
        self._thread.join(timeout=5)  # serve_forever has already returned; just tidy up

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    per_10s: int = 190,
    interval_ms: int = 10_000,
    search_per_s: int = 5,
    daily: int = 1_000_000,
    associations_per_10s: int | None = None,
    bookings_object: str = BOOKINGS,
    mock_exams_object: str = MOCK_EXAMS,
    types: Iterable[ObjectType] | None = None,
    strict_properties: bool = True,
    search_lag_ms: int = 0,
    faults: Faults | None = None,
) -> HubSpotStandIn:
    """Start the stand-in in a background thread; port 0 picks a free port.

    `per_10s` requests per `interval_ms` (tests shrink the window to keep waits
    short); `strict_properties` rejects properties the type does not define, as
    HubSpot does; `search_lag_ms` hides new records from search for that long, as
    HubSpot's search index lags writes. Default association types (unlabelled,
    USER_DEFINED) link bookings to contacts and to mock exams, and mock exams to
    contacts."""
    if not token:
        raise ValueError("the stand-in needs a token to check")
    chosen = list(types) if types is not None else default_types(bookings_object, mock_exams_object)
    store = _Store(chosen)
    known = set(store.types)
    for pair in ((bookings_object, CONTACTS), (bookings_object, mock_exams_object)):
        if set(pair) <= known:
            store.define(*pair)
    if {mock_exams_object, CONTACTS} <= known:
        store.define(mock_exams_object, CONTACTS)
    if {bookings_object, mock_exams_object, CONTACTS} <= known:
        # The portal's labelled types the replaced system used (type ids from its
        # code; the labels' wording is not documented): booking→contact 1289,
        # booking→mock exam 1291 (1292 "Mock Bookings" the other way), exam→exam
        # prerequisites 1340.
        for from_type, to_type, forward, backward, label in (
            (bookings_object, CONTACTS, 1289, 1290, "Contact"),
            (bookings_object, mock_exams_object, 1291, 1292, "Mock Bookings"),
            (mock_exams_object, mock_exams_object, 1340, 1341, "requires attendance at"),
        ):
            store.define(from_type, to_type, label=label, type_id=forward, inverse_type_id=backward)
    limiter = _RateLimiter(Limits(per_10s, interval_ms, search_per_s, daily, associations_per_10s))
    server = _Server((host, port), token, _App(store, strict_properties, search_lag_ms), limiter)
    if faults is not None:
        server.faults.set(faults)
    # A short poll interval makes stop() return promptly.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="hubspot-standin",
        daemon=True,
    )
    thread.start()
    return HubSpotStandIn(server, thread)


def main() -> None:
    """`python -m local.standins.hubspot [port] [token]`: run it in the foreground."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18090
    token = sys.argv[2] if len(sys.argv) > 2 else "local-hubspot-token"
    with serve(token, port=port) as standin:
        print(f"HubSpot stand-in on {standin.url} (token {token}); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
