"""The Lua scripts and their wrappers (lib/redis_scripts.py), through both clients.

Every test that writes checks the TTL of every key it wrote: product.md §5 says every
key has one, and a key without one would outlive the fact it caches.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence

import pytest
import redis as redis_py

from lib.redis_client import CountingRedis, RedisClient, RedisUnavailable, Reply, Script
from lib.redis_scripts import (
    Admission,
    RateDecision,
    SeatCount,
    admit_booking,
    booking_lock_key,
    budget_key,
    finish_booking,
    hit_rate_limit,
    rate_key,
    read_seats,
    seats_key,
    take_budget,
    write_seats,
)

LOCK_TTL_S = 15
SEATS_TTL_S = 60


def assert_ttl(admin: redis_py.Redis, key: str, most_s: float) -> None:
    """`key` exists and expires within `most_s` seconds."""
    pttl = admin.pttl(key)
    assert isinstance(pttl, int)
    assert 0 < pttl <= most_s * 1000, f"{key} has PTTL {pttl}"


def admit(
    client: RedisClient,
    prefix: str,
    *,
    token: str = "t1",
    lock: str = "lock",
    seats: str = "seats",
    rate: str = "rate",
    rate_limit: int = 100,
    rate_window_s: int = 60,
) -> Admission:
    return admit_booking(
        client,
        lock_key=prefix + lock,
        token=token,
        lock_ttl_s=LOCK_TTL_S,
        seats_key=prefix + seats,
        rate_key=prefix + rate,
        rate_limit=rate_limit,
        rate_window_s=rate_window_s,
    )


# ------------------------------------------------------------------ admit_booking


def test_admitted_takes_the_lock_and_counts_the_request(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    assert admit(client, prefix, token="tok-a") == Admission("admitted", 0)
    assert admin.get(prefix + "lock") == "tok-a"
    assert admin.get(prefix + "rate") == "1"
    assert_ttl(admin, prefix + "lock", LOCK_TTL_S)
    assert_ttl(admin, prefix + "rate", 60)
    assert not admin.exists(prefix + "seats")  # admission never writes the counter


def test_locked_while_someone_else_holds_the_lock(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    assert admit(client, prefix, token="first").outcome == "admitted"
    second = admit(client, prefix, token="second")
    assert second.outcome == "locked"
    assert 1 <= second.retry_after_s <= LOCK_TTL_S
    assert admin.get(prefix + "lock") == "first"


def test_the_same_token_again_is_admitted(client: RedisClient, prefix: str) -> None:
    # A retry of a call whose reply was lost (redis-py retries once on a dropped
    # connection) must not lock the student out of their own booking.
    assert admit(client, prefix, token="mine").outcome == "admitted"
    assert admit(client, prefix, token="mine").outcome == "admitted"


def test_locked_heals_a_lock_without_ttl(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    admin.set(prefix + "lock", "stray")  # not written by us: no TTL
    answer = admit(client, prefix, token="t")
    assert answer.outcome == "locked"
    assert answer.retry_after_s == LOCK_TTL_S
    assert_ttl(admin, prefix + "lock", LOCK_TTL_S)


def test_full_exam_is_refused_without_taking_the_lock(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    write_seats(client, {prefix + "seats": SeatCount(3, 20, 20)}, SEATS_TTL_S)
    assert admit(client, prefix) == Admission("full", 0)
    assert not admin.exists(prefix + "lock")
    write_seats(client, {prefix + "seats": SeatCount(4, 19, 20)}, SEATS_TTL_S)
    assert admit(client, prefix).outcome == "admitted"


def test_overbooked_counter_is_full(client: RedisClient, prefix: str) -> None:
    # booked > capacity happens when an admin lowers capacity below the bookings.
    write_seats(client, {prefix + "seats": SeatCount(1, 25, 20)}, SEATS_TTL_S)
    assert admit(client, prefix).outcome == "full"


@pytest.mark.parametrize("garbage", ["", "full", "1:2", "1:20:x", "-1:20:20", "1:20:20:0"])
def test_garbled_counter_is_not_full(
    client: RedisClient, prefix: str, admin: redis_py.Redis, garbage: str
) -> None:
    # A counter Redis cannot vouch for says nothing: the database decides.
    admin.set(prefix + "seats", garbage, ex=SEATS_TTL_S)
    assert admit(client, prefix).outcome == "admitted"


def test_rate_limit_comes_first(client: RedisClient, prefix: str, admin: redis_py.Redis) -> None:
    write_seats(client, {prefix + "seats": SeatCount(1, 20, 20)}, SEATS_TTL_S)
    # Answers of "full" still count against the client's limit.
    assert admit(client, prefix, rate_limit=2, rate_window_s=30).outcome == "full"
    assert admit(client, prefix, rate_limit=2, rate_window_s=30).outcome == "full"
    limited = admit(client, prefix, rate_limit=2, rate_window_s=30)
    assert limited.outcome == "rate_limited"
    assert 1 <= limited.retry_after_s <= 30
    assert admin.get(prefix + "rate") == "3"
    assert_ttl(admin, prefix + "rate", 30)


def test_rate_limited_takes_no_lock(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    assert admit(client, prefix, lock="l1", rate_limit=1).outcome == "admitted"
    assert admit(client, prefix, lock="l2", rate_limit=1).outcome == "rate_limited"
    assert not admin.exists(prefix + "l2")


def test_admit_is_one_round_trip(client: RedisClient, prefix: str) -> None:
    counting = CountingRedis(client)
    admit(counting, prefix)
    assert counting.calls == {"eval": 1}


@pytest.mark.parametrize(
    ("field", "value"),
    [("token", ""), ("lock_ttl_s", 0), ("rate_limit", 0), ("rate_window_s", -1)],
)
def test_admit_rejects_bad_arguments(
    client: RedisClient, prefix: str, field: str, value: object
) -> None:
    arguments: dict[str, object] = {
        "lock_key": prefix + "lock",
        "token": "t",
        "lock_ttl_s": 10,
        "seats_key": prefix + "seats",
        "rate_key": prefix + "rate",
        "rate_limit": 5,
        "rate_window_s": 10,
        field: value,
    }
    counting = CountingRedis(client)
    with pytest.raises(ValueError, match=field):
        admit_booking(counting, **arguments)  # type: ignore[arg-type]
    assert counting.round_trips == 0


# ------------------------------------------------------------------ finish_booking


def test_finish_releases_our_lock_and_writes_seats(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    assert admit(client, prefix, token="ours").outcome == "admitted"
    counting = CountingRedis(client)
    finish_booking(
        counting,
        lock_key=prefix + "lock",
        token="ours",
        seats_key=prefix + "seats",
        seats=SeatCount(7, 12, 20),
        seats_ttl_s=SEATS_TTL_S,
    )
    assert counting.calls == {"eval": 1}
    assert not admin.exists(prefix + "lock")
    assert SeatCount.decode(str(admin.get(prefix + "seats"))) == SeatCount(7, 12, 20)
    assert_ttl(admin, prefix + "seats", SEATS_TTL_S)


def test_finish_leaves_someone_elses_lock(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    # Our lock expired during a slow booking and another request took it: releasing
    # it would let a third request in beside the second.
    admin.set(prefix + "lock", "theirs", ex=LOCK_TTL_S)
    finish_booking(
        client,
        lock_key=prefix + "lock",
        token="ours",
        seats_key=prefix + "seats",
        seats=None,
        seats_ttl_s=SEATS_TTL_S,
    )
    assert admin.get(prefix + "lock") == "theirs"
    assert not admin.exists(prefix + "seats")  # seats=None writes nothing


def test_finish_never_rolls_the_counter_back(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    write_seats(client, {prefix + "seats": SeatCount(9, 15, 20)}, SEATS_TTL_S)
    finish_booking(
        client,
        lock_key=prefix + "lock",
        token="late",
        seats_key=prefix + "seats",
        seats=SeatCount(8, 14, 20),
        seats_ttl_s=SEATS_TTL_S,
    )
    assert SeatCount.decode(str(admin.get(prefix + "seats"))) == SeatCount(9, 15, 20)


def test_finish_twice_is_harmless(client: RedisClient, prefix: str, admin: redis_py.Redis) -> None:
    assert admit(client, prefix, token="ours").outcome == "admitted"
    for _ in range(2):
        finish_booking(
            client,
            lock_key=prefix + "lock",
            token="ours",
            seats_key=prefix + "seats",
            seats=SeatCount(2, 1, 5),
            seats_ttl_s=SEATS_TTL_S,
        )
    assert not admin.exists(prefix + "lock")
    assert SeatCount.decode(str(admin.get(prefix + "seats"))) == SeatCount(2, 1, 5)


# ------------------------------------------------------------------ seat counters


def test_write_and_read_many_in_one_round_trip_each(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    items = {prefix + f"s{i}": SeatCount(i, i, 10 + i) for i in range(5)}
    counting = CountingRedis(client)
    write_seats(counting, items, SEATS_TTL_S)
    assert counting.calls == {"eval": 1}
    for key in items:
        assert_ttl(admin, key, SEATS_TTL_S)
    counting.reset()
    assert read_seats(counting, [*items, prefix + "missing"]) == items
    assert counting.calls == {"mget": 1}


def test_versioned_write_only_moves_forward(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    key = prefix + "seats"
    write_seats(client, {key: SeatCount(5, 10, 20)}, SEATS_TTL_S)
    write_seats(client, {key: SeatCount(4, 9, 20)}, SEATS_TTL_S)  # late, older
    assert read_seats(client, [key]) == {key: SeatCount(5, 10, 20)}
    # The same version again is the database repeating itself: written, which mends a
    # copy that was corrupted at that version.
    write_seats(client, {key: SeatCount(5, 99, 20)}, SEATS_TTL_S)
    assert read_seats(client, [key]) == {key: SeatCount(5, 99, 20)}
    write_seats(client, {key: SeatCount(5, 10, 20)}, SEATS_TTL_S)
    assert read_seats(client, [key]) == {key: SeatCount(5, 10, 20)}
    write_seats(client, {key: SeatCount(6, 11, 20)}, SEATS_TTL_S)
    assert read_seats(client, [key]) == {key: SeatCount(6, 11, 20)}
    assert_ttl(admin, key, SEATS_TTL_S)


def test_versions_compare_as_numbers(client: RedisClient, prefix: str) -> None:
    key = prefix + "seats"
    write_seats(client, {key: SeatCount(9, 1, 5)}, SEATS_TTL_S)
    write_seats(client, {key: SeatCount(10, 2, 5)}, SEATS_TTL_S)  # "10" < "9" as text
    assert read_seats(client, [key])[key].version == 10


def test_forced_write_mends_a_copy_from_the_future(client: RedisClient, prefix: str) -> None:
    key = prefix + "seats"
    write_seats(client, {key: SeatCount(999, 20, 20)}, SEATS_TTL_S)
    write_seats(client, {key: SeatCount(3, 1, 20)}, SEATS_TTL_S)
    assert read_seats(client, [key])[key].version == 999

    assert write_seats(client, {key: SeatCount(3, 1, 20)}, SEATS_TTL_S, force=True) == 1

    assert read_seats(client, [key]) == {key: SeatCount(3, 1, 20)}


def test_full_is_trusted_only_while_fresh(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    write_seats(client, {prefix + "seats": SeatCount(4, 20, 20)}, SEATS_TTL_S)
    assert admit(client, prefix, token="a").outcome == "full"
    # The same count, confirmed long ago (or written without a time stamp): not trusted.
    admin.set(prefix + "seats", "4:20:20:1000", ex=SEATS_TTL_S)
    assert admit(client, prefix, token="b").outcome == "admitted"
    admin.delete(prefix + "lock")
    admin.set(prefix + "seats", "4:20:20", ex=SEATS_TTL_S)
    assert admit(client, prefix, token="c").outcome == "admitted"


def test_mixed_batch_writes_each_key_on_its_own_merits(client: RedisClient, prefix: str) -> None:
    newer, older = prefix + "newer", prefix + "older"
    write_seats(client, {newer: SeatCount(3, 1, 5), older: SeatCount(3, 1, 5)}, SEATS_TTL_S)
    write_seats(client, {newer: SeatCount(4, 2, 5), older: SeatCount(2, 0, 5)}, SEATS_TTL_S)
    assert read_seats(client, [newer, older]) == {
        newer: SeatCount(4, 2, 5),
        older: SeatCount(3, 1, 5),
    }


def test_garbled_counter_is_replaced_and_skipped_when_read(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    key, other = prefix + "seats", prefix + "other"
    admin.set(key, "nonsense", ex=SEATS_TTL_S)
    admin.set(other, "1:2", ex=SEATS_TTL_S)
    assert read_seats(client, [key, other]) == {}
    write_seats(client, {key: SeatCount(1, 2, 3)}, SEATS_TTL_S)
    assert read_seats(client, [key, other]) == {key: SeatCount(1, 2, 3)}


def test_concurrent_writers_end_on_the_highest_version(
    clients: dict[str, RedisClient], prefix: str
) -> None:
    # Writers from two instances race with versions in random order; whatever the
    # interleaving, the counter must end on the newest.
    key = prefix + "seats"
    versions = list(range(1, 201))
    barrier = threading.Barrier(8)

    def writer(client: RedisClient, mine: Sequence[int]) -> None:
        barrier.wait()
        for version in mine:
            write_seats(client, {key: SeatCount(version, version % 20, 20)}, SEATS_TTL_S)

    threads = [
        threading.Thread(target=writer, args=(client, versions[i::4][::-1]))
        for client in clients.values()
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_seats(clients["tcp"], [key]) == {key: SeatCount(200, 0, 20)}


def test_empty_batches_cost_nothing(client: RedisClient) -> None:
    counting = CountingRedis(client)
    write_seats(counting, {}, SEATS_TTL_S)
    assert read_seats(counting, []) == {}
    assert counting.round_trips == 0


# ------------------------------------------------------------------ hit_rate_limit


def test_fixed_window_allows_the_limit_then_refuses(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    key = prefix + "rate"
    answers = [hit_rate_limit(client, key=key, limit=3, window_s=20) for _ in range(5)]
    assert answers[:3] == [RateDecision(True, 0)] * 3
    for answer in answers[3:]:
        assert not answer.allowed
        assert 1 <= answer.retry_after_s <= 20
    assert_ttl(admin, key, 20)


def test_window_ends_and_the_limit_resets(client: RedisClient, prefix: str) -> None:
    key = prefix + "rate"
    assert hit_rate_limit(client, key=key, limit=1, window_s=1).allowed
    refused = hit_rate_limit(client, key=key, limit=1, window_s=1)
    assert refused == RateDecision(False, 1)
    time.sleep(1.1)
    assert hit_rate_limit(client, key=key, limit=1, window_s=1).allowed


def test_refusals_do_not_extend_the_window(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    key = prefix + "rate"
    hit_rate_limit(client, key=key, limit=1, window_s=30)
    first_pttl = admin.pttl(key)
    for _ in range(5):
        hit_rate_limit(client, key=key, limit=1, window_s=30)
    assert admin.pttl(key) <= first_pttl


def test_counter_without_ttl_heals(client: RedisClient, prefix: str, admin: redis_py.Redis) -> None:
    key = prefix + "rate"
    admin.set(key, "50")  # restored from a backup, say: no TTL, over the limit
    decision = hit_rate_limit(client, key=key, limit=10, window_s=20)
    assert decision == RateDecision(False, 20)
    assert_ttl(admin, key, 20)


# ------------------------------------------------------------------ take_budget


def test_budget_grants_the_limit_then_says_how_long_to_wait(
    client: RedisClient, prefix: str, admin: redis_py.Redis
) -> None:
    key = prefix + "budget"
    assert [take_budget(client, key=key, limit=3, window_ms=800) for _ in range(3)] == [0, 0, 0]
    wait_ms = take_budget(client, key=key, limit=3, window_ms=800)
    assert 0 < wait_ms <= 800
    assert admin.zcard(key) == 3  # a refusal takes nothing
    assert_ttl(admin, key, 0.8)
    time.sleep(wait_ms / 1000 + 0.02)
    assert take_budget(client, key=key, limit=3, window_ms=800) == 0


def test_budget_is_one_round_trip(client: RedisClient, prefix: str) -> None:
    counting = CountingRedis(client)
    take_budget(counting, key=prefix + "budget", limit=5, window_ms=1000)
    assert counting.calls == {"eval": 1}


Grant = tuple[float, float]  # (asked at, answered at) on this process's monotonic clock


def most_in_any_window(grants: Sequence[Grant], window_s: float) -> int:
    """A lower bound on the most grants the server made inside one window.

    Each grant happened at some server instant between its ask and its answer. If a
    set of grants all asked at or after `a` and were answered before `a + window`,
    they certainly happened inside the window [a, a + window): a correct limiter can
    never have made more than `limit` of them.
    """
    most = 0
    for start, _ in grants:
        inside = sum(1 for s, e in grants if s >= start and e < start + window_s)
        most = max(most, inside)
    return most


def run_instances(
    clients: Sequence[RedisClient],
    threads_each: int,
    duration_s: float,
    take: object,
) -> list[Grant]:
    """`threads_each` threads per client call take(client) -> wait_ms until the
    deadline, sleeping as told; returns the grants (wait_ms == 0)."""
    assert callable(take)
    grants: list[Grant] = []
    lock = threading.Lock()
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(clients) * threads_each)
    deadline = 0.0

    def worker(client: RedisClient) -> None:
        nonlocal deadline
        if barrier.wait() == 0:
            deadline = time.monotonic() + duration_s
        barrier.wait()  # deadline is set before anyone reads it
        try:
            while (start := time.monotonic()) < deadline:
                wait_ms = take(client)
                end = time.monotonic()
                if wait_ms == 0:
                    with lock:
                        grants.append((start, end))
                else:
                    time.sleep(min(wait_ms / 1000, max(0.0, deadline - end)))
        except BaseException as exc:  # surfaced by the test, not lost in a thread
            failures.append(exc)

    threads = [
        threading.Thread(target=worker, args=(client,))
        for client in clients
        for _ in range(threads_each)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return grants


def test_budget_is_shared_by_instances_under_threads(
    clients: dict[str, RedisClient], prefix: str
) -> None:
    # 20 threads in each of two "function instances" (one per client kind) share a
    # 5-per-second budget for 2 s: HubSpot's search limit across all instances.
    key, limit, window_ms = prefix + "budget", 5, 1000

    def take(client: RedisClient) -> int:
        return take_budget(client, key=key, limit=limit, window_ms=window_ms)

    grants = run_instances(list(clients.values()), 20, 2.0, take)
    # Safety: never more than the limit in any window, and at most 3 windows' worth
    # in a run that spans [0, 2 s] plus one call's latency.
    assert most_in_any_window(grants, window_ms / 1000) <= limit
    assert len(grants) <= 3 * limit
    # Liveness: the window slides (the second second's calls were granted).
    assert len(grants) >= 2 * limit


def test_negative_control_a_check_then_act_budget_is_caught(
    clients: dict[str, RedisClient], prefix: str
) -> None:
    # The same measurement must catch a limiter that reads the count and then adds
    # in a second round trip: here every thread reads before any of them writes.
    key, limit, window_ms = prefix + "naive", 5, 1000
    count = Script("naive_count", "return redis.call('ZCARD', KEYS[1])")
    add = Script(
        "naive_add",
        "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) "
        "redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 0",
    )
    threads_each = 10
    between = threading.Barrier(2 * threads_each)
    first_call: set[int] = set()

    def take(client: RedisClient) -> int:
        seen = client.eval(count, [key], [])
        assert isinstance(seen, int)
        if threading.get_ident() not in first_call:
            first_call.add(threading.get_ident())
            between.wait()  # everyone has read; now everyone writes
        if seen >= limit:
            return window_ms
        client.eval(add, [key], [time.time_ns() // 1000, uuid.uuid4().hex, window_ms])
        return 0

    grants = run_instances(list(clients.values()), threads_each, 0.3, take)
    assert most_in_any_window(grants, window_ms / 1000) > limit


# ------------------------------------------------------------------ keys and values


def test_seats_key_is_the_canonical_uuid() -> None:
    exam = uuid.uuid4()
    assert seats_key(exam) == seats_key(str(exam).upper()) == f"mockexam:seats:{exam}"
    assert seats_key(exam.hex) == seats_key("{" + str(exam) + "}") == seats_key(str(exam))
    for not_an_id in ("42", f"{exam}\n", f"{exam} ", f"{exam}0"):
        with pytest.raises(ValueError):
            seats_key(not_an_id)  # a HubSpot id, or a UUID with anything after it


def test_booking_lock_key_normalises_like_the_database_and_hides_the_email() -> None:
    key = booking_lock_key(" ab12 ", " Student@Example.COM ")
    assert key == booking_lock_key("AB12", "student@example.com")
    assert key != booking_lock_key("AB12", "other@example.com")
    assert key != booking_lock_key("AB1", "2student@example.com")  # no run-together
    assert "example" not in key.lower() and "student" not in key.lower()
    assert key.startswith("mockexam:lock:booking:")


def test_rate_and_budget_keys() -> None:
    key = rate_key("login", "203.0.113.7")
    assert key.startswith("mockexam:rate:login:") and "203.0.113.7" not in key
    assert rate_key("login", "203.0.113.7") != rate_key("login", "203.0.113.8")
    assert budget_key("hubspot:search:12345") == "mockexam:budget:hubspot:search:12345"
    for bad in ("", "Login", "a b", "x" * 41):
        with pytest.raises(ValueError):
            rate_key(bad, "c")
    with pytest.raises(ValueError):
        rate_key("login", "")
    with pytest.raises(ValueError):
        budget_key("has space")


def test_seat_count_round_trip_and_validation() -> None:
    count = SeatCount(12, 3, 20)
    assert SeatCount.decode(count.encode()) == count
    assert count.available == 17
    assert SeatCount(1, 25, 20).available == 0
    # Stored copies carry a fourth field, the time Redis wrote them.
    assert SeatCount.decode("12:3:20:1795631033138") == count
    for raw in (None, "", "1:2", "a:b:c", "1:2:3:4:5", "1:2:3:x", "-1:2:3", "1:2:３"):
        assert SeatCount.decode(raw) is None
    for bad in ((-1, 0, 0), (0, True, 0), (0, 0, 1.5)):
        with pytest.raises(ValueError):
            SeatCount(*bad)


class _Wrong:
    """A Redis that answers every eval with `reply`: "Redis is wrong"."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    def eval(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Reply:
        return self.reply

    def mget(self, keys: Sequence[str]) -> list[str | None]:
        return []

    def get(self, key: str) -> str | None:
        return None

    def set(self, key: str, value: str, *, ex: int, nx: bool = False) -> bool:
        return True

    def delete(self, *keys: str) -> int:
        return 0

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.mark.parametrize("reply", [None, 1, "admitted", ["maybe", 0], ["admitted"], [1, 2]])
def test_a_wrong_admission_reply_is_unavailable_not_a_crash(reply: Reply) -> None:
    with pytest.raises(RedisUnavailable) as caught:
        admit_booking(
            _Wrong(reply),
            lock_key="l",
            token="t",
            lock_ttl_s=1,
            seats_key="s",
            rate_key="r",
            rate_limit=1,
            rate_window_s=1,
        )
    assert caught.value.kind == "reply"


@pytest.mark.parametrize("reply", [None, "0", -1, [0]])
def test_wrong_replies_elsewhere_are_unavailable(reply: Reply) -> None:
    wrong = _Wrong(reply)
    for call in (
        lambda: take_budget(wrong, key="b", limit=1, window_ms=1),
        lambda: hit_rate_limit(wrong, key="r", limit=1, window_s=1),
        lambda: write_seats(wrong, {"s": SeatCount(1, 1, 1)}, 1),
    ):
        with pytest.raises(RedisUnavailable):
            call()
    with pytest.raises(RedisUnavailable):
        read_seats(wrong, ["a"])  # MGET answered 0 values for 1 key
