"""Typed settings, read from the environment once per process.

Nothing here imports a heavy library: every function imports this at cold start.
A missing or malformed setting raises ConfigError naming the variable, at first use.
The README's "Configuration" table lists every variable read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _str(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _names(name: str) -> tuple[str, ...]:
    """A comma-separated list (empty items dropped); () when unset."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _url(name: str, default: str) -> str:
    value = _str(name) or default
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    supabase_url: str | None
    supabase_service_role_key: str | None
    redis_url: str | None
    upstash_redis_rest_url: str | None
    upstash_redis_rest_token: str | None
    # Connections per function instance. Vercel runs one request per instance at a
    # time for WSGI functions, but the threaded local server and the benchmarks share
    # one process across threads; Supavisor multiplexes these onto few server
    # connections, so a small per-instance pool is cheap.
    db_pool_max_size: int
    # How long a request waits for a free pooled connection before answering 503.
    # Under a rush a queue of a few seconds is better than a failure; beyond 5 s the
    # student has given up anyway.
    db_pool_timeout_s: int
    # Upper bound for any single database call (covers the 3 s lock_timeout inside
    # the booking functions plus the work itself).
    db_statement_timeout_ms: int
    # HubSpot. Defaults here (not only in settings()) so that code building Settings
    # by hand for one backend need not spell out HubSpot's.
    hubspot_access_token: str | None = None
    hubspot_base_url: str = "https://api.hubapi.com"
    # Custom object type ids are per portal; these are this customer's.
    hubspot_bookings_object: str = "2-50158943"
    hubspot_mock_exams_object: str = "2-50158913"
    # Calls per rolling 10 s for the private app (HubSpot Professional/Enterprise:
    # 190), shared by every function instance through Redis. Lower it to leave room
    # for other integrations using the same app.
    hubspot_rate_limit_per_10s: int = 190
    # CRM search calls per second, per account (HubSpot documents 5).
    hubspot_search_per_s: int = 5
    # Of those, what first-login look-ups may use; the rest is kept for the sync
    # (lib/hubspot/lookup.py). At most hubspot_search_per_s - 1.
    hubspot_lookup_search_per_s: int = 3
    # Association (v4) calls per rolling 10 s: HubSpot counts them in a budget of
    # their own, 150 per 10 s on Professional and Enterprise.
    hubspot_associations_per_10s: int = 150
    # The options of the portal's booking property attending_location (an enumeration:
    # HubSpot refuses any other value). The replaced system's six, unless set.
    hubspot_attending_locations: tuple[str, ...] = (
        "Mississauga",
        "Calgary",
        "Vancouver",
        "Montreal",
        "Richmond Hill",
        "Online",
    )
    # The portal's association types from a booking to its contact and to its mock exam
    # (USER_DEFINED, labelled; the school's reports and workflows read these): type ids
    # are per portal. The replaced system's: 1289 and 1291.
    hubspot_booking_contact_association: int = 1289
    hubspot_booking_exam_association: int = 1291
    # The id of the private app (or service key's app) whose token the sync uses, as
    # HubSpot's property history names it (sourceId of its INTEGRATION changes): the
    # credit merge tells its own pushes from purchases and edits by it. Shown in the
    # app's settings in HubSpot. None: the credit phase does not run.
    hubspot_app_id: str | None = None
    # Vercel's cron sends it as `Authorization: Bearer <secret>`; None: the cron
    # endpoint refuses every call.
    cron_secret: str | None = None
    # Seconds one sync run may work before it stops cleanly (the next run continues).
    # 240 leaves a minute of Vercel's 300 s maxDuration for the batch in flight
    # (normally 1-2 s, up to ~30 s when HubSpot is slow) and the run's last record.
    sync_time_budget_s: int = 240
    # A new booking's create whose answer was lost is made again only once HubSpot's
    # search (which lags creates by seconds) still shows nothing this long after it.
    sync_create_recovery_s: int = 300
    # Admin sign-in (lib/admin_auth.py): the project's JWT secret for HS256 tokens,
    # and where its asymmetric keys are published (default: SUPABASE_URL's JWKS).
    supabase_jwt_secret: str | None = None
    supabase_jwks_url: str | None = None

    @property
    def db_backend(self) -> str:
        """'psycopg' when DATABASE_URL is set, else 'supabase' when the Supabase URL
        and service-role key are; ConfigError otherwise."""
        if self.database_url:
            return "psycopg"
        if self.supabase_url and self.supabase_service_role_key:
            return "supabase"
        raise ConfigError(
            "set DATABASE_URL, or SUPABASE_URL together with SUPABASE_SERVICE_ROLE_KEY"
        )


@cache
def settings() -> Settings:
    return Settings(
        database_url=_str("DATABASE_URL"),
        supabase_url=_str("SUPABASE_URL"),
        supabase_service_role_key=_str("SUPABASE_SERVICE_ROLE_KEY"),
        redis_url=_str("REDIS_URL"),
        upstash_redis_rest_url=_str("UPSTASH_REDIS_REST_URL"),
        upstash_redis_rest_token=_str("UPSTASH_REDIS_REST_TOKEN"),
        db_pool_max_size=_int("DB_POOL_MAX_SIZE", 4, 1, 200),
        db_pool_timeout_s=_int("DB_POOL_TIMEOUT_S", 5, 1, 60),
        db_statement_timeout_ms=_int("DB_STATEMENT_TIMEOUT_MS", 8000, 100, 120_000),
        hubspot_access_token=_str("HUBSPOT_ACCESS_TOKEN"),
        hubspot_base_url=_url("HUBSPOT_BASE_URL", "https://api.hubapi.com"),
        hubspot_bookings_object=_str("HUBSPOT_BOOKINGS_OBJECT") or "2-50158943",
        hubspot_mock_exams_object=_str("HUBSPOT_MOCK_EXAMS_OBJECT") or "2-50158913",
        hubspot_rate_limit_per_10s=_int("HUBSPOT_RATE_LIMIT_PER_10S", 190, 1, 1000),
        hubspot_search_per_s=_int("HUBSPOT_SEARCH_PER_S", 5, 1, 50),
        hubspot_lookup_search_per_s=_int("HUBSPOT_LOOKUP_SEARCH_PER_S", 3, 1, 49),
        hubspot_associations_per_10s=_int("HUBSPOT_ASSOCIATIONS_PER_10S", 150, 1, 1000),
        hubspot_attending_locations=_names("HUBSPOT_ATTENDING_LOCATIONS")
        or Settings.hubspot_attending_locations,
        hubspot_booking_contact_association=_int(
            "HUBSPOT_BOOKING_CONTACT_ASSOCIATION", 1289, 1, 2_147_483_647
        ),
        hubspot_booking_exam_association=_int(
            "HUBSPOT_BOOKING_EXAM_ASSOCIATION", 1291, 1, 2_147_483_647
        ),
        hubspot_app_id=_str("HUBSPOT_APP_ID"),
        cron_secret=_str("CRON_SECRET"),
        sync_time_budget_s=_int("SYNC_TIME_BUDGET_S", 240, 5, 3600),
        sync_create_recovery_s=_int("SYNC_CREATE_RECOVERY_S", 300, 0, 86_400),
        supabase_jwt_secret=_str("SUPABASE_JWT_SECRET"),
        supabase_jwks_url=_str("SUPABASE_JWKS_URL"),
    )
