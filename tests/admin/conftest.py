"""Fixtures for the admin API: the API server of tests/api (real functions, real
PostgreSQL and Redis, every response checked against public/openapi.yaml), signed-in
admins with tokens minted like Supabase's, and the sync's tables emptied per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from lib import admin_auth, config
from local.admin_token import new_secret, sign
from tests.api.conftest import Api, api_server
from tests.helpers import Db

__all__ = ["AdminApi", "api_server"]

# The project's JWT secret for this session's API server; OTHER_SECRET signs tokens
# that must be refused.
SECRET = new_secret()
OTHER_SECRET = new_secret()
ADMIN_EMAIL = "ops.lead@school.example"
SYNC_TABLES = (
    "hubspot_sync.sync_runs",
    "hubspot_sync.sync_run_errors",
    "hubspot_sync.sync_lease",
    "hubspot_sync.sync_state",
    "hubspot_sync.sync_contact_credits",
    "hubspot_sync.sync_exam_seats",
    "hubspot_sync.exam_seat_shards",
)


class AdminApi(Api):
    """An Api client that sends an access token (or none: token=None)."""

    def __init__(self, base: str, token: str | None) -> None:
        super().__init__(base)
        self.token = token

    def call(
        self, method: str, path: str, *, check: bool = True, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return super().call(method, path, check=check, headers=headers, **kwargs)


@pytest.fixture
def admin_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The API server verifies HS256 tokens with SECRET during this test."""
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)
    for name in ("SUPABASE_URL", "SUPABASE_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    config.settings.cache_clear()
    admin_auth.use_jwks(None)
    yield
    config.settings.cache_clear()


@pytest.fixture
def sync_tables(db: Db) -> Db:
    """The database emptied, the sync's own tables too."""
    db.conn.execute(f"truncate {', '.join(SYNC_TABLES)} restart identity")
    return db


@pytest.fixture
def client_for(api_server: str, sync_tables: Db, admin_settings: None) -> Iterator[Any]:
    """Factory: a client sending the given token (None: no Authorization header)."""
    made: list[AdminApi] = []

    def make(token: str | None) -> AdminApi:
        client = AdminApi(api_server, token)
        made.append(client)
        return client

    yield make
    for client in made:
        client.session.close()


@pytest.fixture
def admin(client_for: Any) -> AdminApi:
    """A signed-in admin."""
    client: AdminApi = client_for(sign(SECRET, email=ADMIN_EMAIL))
    return client


def admin_token(**claims: Any) -> str:
    return sign(SECRET, **claims)
