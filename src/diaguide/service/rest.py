"""REST API for HIS vendors (`/api/v1`, documented at /docs and /openapi.json).

A Visit or a FHIR Bundle in, a Plan with safety findings and the record's complexity out;
stored recommendations, feedback, and the audit trail (admin only).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Body, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from diaguide.records.schema import Plan
from diaguide.service import clinical
from diaguide.service.auth_throttle import username_hash
from diaguide.service.auth_users import Principal, create_user, end_sessions, set_password
from diaguide.service.deps import (
    BREAK_GLASS_HEADER,
    Admin,
    Context,
    Ctx,
    Forbidden,
    Physician,
    User,
    audit_note,
    authorize_read,
    break_glass_reason,
)
from diaguide.service.store import AuditRecord, Card, Feedback, Narrative, Recommendation, new_id

router = APIRouter(prefix="/api/v1", tags=["REST API"])


class TokenIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=200)
    role: Literal["physician", "admin"] = "physician"
    ehr_user: str | None = Field(
        None, max_length=200, description="the EHR's userId for this physician (CDS Hooks context.userId)"
    )


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=8, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str


class RecommendationOut(BaseModel):
    id: str
    record_hash: str
    created_at: dt.datetime
    plan: Plan
    complexity: dict[str, Any] | None = None
    warnings: list[str] = []
    plan_source: str = Field("guideline", description="guideline: the engine's plan; submitted: the plan sent in")


class FeedbackIn(BaseModel):
    recommendation_id: str | None = Field(None, max_length=36)
    card_uuid: str | None = Field(None, max_length=64)
    outcome: Literal["accepted", "overridden", "modified", "rejected"]
    reason: str | None = Field(None, max_length=200, description="override / rejection reason")
    comment: str | None = Field(None, max_length=2000)


class FeedbackOut(BaseModel):
    id: int


class AuditOut(BaseModel):
    id: str
    created_at: dt.datetime
    method: str
    route: str
    hook: str | None
    status_code: int
    outcome: str
    request_hash: str | None
    record_hash: str | None
    recommendation_id: str | None
    principal: str | None
    reason: str | None = Field(None, description="a break-glass access's stated reason")
    model_version: str | None
    adapter_version: str | None
    rule_version: str | None
    duration_ms: float
    engine_ms: float | None
    cards_info: int
    cards_warning: int
    cards_critical: int

    model_config = {"from_attributes": True}


class NarrativeOut(BaseModel):
    record_hash: str
    status: str
    text: str | None
    model_version: str | None


EXAMPLE_VISIT = {
    "visit_id": "v1",
    "patient_id": "p1",
    "date": "2026-10-12",
    "patient": {"age": 58, "sex": "male"},
    "diagnoses": [{"system": "icd10", "code": "E11.9"}],
    "labs": [{"loinc": "4548-4", "name": "HbA1c", "value": 8.4, "unit": "%", "date": "2026-10-10"}],
    "medications": [{"drug": "metformin", "drug_class": "metformin"}],
}


BREAK_GLASS = Annotated[
    str | None,
    Header(
        alias=BREAK_GLASS_HEADER,
        description="break glass: read a record you did not create, giving the reason (audited)",
    ),
]
FORBIDDEN = {403: {"description": f"not your patient's record: send {BREAK_GLASS_HEADER} to break glass"}}


def _forbidden() -> HTTPException:
    return HTTPException(403, f"not a record you created: to read it anyway, give the reason in {BREAK_GLASS_HEADER}")


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="log in; returns a bearer token",
    responses={429: {"description": "too many failed logins: wait Retry-After seconds"}},
)
def token(body: TokenIn, ctx: Ctx, request: Request) -> TokenOut | JSONResponse:
    result = ctx.throttle.login(body.username, body.password, request.client.host if request.client else None)
    if result.retry_after > 0:
        audit_note(request, outcome="login_locked", principal=username_hash(body.username))
        wait = str(int(result.retry_after) + 1)
        return JSONResponse({"detail": "too many failed logins; try later"}, 429, headers={"Retry-After": wait})
    if result.principal is None:
        audit_note(request, outcome="login_failed", principal=username_hash(body.username))
        raise HTTPException(401, "wrong username or password")
    audit_note(request, principal=result.principal.username, outcome="login")
    return TokenOut(access_token=ctx.signer.issue(result.principal), role=result.principal.role)


@router.post("/auth/logout", status_code=204, summary="end every session of the logged-in user")
def logout(ctx: Ctx, user: User) -> None:
    end_sessions(ctx.store, user.username)


@router.post("/auth/password", status_code=204, summary="change your password; every session of yours ends")
def password(body: PasswordIn, request: Request, ctx: Ctx, user: User) -> None:
    # the current password is checked through the login throttle: a stolen session cannot guess it quickly
    check = ctx.throttle.login(user.username, body.current_password, request.client.host if request.client else None)
    if user.demo or check.principal is None:
        raise HTTPException(403, "the current password is wrong")
    set_password(ctx.store, user.username, body.new_password)


@router.post("/users", status_code=201, summary="create a login or reset its password and role (admin)")
def add_user(body: UserIn, ctx: Ctx, admin: Admin) -> dict[str, str]:
    if admin.demo:
        raise HTTPException(403, "demo mode has no logins: start the service without DIAGUIDE_DEMO to add users")
    create_user(ctx.store, body.username, body.password, body.role, body.ehr_user)
    return {"username": body.username, "role": body.role}


@router.post("/users/{username}/deactivate", status_code=204, summary="end a user's sessions and logins (admin)")
def deactivate_user(username: str, ctx: Ctx, admin: Admin) -> None:
    if admin.demo or not end_sessions(ctx.store, username, deactivate=True):
        raise HTTPException(404, "no such user")


def to_out(row: Recommendation) -> RecommendationOut:
    return RecommendationOut(
        id=row.id,
        record_hash=row.record_hash,
        created_at=row.created_at,
        plan=Plan.model_validate(row.plan),
        complexity=row.complexity,
        warnings=list(row.warnings or []),
        plan_source=row.plan_source or "guideline",
    )


def store_result(ctx, result: clinical.Result, channel: str, user: Principal) -> Recommendation:
    row = Recommendation(
        id=new_id(),
        created_at=dt.datetime.now(dt.timezone.utc),
        channel=channel,
        record_hash=result.record_hash,
        visit=result.visit.model_dump(mode="json"),
        plan=result.plan.model_dump(mode="json"),
        complexity=result.complexity,
        warnings=result.warnings,
        plan_source=result.plan_source,
        created_by=user.username,
    )
    ctx.store.add(row)
    return row


@router.post(
    "/recommendations",
    response_model=RecommendationOut,
    status_code=201,
    summary="a checked Plan for a Visit or a FHIR Bundle (its latest visit)",
    responses={400: {"description": "the record cannot be read"}, 413: {"description": "body too large"}},
)
async def create_recommendation(
    request: Request,
    ctx: Ctx,
    user: Physician,
    payload: Annotated[
        dict[str, Any],
        Body(description='a Visit, a FHIR Bundle, {"visit": ...} or {"bundle": ...}', examples=[EXAMPLE_VISIT]),
    ],
) -> RecommendationOut:
    visit, warnings = await anyio.to_thread.run_sync(clinical.visit_from_payload, payload, "request")
    submitted = clinical.plan_from_payload(payload, "request")
    result = await anyio.to_thread.run_sync(clinical.recommend, visit, ctx.settings.region, warnings, submitted)
    row = await anyio.to_thread.run_sync(store_result, ctx, result, "rest", user)
    await anyio.to_thread.run_sync(ctx.narratives.ensure, result.record_hash, visit, result.plan)
    audit_note(request, record_hash=result.record_hash, recommendation_id=row.id, engine_ms=round(result.engine_ms, 2))
    return to_out(row)


def readable(request: Request, ctx: Context, user: Principal, recs: list[Recommendation], reason: str | None) -> None:
    """The access check of every REST read or write of a record (docs/security.md#access-model): 404, 403 or pass."""
    if not recs:
        raise HTTPException(404, "no such recommendation")
    try:
        authorize_read(request, user, recs, break_glass_reason(request, reason))
    except Forbidden:
        raise _forbidden() from None


@router.get(
    "/recommendations/{rec_id}",
    response_model=RecommendationOut,
    summary="a stored recommendation (yours, or with a break-glass reason)",
    responses=FORBIDDEN,
)
def get_recommendation(rec_id: str, request: Request, ctx: Ctx, user: User, reason: BREAK_GLASS = None) -> Any:
    row = ctx.store.get(Recommendation, rec_id)
    readable(request, ctx, user, [row] if row else [], reason)
    return to_out(row)


@router.get(
    "/narratives/{record_hash}",
    response_model=NarrativeOut,
    summary="the model narrative of a record (yours, or with a break-glass reason)",
    responses=FORBIDDEN,
)
def get_narrative(record_hash: str, request: Request, ctx: Ctx, user: User, reason: BREAK_GLASS = None) -> Any:
    readable(request, ctx, user, ctx.store.recommendations_of(record_hash), reason)
    row = ctx.store.get(Narrative, record_hash)
    if row is None:
        raise HTTPException(404, "no narrative for this record")
    return NarrativeOut(record_hash=row.record_hash, status=row.status, text=row.text, model_version=row.model_version)


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    status_code=201,
    summary="accept, modify or reject a plan (yours, or with a break-glass reason)",
    responses=FORBIDDEN,
)
def post_feedback(body: FeedbackIn, request: Request, ctx: Ctx, user: User, reason: BREAK_GLASS = None) -> Any:
    if not body.recommendation_id and not body.card_uuid:
        raise HTTPException(400, "recommendation_id or card_uuid is required")
    rec_id = body.recommendation_id
    if not rec_id:
        card = ctx.store.get(Card, body.card_uuid)
        if card is None or card.recommendation_id is None:
            raise HTTPException(404, "no such card")
        rec_id = card.recommendation_id
    row = ctx.store.get(Recommendation, rec_id)
    readable(request, ctx, user, [row] if row else [], reason)
    row = Feedback(
        channel="rest",
        recommendation_id=body.recommendation_id,
        card_uuid=body.card_uuid,
        outcome=body.outcome,
        override_reason=body.reason,
        comment=body.comment,
        accepted_suggestions=[],
        principal=user.username,
    )
    ctx.store.add(row)
    return FeedbackOut(id=row.id)


@router.get("/audit", response_model=list[AuditOut], summary="audit records, newest first (admin)")
def list_audit(
    ctx: Ctx,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[AuditOut]:
    rows: list[AuditRecord] = ctx.store.audit_page(limit, offset)
    return [AuditOut.model_validate(r) for r in rows]
