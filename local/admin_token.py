"""A development admin sign-in for `./run dev`: a made-up JWT secret per run, and an
access token signed with it the way Supabase Auth signs them (HS256, audience
`authenticated`, the admin role in `user_role`), so the dashboard works on a laptop
without a Supabase project. lib/admin_auth.py verifies it like any other token; it
knows nothing about this module.

Never used in production: there, SUPABASE_JWT_SECRET is the project's own and tokens
come from Supabase Auth.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

DEV_ADMIN_EMAIL = "admin@localhost"
# A fixed id, so the audit log shows one development admin across runs.
DEV_ADMIN_ID = "00000000-0000-4000-8000-00000000ad01"
# A working day: long enough for a session at the dashboard, short enough that a token
# copied out of a terminal stops working by tomorrow (and the secret dies with the run).
DEV_TOKEN_TTL_S = 12 * 3600


def new_secret() -> str:
    """A fresh HS256 secret: 48 random bytes, as long as Supabase's own (PyJWT warns
    about HMAC keys under 32 bytes)."""
    return secrets.token_urlsafe(48)


def sign(
    secret: str,
    *,
    role: str | None = "admin",
    email: str | None = DEV_ADMIN_EMAIL,
    user_id: str = DEV_ADMIN_ID,
    ttl_s: int = DEV_TOKEN_TTL_S,
    issuer: str | None = None,
    audience: str = "authenticated",
    extra: dict[str, Any] | None = None,
) -> str:
    """An access token shaped like Supabase Auth's, signed HS256 with `secret`.
    A negative ttl_s makes one that has already expired (tests)."""
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "aud": audience,
        "role": "authenticated",
        "iat": now,
        "exp": now + ttl_s,
        "session_id": str(uuid.uuid4()),
    }
    if email is not None:
        claims["email"] = email
    if role is not None:
        claims["user_role"] = role
    if issuer is not None:
        claims["iss"] = issuer
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")
