"""The local stack booted from nothing: embedded PostgreSQL and Redis, migrations, demo
data. Servers run in a fresh temporary directory on free ports (never the defaults of
`./run dev` or of the suite's own servers), throwaway (no fsync), and are stopped at
the end."""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, LiteralString
from zoneinfo import ZoneInfo

import psycopg
import pytest
import redis
from psycopg.rows import dict_row

from lib import migrations
from local import stack
from local.seed import CREDIT_KINDS, DEMO_CREDITS, DEMO_EMAIL, DEMO_STUDENT_ID, seed

# Ports other stacks on this machine use: ./run dev, the suite's servers, the system ones.
TAKEN_PORTS = frozenset({5432, 6379, 15432, 16379, 15433, 16380})
TORONTO = ZoneInfo("America/Toronto")
MOCK_TYPES = {"Situational Judgment", "Clinical Skills", "Mini-mock", "Mock Discussion"}
LEGACY_CODE = re.compile(
    r"^(Situational Judgment|Clinical Skills|Mini-mock|Mock Discussion)-[A-Z0-9]+-"
    r"(January|February|March|April|May|June|July|August|September|October|November|December)"
    r" \d{1,2}, \d{4}$"
)
# A cold boot here takes about a second; this bound only catches a boot gone wrong
# (a wait running into its timeout) without failing on a slow CI machine.
BOOT_BUDGET_S = 30.0


def _free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind((stack.HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in TAKEN_PORTS:
            return port


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A new directory of our own. Not pytest's tmp_path: under root PostgreSQL runs as
    another user, and any pytest session starting meanwhile re-tightens
    /tmp/pytest-of-root to 0700, which would hide the data directory from it."""
    path = Path(tempfile.mkdtemp(prefix="local-stack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _postgres_gone(url: str, data_dir: Path) -> bool:
    if stack.postgres_port(data_dir) is not None:
        return False
    try:
        # Refused at once when nothing listens; the timeout bounds a wedged port.
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def _redis_gone(url: str, data_dir: Path) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)  # as in _postgres_gone
    try:
        client.ping()
    except redis.ConnectionError:
        return stack.redis_port(data_dir) is None
    finally:
        client.close()
    return False


def _redis_run_id(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["run_id"])
    finally:
        client.close()


def _postmaster_started(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        row = conn.execute("select pg_postmaster_start_time()").fetchone()
    assert row is not None
    started: datetime = row[0]
    return started


# ---------------------------------------------------------------- lifecycle


def test_boot_reuse_fail_loudly_and_stop(scratch: Path) -> None:
    pg_dir, redis_dir = scratch / "postgres", scratch / "redis"
    pg_port, redis_port = _free_port(), _free_port()
    try:
        began = time.monotonic()
        pg_url = stack.ensure_postgres(pg_dir, pg_port, durable=False)
        redis_url = stack.ensure_redis(redis_dir, redis_port)
        assert time.monotonic() - began < BOOT_BUDGET_S
        assert pg_url == f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
        assert redis_url == f"redis://127.0.0.1:{redis_port}/0"
        assert stack.postgres_port(pg_dir) == pg_port
        assert stack.redis_port(redis_dir) == redis_port

        # Already running: the same servers, not new ones.
        started, run_id = _postmaster_started(pg_url), _redis_run_id(redis_url)
        assert stack.ensure_postgres(pg_dir, pg_port) == pg_url
        assert stack.ensure_redis(redis_dir, redis_port) == redis_url
        assert _postmaster_started(pg_url) == started
        assert _redis_run_id(redis_url) == run_id
        with pytest.raises(stack.StackError, match=f"already runs on port {pg_port}"):
            stack.ensure_postgres(pg_dir, _free_port())
        with pytest.raises(stack.StackError, match=f"already runs on port {redis_port}"):
            stack.ensure_redis(redis_dir, _free_port())

        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("create table kept (v text)")
            conn.execute("insert into kept values ('across restarts')")
        client = redis.Redis.from_url(redis_url)
        client.set("kept", "across restarts", ex=600)
        client.close()

        stack.stop_postgres(pg_dir)
        stack.stop_redis(redis_dir)
        assert _postgres_gone(pg_url, pg_dir)
        assert _redis_gone(redis_url, redis_dir)
        stack.stop_postgres(pg_dir)  # stopping what is stopped is a no-op
        stack.stop_redis(redis_dir)

        # Started again on the same directories: the data is still there (no initdb).
        stack.ensure_postgres(pg_dir, pg_port, durable=False)
        stack.ensure_redis(redis_dir, redis_port)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("select v from kept").fetchall() == [("across restarts",)]
        client = redis.Redis.from_url(redis_url)
        assert client.get("kept") == b"across restarts"
        client.close()

        # A server that cannot start says why, with its log.
        stack.stop_postgres(pg_dir)
        auto_conf = pg_dir / "pgdata" / "postgresql.auto.conf"
        good_conf = auto_conf.read_text()
        auto_conf.write_text(good_conf + "this is not a setting\n")
        with pytest.raises(stack.StackError, match=r"(?s)postgres\.log.*syntax error"):
            stack.ensure_postgres(pg_dir, pg_port, durable=False)
        auto_conf.write_text(good_conf)
        assert stack.ensure_postgres(pg_dir, pg_port, durable=False) == pg_url
    finally:
        stack.stop_postgres(pg_dir)
        stack.stop_redis(redis_dir)
    assert _postgres_gone(pg_url, pg_dir)
    assert _redis_gone(redis_url, redis_dir)


def test_a_taken_port_is_refused_at_once(scratch: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind((stack.HOST, 0))
        squatter.listen()
        port = int(squatter.getsockname()[1])
        began = time.monotonic()
        with pytest.raises(stack.StackError, match=f"port {port} .* taken"):
            stack.ensure_redis(scratch / "redis", port)
        with pytest.raises(stack.StackError, match=f"port {port} .* taken"):
            stack.ensure_postgres(scratch / "postgres", port)
        assert time.monotonic() - began < 5  # no waiting for a server that cannot bind
    assert stack.redis_port(scratch / "redis") is None
    assert stack.postgres_port(scratch / "postgres") is None


def test_a_server_that_cannot_listen_fails_fast_with_its_log(scratch: Path) -> None:
    # The port looks free (nothing listens) but is the local end of a client's
    # connection, as any port in the ephemeral range can be: the server itself must
    # fail, and the error must show its log rather than a bare timeout.
    with socket.socket() as listener, socket.socket() as client:
        listener.bind((stack.HOST, 0))
        listener.listen()
        client.bind((stack.HOST, 0))
        client.connect(listener.getsockname())
        port = int(client.getsockname()[1])
        began = time.monotonic()
        with pytest.raises(stack.StackError, match=r"(?s)redis\.log.*Address already in use"):
            stack.ensure_redis(scratch / "redis", port)
        with pytest.raises(stack.StackError, match=r"(?s)postgres\.log.*Address already in use"):
            stack.ensure_postgres(scratch / "postgres", port, durable=False)
        assert time.monotonic() - began < 15  # well before the start timeouts
    assert stack.redis_port(scratch / "redis") is None
    assert stack.postgres_port(scratch / "postgres") is None


# ---------------------------------------------------------------- migrated and seeded


@dataclass(frozen=True)
class Seeded:
    pg_url: str
    redis_url: str
    counts: dict[str, int]


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    """One stack for this module, booted from scratch, migrated and seeded."""
    root = Path(tempfile.mkdtemp(prefix="local-stack-test-"))  # see `scratch`
    pg_dir, redis_dir = root / "postgres", root / "redis"
    try:
        pg_url = stack.ensure_postgres(pg_dir, _free_port(), durable=False)
        redis_url = stack.ensure_redis(redis_dir, _free_port(), durable=False)
        migrations.up(pg_url)
        yield Seeded(pg_url, redis_url, seed(pg_url))
    finally:
        stack.stop_postgres(pg_dir)
        stack.stop_redis(redis_dir)
        shutil.rmtree(root, ignore_errors=True)


def _rows(url: str, query: LiteralString, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def test_demo_student_holds_five_of_each_credit(seeded: Seeded) -> None:
    [row] = _rows(
        seeded.pg_url,
        "select hubspot_sync.contact_credits(p_student_id => %s, p_email => %s) as r",
        DEMO_STUDENT_ID.lower(),  # as a student types it
        DEMO_EMAIL.upper(),
    )
    assert row["r"]["ok"] is True
    assert row["r"]["contact"]["credits"] == dict.fromkeys(CREDIT_KINDS, DEMO_CREDITS)


def test_seat_counts_equal_seat_holding_bookings(seeded: Seeded) -> None:
    exams = _rows(
        seeded.pg_url,
        """
        select e.mock_exam_name, e.capacity, (hubspot_sync._seat_state(e)).booked as total_bookings,
               count(b.id) filter (where b.is_active = 'Active') as held
          from hubspot_sync.hubspot_mock_exams e
          left join hubspot_sync.hubspot_bookings b on b.associated_mock_exam = e.hubspot_id
         group by e.id
        """,
    )
    assert len(exams) == seeded.counts["mock_exams"] > 0
    assert [e for e in exams if e["total_bookings"] != e["held"]] == []
    assert [e for e in exams if e["total_bookings"] > e["capacity"]] == []


def test_upcoming_exams_of_every_type_and_state(seeded: Seeded) -> None:
    now = datetime.now(UTC)
    exams = _rows(
        seeded.pg_url,
        "select *, hubspot_sync.text_time(start_time) as start_time,"
        " hubspot_sync.text_time(end_time) as end_time,"
        " (hubspot_sync._seat_state(e)).booked as live_booked from hubspot_sync.hubspot_mock_exams e"
        " where hubspot_sync.text_time(start_time) > now()"
        " order by hubspot_sync.text_time(start_time)",
    )
    open_ = [e for e in exams if e["is_active"] == "true"]
    assert {e["mock_type"] for e in open_} == MOCK_TYPES
    assert {e["is_active"] for e in exams} == {"true", "false", "scheduled"}
    assert all(e["start_time"] < now + timedelta(weeks=7) for e in exams)
    assert all(e["exam_date"] == e["start_time"].astimezone(TORONTO).date() for e in exams)
    assert all(e["end_time"] > e["start_time"] for e in exams)
    assert all(e["hubspot_id"] and e["hubspot_id"].isdigit() for e in exams)
    seats_left = [e["capacity"] - e["live_booked"] for e in open_]
    assert 0 in seats_left  # full
    assert any(1 <= left <= 3 for left in seats_left)  # "limited"
    assert any(left > 3 for left in seats_left)
    scheduled = [e for e in exams if e["is_active"] == "scheduled"]
    assert all(now < e["scheduled_activation_datetime"] < e["start_time"] for e in scheduled)

    past_ids = {
        r["hubspot_id"]
        for r in _rows(
            seeded.pg_url,
            "select hubspot_id from hubspot_sync.hubspot_mock_exams"
            " where hubspot_sync.text_time(start_time) < now()",
        )
    }
    prerequisites = [e["prerequisite_exam_ids"] for e in exams if e["prerequisite_exam_ids"]]
    assert prerequisites
    assert all(set(p) <= past_ids for p in prerequisites)


def test_students_some_only_in_postgres(seeded: Seeded) -> None:
    contacts = _rows(
        seeded.pg_url,
        "select student_id, email, hubspot_id from hubspot_sync.hubspot_contact_credits",
    )
    assert len(contacts) == seeded.counts["contacts"] >= 300
    without = [c for c in contacts if c["hubspot_id"] is None]
    assert 0 < len(without) < len(contacts) / 2
    assert len(without) == seeded.counts["contacts_without_hubspot_id"]
    assert all(re.fullmatch(r"[A-Z0-9]+", c["student_id"]) for c in contacts)
    assert all(c["email"] == c["email"].lower() for c in contacts)


def test_past_bookings_attended_missed_cancelled_and_legacy(seeded: Seeded) -> None:
    past = _rows(
        seeded.pg_url,
        "select * from hubspot_sync.hubspot_bookings"
        " where hubspot_sync.text_time(start_time) < now()",
    )
    assert len(past) == seeded.counts["past_bookings"]
    states = {(b["is_active"], b["attendance"]) for b in past}
    assert {("Completed", "Yes"), ("Completed", "No"), ("Cancelled", None)} <= states
    legacy = [b for b in past if not b["booking_id"].startswith("BK-")]
    assert legacy
    assert all(LEGACY_CODE.match(b["booking_id"]) for b in legacy)
    codes = [b["booking_id"] for b in legacy]
    assert len(set(codes)) < len(codes)  # a rebooked exam repeats its legacy code


def test_upcoming_bookings_were_made_by_book(seeded: Seeded) -> None:
    upcoming = _rows(
        seeded.pg_url,
        """
        select b.booking_id, b.hubspot_id, b.is_active,
               (select a.performed_by from hubspot_sync.supabase_audit_log a
                 where a.record_id = b.id and a.operation = 'INSERT') as created_by
          from hubspot_sync.hubspot_bookings b
         where hubspot_sync.text_time(b.start_time) > now()
        """,
    )
    assert len(upcoming) == seeded.counts["upcoming_bookings"] > 0
    assert all(re.fullmatch(r"BK-\d{8}-[2-9A-Z]{6}", b["booking_id"]) for b in upcoming)
    assert all(b["is_active"] == "Active" and b["hubspot_id"] is None for b in upcoming)
    assert all(b["created_by"].startswith("student:") for b in upcoming)


def test_book_spends_one_credit_of_the_demo_student(seeded: Seeded) -> None:
    # In a transaction rolled back at the end, so that the other tests see DEMO001
    # as seeded whatever the order they run in.
    with (
        psycopg.connect(seeded.pg_url, row_factory=dict_row) as conn,
        conn.transaction(force_rollback=True),
    ):
        exam = conn.execute(
            "select id, capacity, total_bookings_live from ("
            " select e.*, (hubspot_sync._seat_state(e)).booked as total_bookings_live"
            " from hubspot_sync.hubspot_mock_exams e) e"
            " where mock_type = 'Situational Judgment' and is_active = 'true'"
            "   and hubspot_sync.text_time(start_time) > now() and total_bookings_live < capacity"
            " order by hubspot_sync.text_time(start_time) limit 1"
        ).fetchone()
        assert exam is not None
        row = conn.execute(
            "select hubspot_sync.book(p_student_id => %s, p_email => %s, p_exam_id => %s,"
            " p_attending_location => %s, p_dominant_hand => %s,"
            " p_idempotency_key => %s) as r",
            (DEMO_STUDENT_ID, DEMO_EMAIL, str(exam["id"]), "mississauga", None, "test-once"),
        ).fetchone()
        assert row is not None
        result = row["r"]
        assert result["ok"] is True, result
        assert result["credits"] == {
            **dict.fromkeys(CREDIT_KINDS, DEMO_CREDITS),
            "sj_credits": DEMO_CREDITS - 1,
        }
        assert result["booking"]["token_used"] == "Situational Judgment Token"
        assert result["seats"]["booked"] == exam["total_bookings_live"] + 1


def test_seeding_again_changes_nothing(seeded: Seeded) -> None:
    snapshot = """
        select (select md5(string_agg(t::text, '|' order by t.id))
                  from hubspot_sync.hubspot_contact_credits t) as contacts,
               (select md5(string_agg(t::text, '|' order by t.id))
                  from hubspot_sync.hubspot_mock_exams t) as exams,
               (select md5(string_agg(t::text, '|' order by t.id))
                  from hubspot_sync.hubspot_bookings t) as bookings,
               (select count(*) from hubspot_sync.supabase_audit_log) as audit_rows
    """
    before = _rows(seeded.pg_url, snapshot)
    assert set(seed(seeded.pg_url).values()) == {0}
    assert _rows(seeded.pg_url, snapshot) == before


def test_seed_is_reproducible(seeded: Seeded) -> None:
    """A second database seeded from scratch holds the same students, exams and
    balances (only what book() draws itself, codes and UUIDs, may differ)."""
    name = "reproducible"
    with psycopg.connect(seeded.pg_url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    other = psycopg.conninfo.make_conninfo(seeded.pg_url, dbname=name)
    try:
        migrations.up(other)
        seed(other)
        fingerprint = """
            select (select md5(string_agg(concat_ws(',', student_id, email, hubspot_id,
                                      sj_credits, cs_credits, sjmini_credits,
                                      mock_discussion_token, shared_mock_credits), '|'
                                      order by student_id))
                      from hubspot_sync.hubspot_contact_credits) as contacts,
                   (select md5(string_agg(concat_ws(',', hubspot_id, mock_type, start_time,
                                      capacity, total_bookings, is_active,
                                      prerequisite_exam_ids), '|' order by hubspot_id))
                      from hubspot_sync.hubspot_mock_exams) as exams
        """
        assert _rows(other, fingerprint) == _rows(seeded.pg_url, fingerprint)
    finally:
        with psycopg.connect(seeded.pg_url, autocommit=True) as conn:
            conn.execute(f"drop database {name} with (force)")


def test_redis_answers(seeded: Seeded) -> None:
    client = redis.Redis.from_url(seeded.redis_url)
    try:
        assert client.ping() is True
        assert client.set("local-stack-test", "ok", ex=60)  # every key has a TTL
        assert client.get("local-stack-test") == b"ok"
        assert 0 < client.ttl("local-stack-test") <= 60
    finally:
        client.close()
