"""CDS Hooks 2.0 services (3.0 additions accepted): discovery, patient-view, order-sign,
encounter-start and feedback (https://cds-hooks.hl7.org/2.0/).

Guideline and safety cards are computed inside the call (tens of milliseconds); the model's
narrative never is — see narrative.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from diaguide.drugs.formulary import drug_class_of, lookup
from diaguide.errors import InputError
from diaguide.records.schema import Finding, MedicationOrder, Visit
from diaguide.service import clinical
from diaguide.service.cards import current_drug_card, finding_card, narrative_card, plan_card, unreadable_card
from diaguide.service.deps import EHR, Ctx, audit_note, base_url
from diaguide.service.inputs import parse_json
from diaguide.service.metrics import CARDS, ENGINE_SECONDS
from diaguide.service.prefetch import PREFETCH, DataUnavailable, fhir_server_allowed, gather
from diaguide.service.store import Card, Feedback, Recommendation, new_id

router = APIRouter(tags=["CDS Hooks"])
REASON_MAX: int = Feedback.__table__.c.override_reason.type.length  # characters the column holds


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str
    token_type: str = "Bearer"


class HookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    hook: str
    hookInstance: str
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


def _error(status: int, message: str, request: Request) -> JSONResponse:
    audit_note(
        request, outcome={400: "bad_request", 404: "unknown_service", 412: "data_unavailable"}.get(status, "error")
    )
    return JSONResponse({"error": message}, status_code=status)


@router.get("/cds-services", summary="CDS Hooks discovery")
def discovery(caller: EHR) -> dict[str, Any]:
    return {
        "services": [
            {"id": sid, "hook": svc.hook, "title": svc.title, "description": svc.description, "prefetch": PREFETCH}
            for sid, svc in SERVICES.items()
        ]
    }


async def _json(request: Request) -> Any:
    return parse_json(await request.body(), "request", invalid="body is not valid JSON")


@router.post("/cds-services/{service_id}", summary="Call a CDS Hooks service")
async def call_service(service_id: str, request: Request, ctx: Ctx, caller: EHR) -> JSONResponse:
    service = SERVICES.get(service_id)
    if service is None:
        return _error(404, f"no CDS service {service_id!r}", request)
    audit_note(request, hook=service.hook)
    try:
        call = HookRequest.model_validate(await _json(request))
    except InputError as exc:
        return _error(400, exc.line(), request)
    except ValidationError as exc:
        first = exc.errors()[0]
        return _error(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", request)
    if call.hook != service.hook:
        return _error(400, f"hook {call.hook!r} does not match service {service_id!r}", request)
    patient_id = call.context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        return _error(400, "context.patientId is required", request)
    problem = service.context_problem(call.context)
    if problem:
        return _error(400, problem, request)
    issuer_bases = ctx.settings.cds_issuer_fhir_servers.get(caller or "", [])
    if call.fhirServer and not fhir_server_allowed(call.fhirServer, ctx.settings.fhir_servers, issuer_bases):
        return _error(412, "fhirServer is not on this service's allow-list", request)
    try:
        bundle = await gather(
            call.prefetch,
            call.context,
            call.fhirServer,
            call.fhirAuthorization.access_token if call.fhirAuthorization else None,
            transport=ctx.fhir_transport,
            timeout=ctx.settings.fhir_timeout_seconds,
        )
    except DataUnavailable as exc:
        return _error(412, str(exc), request)
    try:
        visits, warnings = await anyio.to_thread.run_sync(clinical.visits_from_bundle, bundle, "prefetch")
        visit = clinical.latest_visit(visits, "prefetch")
    except InputError as exc:
        return _error(400, exc.line(), request)
    try:
        cards = await service.cards(HookCall(request, ctx, call, caller, visit, warnings, patient_id))
    except InputError as exc:
        return _error(400, exc.line(), request)
    counts = {level: sum(c["indicator"] == level for c in cards) for level in ("info", "warning", "critical")}
    for level, n in counts.items():
        if n:
            CARDS.labels(level).inc(n)
    audit_note(request, outcome="ok", **{f"cards_{k}": v for k, v in counts.items()})
    return JSONResponse({"cards": cards, "systemActions": []})


async def _plan_cards(hc: HookCall, show: bool) -> list:
    request, ctx, visit, warnings, patient_id = hc.request, hc.ctx, hc.visit, hc.warnings, hc.patient_id
    owner = (f"ehr:{hc.caller}" if hc.caller else "ehr")[:200], hc.call.context.get("userId")
    result = await anyio.to_thread.run_sync(clinical.recommend, visit, ctx.settings.region, warnings)
    ENGINE_SECONDS.observe(result.engine_ms / 1000)
    narrative = await anyio.to_thread.run_sync(ctx.narratives.ensure, result.record_hash, visit, result.plan)
    rec = Recommendation(
        id=new_id(),
        channel="cds",
        record_hash=result.record_hash,
        visit=visit.model_dump(mode="json"),
        plan=result.plan.model_dump(mode="json"),
        complexity=result.complexity,
        warnings=warnings,
        # docs/security.md#access-model: the EHR that asked, and its user, who may open the card's link
        created_by=owner[0],
        ehr_user=owner[1][:200] if isinstance(owner[1], str) and owner[1] else None,
    )
    audit_note(request, record_hash=result.record_hash, engine_ms=round(result.engine_ms, 2), recommendation_id=rec.id)
    if not show:
        await anyio.to_thread.run_sync(ctx.store.add, rec)
        return []
    base = base_url(request, ctx.settings)
    cards = [
        plan_card(
            result.plan,
            complexity=result.complexity,
            patient_id=patient_id,
            link=f"{base}/page/recommendations/{rec.id}",
            rule_version=clinical.rule_version(),
            region=ctx.settings.region,
            rxnorm_of=_rxnorm,
        )
    ]
    shown = [f for f in result.plan.findings if f.severity != "info"]
    cards += [finding_card(f) for f in shown]
    # a drug the patient takes now that the checker flags gets its own card, whatever the plan does with it
    same = {(f.rule_id, frozenset(d.lower() for d in f.drugs)) for f in shown}
    current = await anyio.to_thread.run_sync(clinical.current_findings, visit, ctx.settings.region)
    cards += [
        current_drug_card(f, result.plan)
        for f in current
        if (f.rule_id, frozenset(d.lower() for d in f.drugs)) not in same
    ]
    ready = narrative.text if narrative is not None and narrative.status == "ready" else None
    link = f"{base}/page/narratives/{result.record_hash}"
    cards.append(narrative_card(ready, link, ctx.settings.model_version, visit.language))
    rows = [rec] + [
        Card(uuid=c["uuid"], service=hc.call.hook, recommendation_id=rec.id, indicator=c["indicator"]) for c in cards
    ]
    await anyio.to_thread.run_sync(lambda: ctx.store.add(*rows))
    return cards


def _rxnorm(drug: str) -> str | None:
    found = lookup(drug)
    return getattr(found, "rxnorm", None) or None if found else None


def _draft_medications(bundle: dict[str, Any]) -> tuple[list[MedicationOrder], dict[str, str], list[str]]:
    """The draft medication orders, their resource ids, and one line per draft that could not be read.

    A draft whose fields have the wrong JSON types is skipped with its problem named (the EHR is
    told it was not checked); the other drafts are still checked.
    """
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InputError("must be a list", field="context.draftOrders.entry")
    orders, ids, problems = [], {}, []
    for i, entry in enumerate(entries):
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "MedicationRequest":
            continue
        where = f"context.draftOrders.entry[{i}].resource"
        try:
            name, dosage = _draft_name(res, where), _draft_dosage(res, where)
        except InputError as exc:
            problems.append(f"{exc.line()}; this draft was not checked")
            continue
        orders.append(MedicationOrder(drug=name, drug_class=drug_class_of(name), action="start", dose=dosage or None))
        if isinstance(res.get("id"), str) and res["id"]:
            ids[name] = f"MedicationRequest/{res['id']}"
    return orders, ids, problems


def _typed(value: Any, kind: type, field: str, what: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise InputError(f"must be {what}", field=field)
    return value


def _draft_name(res: dict[str, Any], where: str) -> str:
    field = f"{where}.medicationCodeableConcept"
    concept = _typed(res.get("medicationCodeableConcept"), dict, field, "a CodeableConcept object") or {}
    text = _typed(concept.get("text"), str, f"{field}.text", "a string")
    codings = _typed(concept.get("coding"), list, f"{field}.coding", "a list") or []
    displays = []
    for j, coding in enumerate(codings):
        _typed(coding, dict, f"{field}.coding[{j}]", "a Coding object")
        displays.append(_typed((coding or {}).get("display"), str, f"{field}.coding[{j}].display", "a string"))
    name = (text or "").strip() or next((d.strip() for d in displays if d and d.strip()), "")
    if not name:
        raise InputError("names no drug (text or coding display)", field=field)
    return name


def _draft_dosage(res: dict[str, Any], where: str) -> str:
    field = f"{where}.dosageInstruction"
    texts = []
    for j, dosage in enumerate(_typed(res.get("dosageInstruction"), list, field, "a list") or []):
        _typed(dosage, dict, f"{field}[{j}]", "a Dosage object")
        texts.append(_typed((dosage or {}).get("text"), str, f"{field}[{j}].text", "a string") or "")
    return " ".join(texts).strip()


def _concerns(f: Finding, orders: list[MedicationOrder]) -> bool:
    names = {o.drug.lower() for o in orders} | {o.drug_class for o in orders if o.drug_class != "other"}
    drugs = {d.lower() for d in f.drugs}
    return any(d in n or n in d for d in drugs for n in names)


def _order_sign_cards(visit: Visit, draft_orders: dict[str, Any], region: str) -> list[dict[str, Any]]:
    orders, ids, problems = _draft_medications(draft_orders)
    unread = [unreadable_card(problems)] if problems else []
    if not orders:
        return unread
    findings = [f for f in clinical.check_orders(visit, orders, region) if _concerns(f, orders)]
    # a resource id per finding drug, so the card can offer to drop exactly that draft
    by_drug = {}
    for f in findings:
        for d in f.drugs:
            for o in orders:
                if (o.drug.lower() in d.lower() or d.lower() in o.drug.lower()) and o.drug in ids:
                    by_drug[d] = ids[o.drug]
    return [finding_card(f, resource_ids=by_drug) for f in findings if f.severity != "info"] + unread


@dataclasses.dataclass(frozen=True)
class HookCall:
    """One call of a service, its record read: what a handler gets."""

    request: Request
    ctx: Any
    call: HookRequest
    caller: str | None  # the EHR's issuer, None in demo mode
    visit: Visit
    warnings: list[str]
    patient_id: str


@dataclasses.dataclass(frozen=True)
class HookService:
    """A CDS service: what discovery says of it, what its context must hold, and the handler that writes its cards
    (an InputError from the handler is a 400 naming the field). Adding a hook is one entry of `SERVICES`."""

    hook: str
    title: str
    description: str
    cards: Callable[[HookCall], Awaitable[list[dict[str, Any]]]]
    context_problem: Callable[[dict[str, Any]], str | None] = lambda context: None


async def _patient_view(hc: HookCall) -> list[dict[str, Any]]:
    return await _plan_cards(hc, show=True)


async def _encounter_start(hc: HookCall) -> list[dict[str, Any]]:
    return await _plan_cards(hc, show=False)  # stored and the narrative scheduled; no cards


async def _order_sign(hc: HookCall) -> list[dict[str, Any]]:
    drafts = hc.call.context["draftOrders"]
    return await anyio.to_thread.run_sync(_order_sign_cards, hc.visit, drafts, hc.ctx.settings.region)


def _needs_draft_orders(context: dict[str, Any]) -> str | None:
    drafts = context.get("draftOrders")
    if isinstance(drafts, dict) and drafts.get("resourceType") == "Bundle":
        return None
    return "context.draftOrders must be a FHIR Bundle"


SERVICES: dict[str, HookService] = {
    "diaguide-patient-view": HookService(
        "patient-view",
        "DiaGuide diabetes plan",
        "Treatment goal, labs due and medication suggestions for a diabetes outpatient, safety-checked.",
        _patient_view,
    ),
    "diaguide-order-sign": HookService(
        "order-sign",
        "DiaGuide medication safety",
        "Checks draft medication orders against renal function, pregnancy, allergies and interactions.",
        _order_sign,
        _needs_draft_orders,
    ),
    "diaguide-encounter-start": HookService(
        "encounter-start",
        "DiaGuide precompute",
        "Prepares the plan and the model narrative when an encounter starts; returns no cards.",
        _encounter_start,
    ),
}


@router.post("/cds-services/{service_id}/feedback", summary="CDS Hooks feedback on cards")
async def feedback(service_id: str, request: Request, ctx: Ctx, caller: EHR) -> JSONResponse:
    service = SERVICES.get(service_id)
    if service is None:
        return _error(404, f"no CDS service {service_id!r}", request)
    audit_note(request, hook=service.hook)
    try:
        body = await _json(request)
        items = body.get("feedback") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise InputError('body must be {"feedback": [{"card", "outcome", ...}]}', source="request")
        rows = [_feedback_row(item, f"feedback[{i}]", service.hook, caller) for i, item in enumerate(items)]
    except InputError as exc:
        return _error(400, exc.line(), request)
    # feedback only on cards this EHR was given (docs/security.md#access-model); another's card is unknown here
    uuids = [r.card_uuid for r in rows]
    if caller and await anyio.to_thread.run_sync(ctx.store.foreign_cards, uuids, f"ehr:{caller}"[:200]):
        return _error(404, "unknown card", request)
    await anyio.to_thread.run_sync(lambda: ctx.store.add(*rows))
    audit_note(request, outcome="ok")
    return JSONResponse({})


def _feedback_row(item: Any, where: str, hook: str, caller: str | None) -> Feedback:
    """One stored feedback row; an InputError naming the field (`feedback[1].overrideReason.reason.code`)."""
    _typed(item, dict, where, "an object")
    card, outcome = item.get("card"), item.get("outcome")
    if not isinstance(card, str) or outcome not in ("accepted", "overridden"):
        raise InputError("each feedback needs a card uuid and outcome accepted|overridden", field=where)
    override = _typed(item.get("overrideReason"), dict, f"{where}.overrideReason", "an object") or {}
    reason = _typed(override.get("reason"), dict, f"{where}.overrideReason.reason", "a Coding object") or {}
    label = None
    for key in ("code", "display"):
        field = f"{where}.overrideReason.reason.{key}"
        label = label or _typed(reason.get(key), str, field, "a string") or None
        if label and len(label) > REASON_MAX:
            raise InputError(f"longer than {REASON_MAX} characters", field=field)
    comment = _typed(override.get("userComment"), str, f"{where}.overrideReason.userComment", "a string")
    suggestions = _typed(item.get("acceptedSuggestions"), list, f"{where}.acceptedSuggestions", "a list") or []
    accepted = []
    for j, s in enumerate(suggestions):
        field = f"{where}.acceptedSuggestions[{j}]"
        accepted.append(_typed(_typed(s, dict, field, "an object").get("id"), str, f"{field}.id", "a string"))
    when = _typed(item.get("outcomeTimestamp"), str, f"{where}.outcomeTimestamp", "a string")
    try:
        outcome_at = dt.datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
    except ValueError:
        raise InputError("not an ISO 8601 date-time", field=f"{where}.outcomeTimestamp") from None
    return Feedback(
        channel="cds",
        service=hook,
        card_uuid=card[:64],
        outcome=outcome,
        override_reason=label,
        comment=comment[:2000] if comment else None,
        accepted_suggestions=[a for a in accepted if a],
        principal=caller,
        outcome_at=outcome_at,
    )
