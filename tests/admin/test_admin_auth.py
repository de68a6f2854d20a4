"""lib/admin_auth.py: who may call /api/admin/. Supabase access tokens signed HS256 with
the project secret, or ES256/RS256 with a key from the project's JWKS, served here by
a real HTTP server on localhost; the admin role from the token's claims."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from lib import admin_auth, config
from lib.errors import AppError
from lib.http import Request
from local.admin_token import new_secret, sign

SECRET = new_secret()
OTHER_SECRET = new_secret()
PROJECT = "https://abcdefghijklmnop.supabase.co"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set the auth settings for one test (nothing else leaks in); the settings cache
    and the process's JWKS client are reset before and after."""

    def apply(**values: str | None) -> None:
        for name in ("SUPABASE_JWT_SECRET", "SUPABASE_JWKS_URL", "SUPABASE_URL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        config.settings.cache_clear()
        admin_auth.use_jwks(None)

    apply(SUPABASE_JWT_SECRET=SECRET)
    yield apply
    config.settings.cache_clear()
    admin_auth.use_jwks(None)


def request(authorization: str | None) -> Request:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/admin/me"}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    return Request(environ, "test-request-id")


def rejected(authorization: str | None) -> AppError:
    with pytest.raises(AppError) as caught:
        admin_auth.require_admin(request(authorization))
    return caught.value


def bearer(token: str) -> str:
    return f"Bearer {token}"


# ---------------------------------------------------------------- HS256


@pytest.mark.usefixtures("env")
def test_an_admin_token_signed_with_the_project_secret_is_accepted() -> None:
    admin = admin_auth.require_admin(request(bearer(sign(SECRET, email="ops@school.example"))))
    assert admin.role == "admin"
    assert admin.email == "ops@school.example"
    assert admin.actor == "ops@school.example"


@pytest.mark.usefixtures("env")
def test_super_admin_and_a_role_in_app_metadata_are_admins() -> None:
    assert admin_auth.require_admin(request(bearer(sign(SECRET, role="super_admin")))).role == (
        "super_admin"
    )
    token = sign(SECRET, role=None, extra={"app_metadata": {"user_role": "admin"}})
    assert admin_auth.require_admin(request(bearer(token))).role == "admin"


@pytest.mark.usefixtures("env")
def test_without_an_email_the_audit_log_names_the_user_id() -> None:
    admin = admin_auth.require_admin(request(bearer(sign(SECRET, email=None, user_id="u-42"))))
    assert admin.actor == "u-42"


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer   ", "Basic YWRtaW46YWRtaW4=", "Token abc", "bearer-abc"],
)
def test_no_token_is_401(authorization: str | None) -> None:
    error = rejected(authorization)
    assert (error.status, error.code) == (401, "UNAUTHORIZED")


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("token", ["abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30", "x" * 5000])
def test_a_malformed_token_is_401(token: str) -> None:
    assert rejected(bearer(token)).status == 401


@pytest.mark.usefixtures("env")
def test_an_expired_token_is_401() -> None:
    error = rejected(bearer(sign(SECRET, ttl_s=-3600)))
    assert (error.status, error.code) == (401, "UNAUTHORIZED")
    assert "expired" in error.message


@pytest.mark.usefixtures("env")
def test_a_token_in_its_last_seconds_is_accepted_within_the_leeway() -> None:
    # Expired 10 s ago by our clock: inside the 30 s allowed for clock differences.
    assert admin_auth.require_admin(request(bearer(sign(SECRET, ttl_s=-10)))).role == "admin"
    assert rejected(bearer(sign(SECRET, ttl_s=-(admin_auth.LEEWAY_S + 5)))).status == 401


@pytest.mark.usefixtures("env")
def test_a_token_signed_with_another_key_is_401() -> None:
    error = rejected(bearer(sign(OTHER_SECRET)))
    assert (error.status, error.code) == (401, "UNAUTHORIZED")


@pytest.mark.usefixtures("env")
def test_a_tampered_payload_is_401() -> None:
    header, payload, signature = sign(SECRET, role="student").split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["user_role"] = "admin"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert rejected(bearer(f"{header}.{forged}.{signature}")).status == 401


@pytest.mark.usefixtures("env")
def test_unsigned_and_unsupported_algorithms_are_401() -> None:
    now = int(time.time())
    claims = {"sub": "x", "aud": "authenticated", "exp": now + 60, "user_role": "admin"}
    unsigned = jwt.encode(claims, "", algorithm="none")
    assert rejected(bearer(unsigned)).status == 401
    hs512 = jwt.encode(claims, SECRET, algorithm="HS512")
    error = rejected(bearer(hs512))
    assert error.status == 401
    assert "algorithm" in error.message


@pytest.mark.usefixtures("env")
def test_a_wrong_audience_or_a_missing_subject_or_expiry_is_401() -> None:
    assert rejected(bearer(sign(SECRET, audience="anon"))).status == 401
    now = int(time.time())
    no_sub = jwt.encode(
        {"aud": "authenticated", "exp": now + 60, "user_role": "admin"}, SECRET, "HS256"
    )
    assert rejected(bearer(no_sub)).status == 401
    no_exp = jwt.encode({"sub": "x", "aud": "authenticated", "user_role": "admin"}, SECRET, "HS256")
    assert rejected(bearer(no_exp)).status == 401


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("role", [None, "student", "authenticated", "Admin", "admin "])
def test_a_valid_token_without_the_admin_role_is_403(role: str | None) -> None:
    error = rejected(bearer(sign(SECRET, role=role)))
    assert (error.status, error.code) == (403, "FORBIDDEN")


def test_hs256_is_refused_where_no_secret_is_configured(env: Callable[..., None]) -> None:
    env()
    error = rejected(bearer(sign(SECRET)))
    assert error.status == 401
    assert "HS256" in error.message


def test_the_issuer_is_checked_when_the_project_url_is_known(env: Callable[..., None]) -> None:
    env(SUPABASE_JWT_SECRET=SECRET, SUPABASE_URL=PROJECT)
    good = sign(SECRET, issuer=f"{PROJECT}/auth/v1")
    assert admin_auth.require_admin(request(bearer(good))).role == "admin"
    # Another project's token, signed with a secret that happens to be ours (a shared
    # secret copied between projects), or one with no issuer at all.
    assert rejected(bearer(sign(SECRET, issuer="https://other.supabase.co/auth/v1"))).status == 401
    assert rejected(bearer(sign(SECRET))).status == 401


# ---------------------------------------------------------------- JWKS (ES256, RS256)


@dataclass
class Jwks:
    """A JWKS endpoint on localhost, and the keys it publishes."""

    base: str
    keys: list[dict[str, Any]]
    hits: list[str]

    @property
    def url(self) -> str:
        return f"{self.base}/auth/v1/.well-known/jwks.json"


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    published = Jwks(base="", keys=[], hits=[])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            published.hits.append(self.path)
            if self.path != "/auth/v1/.well-known/jwks.json":
                self.send_error(404)
                return
            body = json.dumps({"keys": published.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    published.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield published
    server.shutdown()
    server.server_close()


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def publish(jwks: Jwks, private: Any, kid: str, alg: str) -> None:
    algorithm = ECAlgorithm if alg == "ES256" else RSAAlgorithm
    jwk = json.loads(algorithm.to_jwk(private.public_key()))
    jwks.keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})


def asymmetric(private: Any, kid: str, alg: str = "ES256", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "sub": "2b0e7d0e-0000-4000-8000-000000000001",
        "aud": "authenticated",
        "exp": now + 600,
        "iat": now,
        "email": "ops@school.example",
        "user_role": "admin",
        **claims,
    }
    return jwt.encode(payload, private, algorithm=alg, headers={"kid": kid})


def test_an_es256_token_is_verified_with_the_key_from_the_jwks(
    env: Callable[..., None], jwks: Jwks
) -> None:
    env(SUPABASE_JWKS_URL=jwks.url)
    key = ec_key()
    publish(jwks, key, "key-1", "ES256")
    admin = admin_auth.require_admin(request(bearer(asymmetric(key, "key-1"))))
    assert (admin.email, admin.role) == ("ops@school.example", "admin")
    # The key set is cached per process: a second request does not fetch it again.
    admin_auth.require_admin(request(bearer(asymmetric(key, "key-1"))))
    assert len(jwks.hits) == 1


def test_rs256_through_the_jwks_too(env: Callable[..., None], jwks: Jwks) -> None:
    env(SUPABASE_JWKS_URL=jwks.url)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    publish(jwks, key, "rsa-1", "RS256")
    assert admin_auth.require_admin(request(bearer(asymmetric(key, "rsa-1", "RS256")))).role == (
        "admin"
    )


def test_the_jwks_url_follows_from_the_project_url_and_the_issuer_is_checked(
    env: Callable[..., None], jwks: Jwks
) -> None:
    env(SUPABASE_URL=jwks.base)
    key = ec_key()
    publish(jwks, key, "key-1", "ES256")
    issuer = f"{jwks.base}/auth/v1"
    assert admin_auth.require_admin(request(bearer(asymmetric(key, "key-1", iss=issuer))))
    assert jwks.hits == ["/auth/v1/.well-known/jwks.json"]
    assert rejected(bearer(asymmetric(key, "key-1", iss=PROJECT + "/auth/v1"))).status == 401


def test_jwks_tokens_signed_by_another_key_are_401(env: Callable[..., None], jwks: Jwks) -> None:
    env(SUPABASE_JWKS_URL=jwks.url)
    publish(jwks, ec_key(), "key-1", "ES256")
    # The published key id, but signed with a key the project never published.
    assert rejected(bearer(asymmetric(ec_key(), "key-1"))).status == 401
    # A key id the JWKS does not list.
    error = rejected(bearer(asymmetric(ec_key(), "unknown-kid")))
    assert error.status == 401
    assert "key" in error.message


def test_jwks_tokens_expired_or_without_the_role(env: Callable[..., None], jwks: Jwks) -> None:
    env(SUPABASE_JWKS_URL=jwks.url)
    key = ec_key()
    publish(jwks, key, "key-1", "ES256")
    expired = asymmetric(key, "key-1", exp=int(time.time()) - 3600)
    assert rejected(bearer(expired)).status == 401
    assert rejected(bearer(asymmetric(key, "key-1", user_role="student"))).status == 403


def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    env: Callable[..., None], jwks: Jwks
) -> None:
    """Algorithm confusion: a project on asymmetric keys has no HS256 secret, so an HS256
    token (here HMAC'd with the public key, which anyone can fetch) is never verified
    against a public key."""
    env(SUPABASE_JWKS_URL=jwks.url)
    key = ec_key()
    publish(jwks, key, "key-1", "ES256")
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"sub": "x", "aud": "authenticated", "exp": now + 60, "user_role": "admin"}
    # Built by hand: PyJWT itself refuses a PEM key as an HMAC secret.
    segments = [
        jwt.utils.base64url_encode(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": "key-1"}, claims)
    ]
    signing_input = b".".join(segments)
    mac = hmac.new(pem, signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + jwt.utils.base64url_encode(mac)).decode()
    assert rejected(bearer(forged)).status == 401


def test_asymmetric_tokens_without_a_jwks_configured_are_401(env: Callable[..., None]) -> None:
    env(SUPABASE_JWT_SECRET=SECRET)
    error = rejected(bearer(asymmetric(ec_key(), "key-1")))
    assert error.status == 401
    assert "JWKS" in error.message


def test_an_unreachable_jwks_is_401_not_a_crash(env: Callable[..., None], jwks: Jwks) -> None:
    env(SUPABASE_JWKS_URL=jwks.base + "/nothing-here.json")
    assert rejected(bearer(asymmetric(ec_key(), "key-1"))).status == 401
