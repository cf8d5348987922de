"""What every route shares: the service context (settings, store, caches) and the auth dependencies."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import httpx
from fastapi import Depends, HTTPException, Request

from diaguide.service.auth_jwt import AuthError, JWTVerifier, log_refusal
from diaguide.service.auth_users import COOKIE, Principal, SessionSigner
from diaguide.service.narrative import NarrativeCache
from diaguide.service.settings import Settings
from diaguide.service.store import Store


@dataclasses.dataclass
class Context:
    settings: Settings
    store: Store
    verifier: JWTVerifier
    signer: SessionSigner
    narratives: NarrativeCache
    samples: list[Any]
    fhir_transport: httpx.AsyncBaseTransport | None = None


class Unauthorized(Exception):
    """A bare 401 (no body that could help an attacker)."""


def get_context(request: Request) -> Context:
    return request.app.state.ctx


Ctx = Annotated[Context, Depends(get_context)]


def audit_note(request: Request, **fields: Any) -> None:
    """Add fields to this request's audit record (ids, hashes, counts — never patient text)."""
    note = request.scope.setdefault("state", {}).setdefault("audit", {})
    note.update(fields)


def called_url(request: Request, settings: Settings) -> str:
    """The exact URL the EHR called, as it would appear in a JWT `aud`."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + request.url.path
    return f"{request.url.scheme}://{request.url.netloc}{request.url.path}"


def base_url(request: Request, settings: Settings) -> str:
    return (settings.public_base_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")


def ehr_caller(request: Request, ctx: Ctx) -> str | None:
    """The EHR's verified issuer (None with CDS auth off); a bare 401 otherwise."""
    if ctx.settings.cds_auth == "off":
        return None
    authorization = request.headers.get("authorization")
    try:
        claims = ctx.verifier.verify(authorization, called_url(request, ctx.settings))
    except AuthError as exc:
        log_refusal(str(exc), request.url.path, authorization)
        audit_note(request, outcome="unauthorized")
        raise Unauthorized() from None
    audit_note(request, principal=str(claims["iss"])[:200])
    return claims["iss"]


EHR = Annotated[str | None, Depends(ehr_caller)]


def current_user(request: Request, ctx: Ctx) -> Principal | None:
    """The logged-in physician (cookie or bearer token); in demo mode, the demo user."""
    if not ctx.settings.auth_enabled:
        return Principal("demo", "admin", demo=True)
    token = request.cookies.get(COOKIE)
    auth = request.headers.get("authorization", "")
    if auth.startswith("Bearer "):
        token = auth[7:].strip()
    principal = ctx.signer.read(token)
    if principal is not None:
        audit_note(request, principal=principal.username)
    return principal


def require_user(principal: Annotated[Principal | None, Depends(current_user)]) -> Principal:
    if principal is None:
        raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_admin(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "admin role required")
    return principal


User = Annotated[Principal, Depends(require_user)]
Admin = Annotated[Principal, Depends(require_admin)]
