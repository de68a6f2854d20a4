"""A call whose commit happened but whose answer was lost (the connection cut between
the two) is retried by lib/db.py only when it is repeat-safe, and then its change
happens once: for each write the application and the sync make.

A TCP proxy in front of PostgreSQL passes the request, lets the server carry it out,
and cuts the connection when the answer arrives (tests/faults.py). The retry on a new
connection must find the first attempt's work and answer it again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from lib import db as lib_db
from lib.config import Settings
from lib.db import REPEAT_SAFE, PsycopgBackend
from lib.errors import DatabaseUnavailable
from tests.faults import Proxy
from tests.helpers import Db

# Callable by the service role, but never called by this system: the replaced system's
# own prerequisite functions, kept as they were (issue 13).
NOT_CALLED = frozenset({"set_exam_prerequisites", "update_exam_prerequisites"})


@pytest.fixture
def lossy(database_url: str) -> Iterator[tuple[Proxy, PsycopgBackend]]:
    """lib.db's backend reaching the database through a proxy that can lose an answer."""
    target = psycopg.conninfo.conninfo_to_dict(database_url)
    proxy = Proxy(str(target.get("host") or "127.0.0.1"), int(target.get("port") or 5432))
    url = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=proxy.port)
    backend = PsycopgBackend(
        Settings(
            database_url=url,
            supabase_url=None,
            supabase_service_role_key=None,
            redis_url=None,
            upstash_redis_rest_url=None,
            upstash_redis_rest_token=None,
            db_pool_max_size=1,
            db_pool_timeout_s=5,
            db_statement_timeout_ms=5000,
        )
    )
    backend.warm_up()  # the pool's connection made before any answer is lost
    previous = lib_db.use_backend(backend)
    try:
        yield proxy, backend
    finally:
        lib_db.use_backend(previous)
        backend.close()
        proxy.close()


def _lost(proxy: Proxy, name: str, **params: Any) -> dict[str, Any]:
    """Call `name` through lib.db with the first attempt's answer lost."""
    lost_before = proxy.answers_lost
    proxy.lose_next_answer()
    answer = lib_db.rpc(name, params)
    assert proxy.answers_lost == lost_before + 1, "the answer was not lost"
    return answer


def test_every_callable_function_is_classified(db: Db) -> None:
    callable_names = {
        row["proname"]
        for row in db.all(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'hubspot_sync' and p.proname !~ '^_'"
            " and has_function_privilege('service_role', p.oid, 'execute')"
            # The RPC contract: a jsonb answer (triggers and helpers return other types).
            " and p.prorettype = 'jsonb'::regtype"
        )
    }

    assert callable_names - NOT_CALLED <= REPEAT_SAFE, "classify these in lib/db.py"
    assert "adjust_credits" in REPEAT_SAFE and "book" in REPEAT_SAFE


def test_an_adjustment_whose_answer_is_lost_is_applied_once(
    db: Db, lossy: tuple[Proxy, PsycopgBackend]
) -> None:
    proxy, _ = lossy
    contact = db.contact(sj_credits=1)

    answer = _lost(
        proxy,
        "adjust_credits",
        p_contact_id=str(contact["id"]),
        p_deltas={"sj_credits": 2},
        p_reason="goodwill",
        p_admin="admin@example.com",
        p_idempotency_key=f"adj-{uuid.uuid4()}",
    )

    assert answer["ok"] and answer["replayed"] is True  # the first attempt committed
    assert answer["applied"] == {"sj_credits": 2}
    assert db.credits(contact)["sj_credits"] == 3


def test_a_booking_whose_answer_is_lost_is_made_once(
    db: Db, lossy: tuple[Proxy, PsycopgBackend]
) -> None:
    proxy, _ = lossy
    contact = db.contact(cs_credits=2)
    exam = db.exam(mock_type="Clinical Skills")

    answer = _lost(
        proxy,
        "book",
        p_student_id=contact["student_id"],
        p_email=contact["email"],
        p_exam_id=str(exam["id"]),
        p_dominant_hand="right",
        p_idempotency_key=f"book-{uuid.uuid4()}",
    )

    assert answer["ok"] and answer["replayed"] is True
    assert db.count("hubspot_bookings") == 1
    assert db.credits(contact)["cs_credits"] == 1


def test_a_cancellation_whose_answer_is_lost_refunds_once(
    db: Db, lossy: tuple[Proxy, PsycopgBackend]
) -> None:
    proxy, _ = lossy
    contact = db.contact(cs_credits=2)
    booked = db.book(contact, db.exam(mock_type="Clinical Skills"))
    assert db.credits(contact)["cs_credits"] == 1

    answer = _lost(
        proxy,
        "cancel_booking",
        p_booking_ref=str(booked["booking"]["id"]),
        p_student_id=contact["student_id"],
        p_email=contact["email"],
    )

    assert answer["ok"] and answer["already_cancelled"] is True
    assert db.credits(contact)["cs_credits"] == 2


def test_a_first_login_store_whose_answer_is_lost_stores_one_row(
    db: Db, lossy: tuple[Proxy, PsycopgBackend]
) -> None:
    proxy, _ = lossy

    answer = _lost(
        proxy,
        "store_hubspot_contact",
        p_hubspot_id="31000777",
        p_student_id="LOST1",
        p_email="lost1@example.com",
        p_cs_credits=3,
    )

    assert answer["ok"]
    assert db.count("hubspot_contact_credits") == 1


def test_a_sync_report_whose_answer_is_lost_records_its_errors_once(
    db: Db, lossy: tuple[Proxy, PsycopgBackend]
) -> None:
    proxy, _ = lossy
    run_id = str(uuid.uuid4())
    begun = lib_db.rpc(
        "sync_begin",
        {"p_run_id": run_id, "p_mode": "delta", "p_trigger": "test", "p_lease_ttl_s": 60},
    )
    assert begun["ok"]
    errors = [{"phase": "bookings", "record_id": "b1", "category": "X", "message": "refused"}]

    _lost(
        proxy,
        "sync_progress",
        p_run_id=run_id,
        p_report=json.dumps({"phases": {}}),
        p_errors=json.dumps(errors),
    )

    rows = db.all("select * from hubspot_sync.sync_run_errors where run_id = %s", run_id)
    assert len(rows) == 1


def test_a_credit_merge_whose_answer_is_lost_adds_hubspots_change_once(
    db: Db, lossy: tuple[Proxy, PsycopgBackend]
) -> None:
    proxy, _ = lossy
    contact = db.contact(cs_credits=5)
    run_id = str(uuid.uuid4())
    lib_db.rpc(
        "sync_begin",
        {"p_run_id": run_id, "p_mode": "delta", "p_trigger": "test", "p_lease_ttl_s": 60},
    )
    [state] = db.all(
        "select (extract(epoch from base_at) * 1000)::bigint as ms"
        " from hubspot_sync.sync_contact_credits where contact_id = %s",
        contact["id"],
    )
    items = [
        {
            "contact_id": str(contact["id"]),
            "hubspot_id": contact["hubspot_id"],
            "values": [0, 7, 0, 0, 0],
            "seen_at": "2030-01-01T00:00:00.000Z",
            "base_at_ms": state["ms"],
            "changes": [0, 2, 0, 0, 0],
        }
    ]

    _lost(proxy, "sync_merge_credits", p_run_id=run_id, p_push_id="p1", p_items=json.dumps(items))

    assert db.credits(contact)["cs_credits"] == 7


# ------------------------------------------------------------------ negative controls


PROBE = """
create table if not exists hubspot_sync.probe_counter (n int not null);
create or replace function hubspot_sync.probe_count_up() returns jsonb language sql as $$
  insert into hubspot_sync.probe_counter values (1) returning jsonb_build_object('ok', true)
$$;
"""


@pytest.fixture
def counter(database_url: str) -> Iterator[Callable[[], int]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(PROBE)
        conn.execute("truncate hubspot_sync.probe_counter")

    def count() -> int:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute("select count(*) from hubspot_sync.probe_counter").fetchone()
            return int(row[0]) if row else 0

    yield count
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "drop function hubspot_sync.probe_count_up(); drop table hubspot_sync.probe_counter"
        )


def test_a_function_not_known_repeat_safe_is_not_retried(
    lossy: tuple[Proxy, PsycopgBackend], counter: Callable[[], int]
) -> None:
    proxy, _ = lossy
    proxy.lose_next_answer()

    with pytest.raises(DatabaseUnavailable):
        lib_db.rpc("probe_count_up", {})

    assert counter() == 1  # done once, and the caller told it is unknown


def test_the_lost_answer_would_apply_a_change_twice_if_retried(
    lossy: tuple[Proxy, PsycopgBackend], counter: Callable[[], int]
) -> None:
    # What the two tests above guard against: the same lost answer, retried anyway.
    proxy, backend = lossy
    proxy.lose_next_answer()

    assert backend.call("probe_count_up", {}, repeat_safe=True) == {"ok": True}

    assert counter() == 2
