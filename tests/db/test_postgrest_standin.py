"""The PostgREST stand-in itself, over raw HTTP: the parts of PostgREST's documented
behaviour that lib.db.SupabaseBackend relies on (status codes, error bodies, auth,
schemas, transactions), so a green test_supabase_backend.py means something.

Error mapping is driven through a probe database of its own (a `hubspot_sync` schema
holding only probe functions), so nothing here touches the session's real schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jwt
import psycopg
import pytest
import requests

from lib.db import SupabaseBackend
from lib.errors import AppError, DatabaseBusy, DatabaseFailure
from local.standins.postgrest import StandIn, serve, status_for_sqlstate
from tests.db.conftest import JWT_SECRET, supabase_settings

HTTP_TIMEOUT_S = 10  # a stand-in that does not answer within this is broken

PROBE_SQL = """
create schema hubspot_sync;
create sequence hubspot_sync.probe_seq;

-- Raises the SQLSTATE it is given, with every error field filled in.
create function hubspot_sync.fail(p_sqlstate text) returns jsonb
language plpgsql volatile as $$
begin
  raise exception using errcode = p_sqlstate, message = 'probe failure ' || p_sqlstate,
                        detail = 'probe detail', hint = 'probe hint';
end
$$;

-- Shows what arrived and under which role, claims and access mode.
create function hubspot_sync.echo(
  p_text text, p_flag boolean default null, p_n integer default null, p_doc jsonb default null
) returns jsonb language sql stable as $$
  select jsonb_build_object(
    'text', p_text, 'flag', p_flag, 'n', p_n, 'doc', p_doc,
    'role', current_user,
    'claims', current_setting('request.jwt.claims', true)::jsonb,
    'read_only', current_setting('transaction_read_only'))
$$;

-- Declared STABLE but writes: PostgREST's READ ONLY transaction must stop it.
create function hubspot_sync.stable_but_writes() returns jsonb
language plpgsql stable as $$
begin
  return jsonb_build_object('n', nextval('hubspot_sync.probe_seq'));
end
$$;

create function hubspot_sync.series(p_n integer) returns setof integer
language sql immutable as $$ select generate_series(1, p_n) $$;

create schema other;

revoke all on schema hubspot_sync from public;
revoke all on all functions in schema hubspot_sync from public;
grant usage on schema hubspot_sync to service_role;
grant execute on all functions in schema hubspot_sync to service_role;
grant usage on sequence hubspot_sync.probe_seq to service_role;
"""


@pytest.fixture(scope="module")
def probe(new_database: Callable[[], str]) -> Iterator[StandIn]:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PROBE_SQL)
    with serve(url, JWT_SECRET, schemas=("hubspot_sync", "other")) as running:
        yield running


def _post(
    standin: StandIn,
    function: str,
    body: Any,
    key: str | None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    sent = dict(headers or {})
    if key is not None:
        sent.setdefault("apikey", key)
        sent.setdefault("Authorization", f"Bearer {key}")
    return requests.post(
        f"{standin.url}/rest/v1/rpc/{function}", json=body, headers=sent, timeout=HTTP_TIMEOUT_S
    )


def _assert_error_body(response: requests.Response, code: str) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert set(body) == {"code", "details", "hint", "message"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


# ------------------------------------------------------------------ SQLSTATE -> HTTP


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [
        ("P0001", 400),  # plain RAISE EXCEPTION
        ("22023", 400),  # any other: 400
        ("23505", 409),
        ("23503", 409),
        ("40001", 500),
        ("40P01", 500),
        ("55P03", 500),  # lock_timeout
        ("57014", 500),  # statement_timeout
        ("53300", 503),
        ("53400", 500),
        ("08006", 503),
        ("XX000", 500),
        ("42501", 403),  # the service-role JWT carries a role: "authenticated"
        ("PT402", 402),
        ("PT999", 500),  # not an HTTP status
    ],
)
def test_sqlstate_maps_to_postgrest_status_with_full_error_body(
    probe: StandIn, service_key: str, sqlstate: str, status: int
) -> None:
    response = _post(probe, "fail", {"p_sqlstate": sqlstate}, service_key)

    assert response.status_code == status
    assert _assert_error_body(response, sqlstate) == {
        "code": sqlstate,
        "details": "probe detail",
        "hint": "probe hint",
        "message": f"probe failure {sqlstate}",
    }


def test_insufficient_privilege_without_role_claim_is_401(probe: StandIn) -> None:
    """A valid JWT without a role claim runs as the anonymous role and is not
    "authenticated": PostgREST answers 42501 with 401, not 403."""
    roleless = jwt.encode({"iss": "supabase"}, JWT_SECRET, algorithm="HS256")

    response = _post(probe, "echo", {"p_text": "x"}, roleless)

    assert response.status_code == 401
    _assert_error_body(response, "42501")
    assert status_for_sqlstate("42501", authed=False) == 401
    assert status_for_sqlstate("42501", authed=True) == 403


# ------------------------------------------------------------------ transactions


def test_arguments_role_claims_and_read_only_mode(probe: StandIn, service_key: str) -> None:
    response = _post(
        probe,
        "echo",
        {"p_text": "O'Brien; drop table x", "p_flag": False, "p_n": 7, "p_doc": {"a": [1, None]}},
        service_key,
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Content-Profile"] == "hubspot_sync"
    body = response.json()
    assert body["text"] == "O'Brien; drop table x"
    assert body["flag"] is False and body["n"] == 7 and body["doc"] == {"a": [1, None]}
    assert body["role"] == "service_role"  # impersonated, not the connection's user
    assert body["claims"]["role"] == "service_role"
    assert body["read_only"] == "on"  # STABLE function called with POST: READ ONLY


def test_defaults_apply_to_arguments_left_out(probe: StandIn, service_key: str) -> None:
    body = _post(probe, "echo", {"p_text": "only"}, service_key).json()
    assert body["flag"] is None and body["n"] is None and body["doc"] is None


def test_stable_function_cannot_write(probe: StandIn, service_key: str) -> None:
    response = _post(probe, "stable_but_writes", {}, service_key)
    assert response.status_code == 405
    _assert_error_body(response, "25006")  # read_only_sql_transaction


def test_set_returning_function_answers_an_array(probe: StandIn, service_key: str) -> None:
    response = _post(probe, "series", {"p_n": 3}, service_key)
    assert response.status_code == 200
    assert response.json() == [1, 2, 3]


def test_wrong_argument_type_is_400(probe: StandIn, service_key: str) -> None:
    response = _post(probe, "echo", {"p_text": "x", "p_n": "seven"}, service_key)
    assert response.status_code == 400
    _assert_error_body(response, "22P02")  # invalid_text_representation


# ------------------------------------------------------------------ auth, schemas, routes


def test_missing_credentials_are_401(standin: StandIn) -> None:
    response = _post(standin, "book", {}, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _assert_error_body(response, "PGRST302")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        jwt.encode({"role": "service_role"}, "x" * 40, algorithm="HS256"),  # other secret
        jwt.encode({"role": "service_role", "exp": 1}, JWT_SECRET, algorithm="HS256"),  # expired
    ],
)
def test_invalid_jwt_is_401(standin: StandIn, token: str) -> None:
    response = _post(standin, "contact_credits", {"p_student_id": "S1", "p_email": "a@b.co"}, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    _assert_error_body(response, "PGRST301")


def test_bad_bearer_is_refused_even_with_a_good_apikey(standin: StandIn, service_key: str) -> None:
    response = _post(
        standin, "contact_credits", {}, service_key, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    _assert_error_body(response, "PGRST301")


def test_unexposed_schema_is_406(standin: StandIn, service_key: str) -> None:
    response = _post(standin, "book", {}, service_key, headers={"Content-Profile": "public"})
    assert response.status_code == 406
    body = _assert_error_body(response, "PGRST106")
    assert "hubspot_sync" in body["message"]


def test_no_profile_selects_the_first_exposed_schema(probe: StandIn, service_key: str) -> None:
    response = _post(probe, "series", {"p_n": 1}, service_key)
    assert response.status_code == 200
    assert response.headers["Content-Profile"] == "hubspot_sync"


def test_second_exposed_schema_is_selectable(probe: StandIn, service_key: str) -> None:
    response = _post(
        probe, "fail", {"p_sqlstate": "P0001"}, service_key, {"Content-Profile": "other"}
    )
    assert response.status_code == 404  # schema accepted; no such function in it
    body = _assert_error_body(response, "PGRST202")
    assert "other.fail" in body["message"]


def test_unknown_function_is_404_pgrst202(standin: StandIn, service_key: str) -> None:
    response = _post(standin, "drop_everything", {"p_a": 1}, service_key)
    assert response.status_code == 404
    _assert_error_body(response, "PGRST202")


def test_non_identifier_names_never_reach_sql(standin: StandIn, service_key: str) -> None:
    bad_function = _post(standin, 'book"; select 1; --', {}, service_key)
    bad_argument = _post(standin, "contact_credits", {'p_id" => 1); --': "x"}, service_key)
    for response in (bad_function, bad_argument):
        assert response.status_code == 404
        _assert_error_body(response, "PGRST202")


def test_invalid_json_body_is_400(standin: StandIn, service_key: str) -> None:
    response = requests.post(
        f"{standin.url}/rest/v1/rpc/book",
        data=b"{not json",
        headers={"apikey": service_key, "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == 400
    _assert_error_body(response, "PGRST102")


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_other_methods_are_405(standin: StandIn, service_key: str, method: str) -> None:
    response = requests.request(
        method,
        f"{standin.url}/rest/v1/rpc/contact_credits",
        headers={"apikey": service_key},
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == 405
    assert response.json()["code"] in ("PGRST117", "PGRST101")


# ------------------------------------------------------------------ what the backend makes of it


@pytest.mark.parametrize(
    ("sqlstate", "error", "requests_made"),
    [
        ("40001", DatabaseBusy, 3),  # serialization failure: retried, then busy
        ("40P01", DatabaseBusy, 3),  # deadlock: retried, then busy
        ("55P03", DatabaseBusy, 1),  # lock timeout: already waited, not retried
        ("57014", DatabaseBusy, 1),  # statement timeout
        ("P0001", DatabaseFailure, 1),  # a RAISE is a bug
        ("23505", DatabaseFailure, 1),
    ],
)
def test_backend_error_types_and_retries(
    probe: StandIn,
    service_key: str,
    sqlstate: str,
    error: type[AppError],
    requests_made: int,
) -> None:
    backend = SupabaseBackend(supabase_settings(probe.url, service_key))
    calls = len(probe.calls)
    try:
        with pytest.raises(error) as raised:
            backend.call("fail", {"p_sqlstate": sqlstate})
    finally:
        backend.close()

    assert type(raised.value) is error
    if isinstance(raised.value, DatabaseFailure):
        assert raised.value.sqlstate == sqlstate
    assert len(probe.calls) - calls == requests_made
