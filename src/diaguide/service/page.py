"""The physician page: server-rendered (Jinja2, no build step), English and Chinese.

Pick a sample patient or paste a record, see the plan in three parts with every finding beside
the medication it concerns, the complexity and the lab evidence, then accept, modify or reject
with a reason — stored as feedback. Without a login it shows nothing but the login form,
except in demo mode (synthetic patients, labelled on every page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from diaguide.errors import InputError
from diaguide.records.schema import Plan, Visit
from diaguide.service import engine
from diaguide.service.auth_users import COOKIE, Principal, authenticate
from diaguide.service.deps import Ctx, audit_note, current_user
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
    response = templates.TemplateResponse(
        request,
        name,
        {"t": TEXT[lang], "lang": lang, "demo": ctx.settings.demo, "viewer": viewer, "action_zh": ACTION_ZH, **context},
        status_code=status,
    )
    if request.query_params.get("lang") in TEXT:
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400)
    return response


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
) -> Response:
    principal = authenticate(ctx.store, username[:100], password[:200])
    if principal is None:
        audit_note(request, outcome="login_failed")
        return _render(request, ctx, "login.html", None, status=401, failed=True, next=_safe_next(next))
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
def logout() -> Response:
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
) -> Response:
    if viewer is None:
        return _login_redirect(request)
    try:
        if record.strip():
            payload = parse_json(record, "pasted record", invalid="the pasted text is not JSON")
            visit, warnings = await anyio.to_thread.run_sync(engine.visit_from_payload, payload, "pasted record")
            submitted = engine.plan_from_payload(payload, "pasted record")
        else:
            chosen = next((s for s in ctx.samples if s.id == sample), None)
            if chosen is None:
                raise InputError("choose a sample patient or paste a record", field="sample")
            visit, warnings, submitted = chosen.visit, [], chosen.plan
    except InputError as exc:
        audit_note(request, outcome="bad_request")
        return _render(request, ctx, "index.html", viewer, status=400, samples=ctx.samples, error=exc.line())
    result = await anyio.to_thread.run_sync(engine.recommend, visit, ctx.settings.region, warnings, submitted)
    row = await anyio.to_thread.run_sync(store_result, ctx, result, "page")
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
) -> Response:
    if viewer is None:
        return _login_redirect(request)
    if outcome not in ("accepted", "modified", "rejected") or ctx.store.get(Recommendation, recommendation_id) is None:
        audit_note(request, outcome="bad_request")
        return Response("bad feedback", status_code=400)
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
    return RedirectResponse(f"/page/recommendations/{recommendation_id}?saved=1", status_code=303)


@router.get("/page/narratives/{record_hash}", response_class=HTMLResponse)
def narrative_page(record_hash: str, request: Request, ctx: Ctx, viewer: Viewer) -> Response:
    if viewer is None:
        return _login_redirect(request)
    return _render(request, ctx, "narrative.html", viewer, narrative=ctx.store.get(Narrative, record_hash))
