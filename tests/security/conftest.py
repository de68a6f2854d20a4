"""The security suite runs against the same things as tests/api and tests/admin: the
real functions behind the local router on a threaded server in this process, real
PostgreSQL and Redis, every response checked against public/openapi.yaml (and every
error body against the log scan's rules, tests/security/logscan.py)."""

from tests.admin.conftest import admin, admin_settings, client_for, sync_tables
from tests.api.conftest import api, api_server

__all__ = ["admin", "admin_settings", "api", "api_server", "client_for", "sync_tables"]
