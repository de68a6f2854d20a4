"""Who may call /api/admin/: holders of a Supabase Auth access token with an admin role.

Supabase signs access tokens either with the project's shared JWT secret (HS256,
older projects) or with asymmetric keys published at the project's JWKS endpoint
(ES256/RS256, newer projects). Both are verified here, in the function: signature,
expiry (`exp`, with a small leeway), audience `authenticated`, and the issuer when
the project URL is known.

The role: the old system's custom access-token hook put `user_role` (and
`permissions`) in the token; Supabase's own `app_metadata` can carry it too. A token
is an admin's when `user_role` (top level, or in `app_metadata`) is `admin` or
`super_admin`. Everything else is 403. No token, a bad signature, an expired token
or a wrong audience is 401.

Locally, `./run dev` signs a development admin token with a secret it makes up for
that run (README, "Admin"); nothing here knows about it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lib.config import settings
from lib.errors import AppError

if TYPE_CHECKING:
    from jwt import PyJWKClient

    from lib.http import Request

ADMIN_ROLES = frozenset({"admin", "super_admin"})
AUDIENCE = "authenticated"
# Clocks of Supabase and Vercel differ by a little; 30 s of leeway accepts a token in
# its last seconds without keeping an expired one alive for long.
LEEWAY_S = 30
# JWKS keys are cached per process; Supabase rotates keys with overlap, so an hour
# between refreshes (and an immediate refresh on an unknown key id) is safe.
JWKS_CACHE_S = 3600
# Fetching the key set must not hang an admin request.
JWKS_TIMEOUT_S = 5
_ASYMMETRIC = ("ES256", "RS256", "EdDSA")

_jwks: PyJWKClient | None = None
_jwks_lock = threading.Lock()


@dataclass(frozen=True)
class Admin:
    user_id: str
    email: str | None
    role: str

    @property
    def actor(self) -> str:
        """How the audit log names this admin."""
        return self.email or self.user_id


def _jwks_client(url: str) -> PyJWKClient:
    global _jwks  # noqa: PLW0603 - one key cache per process
    with _jwks_lock:
        if _jwks is None or _jwks.uri != url:
            from jwt import PyJWKClient

            _jwks = PyJWKClient(
                url, cache_jwk_set=True, lifespan=JWKS_CACHE_S, timeout=JWKS_TIMEOUT_S
            )
        return _jwks


def _unauthorized(message: str) -> AppError:
    return AppError("UNAUTHORIZED", message)


def verify(token: str) -> dict[str, Any]:
    """The claims of a valid Supabase access token; AppError(UNAUTHORIZED) otherwise."""
    import jwt

    config = settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _unauthorized("The access token is malformed") from None
    algorithm = header.get("alg")
    options = {"require": ["exp", "sub"]}
    issuer = f"{config.supabase_url.rstrip('/')}/auth/v1" if config.supabase_url else None
    try:
        if algorithm == "HS256":
            if not config.supabase_jwt_secret:
                raise _unauthorized("This deployment accepts no HS256 tokens")
            key: Any = config.supabase_jwt_secret
        elif algorithm in _ASYMMETRIC:
            jwks_url = config.supabase_jwks_url or (
                f"{issuer}/.well-known/jwks.json" if issuer else None
            )
            if not jwks_url:
                raise _unauthorized("This deployment has no JWKS configured")
            key = _jwks_client(jwks_url).get_signing_key_from_jwt(token).key
        else:
            raise _unauthorized("Unsupported token algorithm")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            issuer=issuer,
            leeway=LEEWAY_S,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The access token has expired") from None
    except jwt.PyJWKClientError:
        raise _unauthorized("The token's signing key is unknown") from None
    except jwt.PyJWTError:
        raise _unauthorized("The access token is not valid") from None
    return claims


def role_of(claims: dict[str, Any]) -> str | None:
    role = claims.get("user_role")
    if role is None and isinstance(claims.get("app_metadata"), dict):
        role = claims["app_metadata"].get("user_role") or claims["app_metadata"].get("role")
    return str(role) if role is not None else None


def require_admin(request: Request) -> Admin:
    """The admin behind this request. 401 without a valid token, 403 without the role."""
    header = request.header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Sign in as an admin (Authorization: Bearer <access token>)")
    claims = verify(token.strip())
    role = role_of(claims)
    if role not in ADMIN_ROLES:
        raise AppError("FORBIDDEN", "This account is not an admin")
    return Admin(user_id=str(claims["sub"]), email=claims.get("email"), role=str(role))


def use_jwks(client: PyJWKClient | None) -> None:
    """Replace the cached key set client (tests)."""
    global _jwks  # noqa: PLW0603
    with _jwks_lock:
        _jwks = client
