"""What every route shares: the service context (settings, store, caches), the auth dependencies and the
access model (docs/security.md#access-model).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated, Any

import httpx
from fastapi import Depends, HTTPException, Request

from diaguide.service.auth_jwt import AuthError, JWTVerifier, log_refusal
from diaguide.service.auth_throttle import Throttle
from diaguide.service.auth_users import COOKIE, Principal, SessionSigner, session_user
from diaguide.service.narrative import NarrativeCache
from diaguide.service.settings import Settings
from diaguide.service.store import Recommendation, Store

log = logging.getLogger("diaguide.service")
BREAK_GLASS_HEADER = "X-Break-Glass-Reason"
BREAK_GLASS_PARAM = "break_glass"


@dataclasses.dataclass
class Context:
    settings: Settings
    store: Store
    verifier: JWTVerifier
    signer: SessionSigner
    narratives: NarrativeCache
    samples: list[Any]
    throttle: Throttle
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


def session_token(request: Request) -> str | None:
    """The session a request carries: a bearer token (REST) before the cookie (page)."""
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else request.cookies.get(COOKIE)


def current_user(request: Request, ctx: Ctx) -> Principal | None:
    """The logged-in user (cookie or bearer token), checked against the users table on every request: a
    session ended by logout, a password or role change or deactivation is None. In demo mode, the demo user."""
    if not ctx.settings.auth_enabled:
        return Principal("demo", "admin", demo=True)
    principal = session_user(ctx.store, ctx.signer.read(session_token(request)))
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


def require_physician(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
    if principal.is_admin and not principal.demo:
        raise HTTPException(403, "a physician's login is needed: admins see the audit, not clinical content")
    return principal


User = Annotated[Principal, Depends(require_user)]
Admin = Annotated[Principal, Depends(require_admin)]
Physician = Annotated[Principal, Depends(require_physician)]


class Forbidden(Exception):
    """A record the caller may not read without breaking glass (403; the route decides how to say it)."""


def owns(principal: Principal, rec: Recommendation) -> bool:
    """Whether `principal` may read `rec` without breaking glass: the physician who made it, or the physician
    whose EHR user id the CDS Hooks call that made it named. Admins own no clinical records."""
    if principal.demo:
        return True
    if principal.is_admin:
        return False
    return rec.created_by == principal.username or (rec.ehr_user is not None and rec.ehr_user == principal.ehr_user)


def break_glass_reason(request: Request, form_value: str | None = None) -> str | None:
    """The reason given for a break-glass access (header, query or form field), or None when none was given."""
    raw = form_value or request.headers.get(BREAK_GLASS_HEADER) or request.query_params.get(BREAK_GLASS_PARAM)
    reason = " ".join((raw or "").split())
    return reason[:200] if len(reason) >= 5 else None


def authorize_read(request: Request, principal: Principal, recs: list[Recommendation], reason: str | None) -> None:
    """Allow reading patient data of `recs[0]` (one record, possibly several stored recommendations of it) or raise
    Forbidden; the audit record names what was read, and a break-glass access carries its reason."""
    rec = next((r for r in recs if owns(principal, r)), recs[0])
    audit_note(request, recommendation_id=rec.id, record_hash=rec.record_hash)
    if owns(principal, rec):
        return
    if reason is None:
        audit_note(request, outcome="forbidden")
        raise Forbidden()
    audit_note(request, outcome="break_glass", reason=reason)
    log.warning(
        "break-glass access (reason in the audit record)", extra={"event": "break_glass", "user": principal.username}
    )
