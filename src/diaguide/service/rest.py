"""REST API for HIS vendors (`/api/v1`, documented at /docs and /openapi.json).

A Visit or a FHIR Bundle in, a Plan with safety findings and the record's complexity out;
stored recommendations, feedback, and the audit trail (admin only).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Body, HTTPException, Query, Request
from pydantic import BaseModel, Field

from diaguide.records.schema import Plan
from diaguide.service import engine
from diaguide.service.auth_users import authenticate, create_user
from diaguide.service.deps import Admin, Context, Ctx, User, audit_note
from diaguide.service.store import AuditRecord, Base, Feedback, Narrative, Recommendation, new_id

router = APIRouter(prefix="/api/v1", tags=["REST API"])


class TokenIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=200)
    role: Literal["physician", "admin"] = "physician"


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


@router.post("/auth/token", response_model=TokenOut, summary="log in; returns a bearer token")
def token(body: TokenIn, ctx: Ctx, request: Request) -> TokenOut:
    principal = authenticate(ctx.store, body.username, body.password)
    if principal is None:
        raise HTTPException(401, "wrong username or password")
    audit_note(request, principal=principal.username)
    return TokenOut(access_token=ctx.signer.issue(principal), role=principal.role)


@router.post("/users", status_code=201, summary="create a login or reset its password (admin)")
def add_user(body: UserIn, ctx: Ctx, admin: Admin) -> dict[str, str]:
    create_user(ctx.store, body.username, body.password, body.role)
    return {"username": body.username, "role": body.role}


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


def store_result(ctx, result: engine.Result, channel: str) -> Recommendation:
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
    user: User,
    payload: Annotated[
        dict[str, Any],
        Body(description='a Visit, a FHIR Bundle, {"visit": ...} or {"bundle": ...}', examples=[EXAMPLE_VISIT]),
    ],
) -> RecommendationOut:
    visit, warnings = await anyio.to_thread.run_sync(engine.visit_from_payload, payload, "request")
    submitted = engine.plan_from_payload(payload, "request")
    result = await anyio.to_thread.run_sync(engine.recommend, visit, ctx.settings.region, warnings, submitted)
    row = await anyio.to_thread.run_sync(store_result, ctx, result, "rest")
    await anyio.to_thread.run_sync(ctx.narratives.ensure, result.record_hash, visit, result.plan)
    audit_note(request, record_hash=result.record_hash, recommendation_id=row.id, engine_ms=round(result.engine_ms, 2))
    return to_out(row)


def _stored(ctx: Context, model: type[Base], key: str, missing: str) -> Any:
    """The stored row of `model` under `key`; a 404 saying `missing` when there is none."""
    row = ctx.store.get(model, key)
    if row is None:
        raise HTTPException(404, missing)
    return row


@router.get("/recommendations/{rec_id}", response_model=RecommendationOut, summary="a stored recommendation")
def get_recommendation(rec_id: str, ctx: Ctx, user: User) -> RecommendationOut:
    return to_out(_stored(ctx, Recommendation, rec_id, "no such recommendation"))


@router.get("/narratives/{record_hash}", response_model=NarrativeOut, summary="the model narrative of a record")
def get_narrative(record_hash: str, ctx: Ctx, user: User) -> NarrativeOut:
    row = _stored(ctx, Narrative, record_hash, "no narrative for this record")
    return NarrativeOut(record_hash=row.record_hash, status=row.status, text=row.text, model_version=row.model_version)


@router.post("/feedback", response_model=FeedbackOut, status_code=201, summary="accept, modify or reject a plan")
def post_feedback(body: FeedbackIn, ctx: Ctx, user: User) -> FeedbackOut:
    if not body.recommendation_id and not body.card_uuid:
        raise HTTPException(400, "recommendation_id or card_uuid is required")
    if body.recommendation_id:
        _stored(ctx, Recommendation, body.recommendation_id, "no such recommendation")
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
