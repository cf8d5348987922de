"""Verification of the JWT an EHR sends with every CDS Hooks call (CDS Hooks 2.0 §Trusting CDS Clients).

Issuer from an allow-list, key by `kid` from the issuer's JWKS (a URL or a local file, cached),
asymmetric algorithms only, `aud` equal to the exact URL called, `exp`/`iat` checked, and `jti`
remembered until the token expires so a replay is refused. Any failure is a bare 401; the
attempt is logged with the reason and the issuer, never the token.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from diaguide.service.inputs import bad_text
from diaguide.service.settings import Settings
from diaguide.service.store import Store, UsedToken

log = logging.getLogger("diaguide.service")

# CDS Hooks 2.0: ES384 or RS384 SHALL be supported; ES256/RS256 accepted too. Never none or HMAC:
# an HMAC secret would have to be shared with every EHR, and `none` proves nothing.
ALLOWED_ALGORITHMS = ("ES384", "RS384", "ES256", "RS256")
PURGE_EVERY = 500  # verified tokens between sweeps of expired jti rows
JTI_MAX: int = UsedToken.__table__.c.jti.type.length  # characters the replay table holds


class AuthError(Exception):
    """Why a token was refused (logged, never sent to the caller)."""


class JWKSCache:
    """Each issuer's key set, kept for `ttl` seconds; an unknown `kid` forces one refresh (key rotation)."""

    def __init__(self, sources: dict[str, str], ttl: float, transport: httpx.BaseTransport | None = None):
        self.sources = sources
        self.ttl = ttl
        self.transport = transport
        self._sets: dict[str, tuple[float, PyJWKSet]] = {}
        self._lock = threading.Lock()

    def key(self, issuer: str, kid: str) -> PyJWK:
        for refresh in (False, True):
            found = {k.key_id: k for k in self._keyset(issuer, refresh).keys}
            if kid in found:
                return found[kid]
        raise AuthError("unknown kid")

    def _keyset(self, issuer: str, refresh: bool) -> PyJWKSet:
        with self._lock:
            cached = self._sets.get(issuer)
            if cached and not refresh and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
        try:
            keyset = PyJWKSet.from_dict(self._load(self.sources[issuer]))
        except jwt.PyJWTError:
            raise AuthError("JWKS unusable") from None
        with self._lock:
            self._sets[issuer] = (time.monotonic(), keyset)
        return keyset

    def _load(self, source: str) -> dict[str, Any]:
        try:
            if source.startswith(("https://", "http://")):
                with httpx.Client(transport=self.transport, timeout=5.0) as client:
                    response = client.get(source)
                    response.raise_for_status()
                    return response.json()
            return json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError, httpx.HTTPError) as exc:
            raise AuthError(f"JWKS unavailable ({type(exc).__name__})") from None


class JWTVerifier:
    def __init__(self, settings: Settings, store: Store, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self.store = store
        self.jwks = JWKSCache(settings.cds_trusted_issuers, settings.jwks_cache_seconds, transport)
        self._claims = 0

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims, or AuthError. `audience` is the exact URL the EHR called."""
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthError("no bearer token")
        token = authorization[len("Bearer ") :].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg, kid, issuer = header.get("alg"), header.get("kid"), unverified.get("iss")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError(f"algorithm {alg!r} not allowed")
        if not isinstance(issuer, str) or issuer not in self.settings.cds_trusted_issuers:
            raise AuthError("issuer not trusted")
        if not isinstance(kid, str):
            raise AuthError("no kid")
        key = self.jwks.key(issuer, kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["exp", "iat", "jti", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(type(exc).__name__) from None
        except (OverflowError, ValueError, TypeError):  # e.g. exp 1e999: PyJWT's int() overflows
            raise AuthError("unusable exp or iat") from None
        now = time.time()
        if not all(_finite_number(claims[key]) for key in ("exp", "iat")):
            raise AuthError("exp or iat is not a number")
        if claims["exp"] > now + self.settings.jwt_max_age_seconds + self.settings.jwt_leeway_seconds:
            raise AuthError("expires too far in the future")  # also keeps exp a date the store can hold
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= JTI_MAX or bad_text(jti):
            raise AuthError("unusable jti")
        if claims["iat"] > now + self.settings.jwt_leeway_seconds:
            raise AuthError("issued in the future")
        if claims["iat"] < now - self.settings.jwt_max_age_seconds:
            raise AuthError("issued too long ago")
        expires = dt.datetime.fromtimestamp(claims["exp"] + self.settings.jwt_leeway_seconds, dt.timezone.utc)
        if not self.store.claim_token(issuer, jti, expires):
            raise AuthError("replayed jti")
        self._claims += 1
        if self._claims % PURGE_EVERY == 0:
            self.store.purge_tokens()  # expired ids can never be replayed (exp is checked first)
        return claims


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def log_refusal(reason: str, route: str, authorization: str | None) -> None:
    """Log a refused call: the reason and (unverified) issuer/kid/alg — never the token itself."""
    extra: dict[str, Any] = {"event": "cds_auth_refused", "reason": reason, "route": route}
    if authorization and authorization.startswith("Bearer "):
        try:
            token = authorization[7:].strip()
            header = jwt.get_unverified_header(token)
            extra.update(kid=str(header.get("kid"))[:100], alg=str(header.get("alg"))[:20])
            iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
            extra["issuer"] = str(iss)[:300]
        except jwt.PyJWTError:
            pass
    log.warning("CDS Hooks call refused", extra=extra)
