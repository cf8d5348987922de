"""The physician page: server-rendered (Jinja2, no build step), English and Chinese.

Pick a sample patient or paste a record, see the plan in three parts with every finding beside
the medication it concerns, the complexity and the lab evidence, then accept, modify or reject
with a reason — stored as feedback. Without a login it shows nothing but the login form,
except in demo mode (synthetic patients, labelled on every page). A physician sees the records they
made; any other needs a break-glass reason, audited (docs/security.md#access-model). Every post
carries a CSRF token and must come from this origin (docs/security.md#csrf).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from diaguide.errors import InputError
from diaguide.records.schema import Plan, Visit
from diaguide.service import auth_csrf, clinical
from diaguide.service.auth_throttle import username_hash
from diaguide.service.auth_users import COOKIE, Principal, end_sessions
from diaguide.service.deps import Ctx, Forbidden, audit_note, authorize_read, break_glass_reason, current_user
from diaguide.service.inputs import parse_json
from diaguide.service.narrative_text import readable
from diaguide.service.page_view import ACTION_ZH, TEXT, evidence, medication_rows
from diaguide.service.rest import store_result
from diaguide.service.store import Feedback, Narrative, Recommendation

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
templates.env.filters["readable"] = readable  # the narrative as sentences, not GOAL:/MED: lines
LANG_COOKIE = "diaguide_lang"
Viewer = Annotated[Principal | None, Depends(current_user)]


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "en"
    return lang if lang in TEXT else "en"


def _render(request: Request, ctx, name: str, viewer: Principal | None, status: int = 200, **context: Any) -> Response:
    lang = _lang(request)
    nonce, csrf = auth_csrf.token_for(request, ctx.signer.key)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": TEXT[lang],
            "lang": lang,
            "demo": ctx.settings.demo,
            "viewer": viewer,
            "action_zh": ACTION_ZH,
            "csrf": csrf,
            **context,
        },
        status_code=status,
    )
    auth_csrf.remember(response, request, nonce)
    if request.query_params.get("lang") in TEXT:
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400)
    return response


def _cross_site(request: Request, ctx, token: str) -> Response | None:
    """A 403 when a post did not come from this service's own form, else None."""
    if auth_csrf.valid(request, ctx.settings, ctx.signer.key, token):
        return None
    audit_note(request, outcome="csrf_refused")
    return Response(TEXT[_lang(request)]["refused"], status_code=403, media_type="text/plain; charset=utf-8")


def _may_read(request: Request, ctx, viewer: Principal, recs: list, reason: str | None = None) -> Response | None:
    """None when `viewer` may read the record of `recs`; else the page asking for a break-glass reason (403)."""
    try:
        authorize_read(request, viewer, recs, break_glass_reason(request, reason))
    except Forbidden:
        return _render(request, ctx, "break_glass.html", viewer, status=403, action=request.url.path)
    return None


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, ctx: Ctx, viewer: Viewer) -> Response:
    if viewer is None:
        return _login_redirect(request)
    return _render(request, ctx, "index.html", viewer, samples=ctx.samples, error=request.query_params.get("error"))


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, ctx: Ctx) -> Response:
    return _render(request, ctx, "login.html", None, failed=False, next=_safe_next(request.query_params.get("next")))


def _safe_next(target: str | None) -> str:
    # only local paths: never an open redirect to another site
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if refused := _cross_site(request, ctx, csrf):
        return refused
    address = request.client.host if request.client else None
    result = ctx.throttle.login(username[:100], password[:200], address)
    principal = result.principal
    if principal is None:
        locked = result.retry_after > 0
        audit_note(request, outcome="login_locked" if locked else "login_failed", principal=username_hash(username))
        response = _render(
            request, ctx, "login.html", None, status=429 if locked else 401, failed=not locked, locked=locked,
            next=_safe_next(next),
        )  # fmt: skip
        if locked:
            response.headers["Retry-After"] = str(int(result.retry_after) + 1)
        return response
    audit_note(request, principal=principal.username, outcome="login")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        ctx.signer.issue(principal),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(ctx.settings.session_hours * 3600),
    )
    return response


@router.post("/logout")
def logout(request: Request, ctx: Ctx, viewer: Viewer, csrf: Annotated[str, Form()] = "") -> Response:
    if refused := _cross_site(request, ctx, csrf):
        return refused
    if viewer is not None and not viewer.demo:
        end_sessions(ctx.store, viewer.username)  # the cookie, and every copy of it, stops working now
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.post("/page/recommend")
async def recommend(
    request: Request,
    ctx: Ctx,
    viewer: Viewer,
    sample: Annotated[str, Form()] = "",
    record: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if viewer is None:
        return _login_redirect(request)
    if refused := _cross_site(request, ctx, csrf):
        return refused
    if viewer.is_admin and not viewer.demo:
        audit_note(request, outcome="forbidden")
        return _render(
            request, ctx, "index.html", viewer, status=403, samples=ctx.samples,
            error="a physician's login is needed: admins see the audit, not clinical content",
        )  # fmt: skip
    try:
        if record.strip():
            payload = parse_json(record, "pasted record", invalid="the pasted text is not JSON")
            visit, warnings = await anyio.to_thread.run_sync(clinical.visit_from_payload, payload, "pasted record")
            submitted = clinical.plan_from_payload(payload, "pasted record")
        else:
            chosen = next((s for s in ctx.samples if s.id == sample), None)
            if chosen is None:
                raise InputError("choose a sample patient or paste a record", field="sample")
            visit, warnings, submitted = chosen.visit, [], chosen.plan
    except InputError as exc:
        audit_note(request, outcome="bad_request")
        return _render(request, ctx, "index.html", viewer, status=400, samples=ctx.samples, error=exc.line())
    result = await anyio.to_thread.run_sync(clinical.recommend, visit, ctx.settings.region, warnings, submitted)
    row = await anyio.to_thread.run_sync(store_result, ctx, result, "page", viewer)
    await anyio.to_thread.run_sync(ctx.narratives.ensure, result.record_hash, visit, result.plan)
    audit_note(request, record_hash=result.record_hash, recommendation_id=row.id, engine_ms=round(result.engine_ms, 2))
    return RedirectResponse(f"/page/recommendations/{row.id}", status_code=303)


@router.get("/page/recommendations/{rec_id}", response_class=HTMLResponse)
def show(rec_id: str, request: Request, ctx: Ctx, viewer: Viewer) -> Response:
    if viewer is None:
        return _login_redirect(request)
    row = ctx.store.get(Recommendation, rec_id)
    if row is None:
        return _render(
            request, ctx, "index.html", viewer, status=404, samples=ctx.samples, error="no such recommendation"
        )
    if refused := _may_read(request, ctx, viewer, [row]):
        return refused
    visit, plan = Visit.model_validate(row.visit), Plan.model_validate(row.plan)
    meds, other = medication_rows(plan)
    narrative = ctx.store.get(Narrative, row.record_hash)
    return _render(
        request,
        ctx,
        "recommendation.html",
        viewer,
        rec=row,
        visit=visit,
        plan=plan,
        meds=meds,
        other_findings=other,
        evidence=evidence(visit),
        complexity=row.complexity,
        narrative=narrative,
        saved=request.query_params.get("saved") == "1",
        break_glass=break_glass_reason(request),
    )


@router.post("/page/feedback")
def page_feedback(
    request: Request,
    ctx: Ctx,
    viewer: Viewer,
    recommendation_id: Annotated[str, Form(max_length=36)],
    outcome: Annotated[str, Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form()] = "",
    break_glass: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if viewer is None:
        return _login_redirect(request)
    if refused := _cross_site(request, ctx, csrf):
        return refused
    row = ctx.store.get(Recommendation, recommendation_id)
    if outcome not in ("accepted", "modified", "rejected") or row is None:
        audit_note(request, outcome="bad_request")
        return Response("bad feedback", status_code=400)
    if refused := _may_read(request, ctx, viewer, [row], break_glass):
        return refused
    ctx.store.add(
        Feedback(
            channel="page",
            recommendation_id=recommendation_id,
            outcome=outcome,
            override_reason=reason or None,
            comment=comment or None,
            accepted_suggestions=[],
            principal=viewer.username,
        )
    )
    glass = break_glass_reason(request, break_glass)
    again = f"&{urlencode({'break_glass': glass})}" if glass else ""
    return RedirectResponse(f"/page/recommendations/{recommendation_id}?saved=1{again}", status_code=303)


@router.get("/page/narratives/{record_hash}", response_class=HTMLResponse)
def narrative_page(record_hash: str, request: Request, ctx: Ctx, viewer: Viewer) -> Response:
    if viewer is None:
        return _login_redirect(request)
    recs = ctx.store.recommendations_of(record_hash)
    if not recs:
        return _render(request, ctx, "narrative.html", viewer, status=404, narrative=None)
    if refused := _may_read(request, ctx, viewer, recs):
        return refused
    return _render(request, ctx, "narrative.html", viewer, narrative=ctx.store.get(Narrative, record_hash))
