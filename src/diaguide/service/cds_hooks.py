"""CDS Hooks 2.0 services (3.0 additions accepted): discovery, patient-view, order-sign,
encounter-start and feedback (https://cds-hooks.hl7.org/2.0/).

Guideline and safety cards are computed inside the call (tens of milliseconds); the model's
narrative never is — see narrative.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from diaguide.errors import InputError
from diaguide.records.schema import Finding, MedicationOrder, Visit
from diaguide.service import engine
from diaguide.service.cards import finding_card, narrative_card, plan_card
from diaguide.service.deps import EHR, Ctx, audit_note, base_url
from diaguide.service.metrics import CARDS, ENGINE_SECONDS
from diaguide.service.prefetch import PREFETCH, DataUnavailable, gather
from diaguide.service.store import Card, Feedback, Recommendation, new_id

router = APIRouter(tags=["CDS Hooks"])

SERVICES: dict[str, dict[str, Any]] = {
    "diaguide-patient-view": {
        "hook": "patient-view",
        "title": "DiaGuide diabetes plan",
        "description": "Treatment goal, labs due and medication suggestions for a diabetes outpatient, safety-checked.",
    },
    "diaguide-order-sign": {
        "hook": "order-sign",
        "title": "DiaGuide medication safety",
        "description": "Checks draft medication orders against renal function, pregnancy, allergies and interactions.",
    },
    "diaguide-encounter-start": {
        "hook": "encounter-start",
        "title": "DiaGuide precompute",
        "description": "Prepares the plan and the model narrative when an encounter starts; returns no cards.",
    },
}


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
    return {"services": [{"id": sid, **spec, "prefetch": PREFETCH} for sid, spec in SERVICES.items()]}


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InputError("body is not valid JSON", source="request") from None


@router.post("/cds-services/{service_id}", summary="Call a CDS Hooks service")
async def call_service(service_id: str, request: Request, ctx: Ctx, caller: EHR) -> JSONResponse:
    service = SERVICES.get(service_id)
    if service is None:
        return _error(404, f"no CDS service {service_id!r}", request)
    audit_note(request, hook=service["hook"])
    try:
        call = HookRequest.model_validate(await _json(request))
    except InputError as exc:
        return _error(400, exc.line(), request)
    except ValidationError as exc:
        first = exc.errors()[0]
        return _error(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", request)
    if call.hook != service["hook"]:
        return _error(400, f"hook {call.hook!r} does not match service {service_id!r}", request)
    patient_id = call.context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        return _error(400, "context.patientId is required", request)
    draft_orders = call.context.get("draftOrders")
    if service["hook"] == "order-sign" and not (
        isinstance(draft_orders, dict) and draft_orders.get("resourceType") == "Bundle"
    ):
        return _error(400, "context.draftOrders must be a FHIR Bundle", request)
    if call.fhirServer and not _fhir_server_allowed(call.fhirServer, ctx.settings):
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
        visits, warnings = await anyio.to_thread.run_sync(engine.visits_from_bundle, bundle, "prefetch")
        visit = engine.latest_visit(visits, "prefetch")
    except InputError as exc:
        return _error(400, exc.line(), request)
    if service["hook"] == "order-sign":
        cards = await anyio.to_thread.run_sync(_order_sign_cards, visit, draft_orders, ctx.settings.region)
    else:
        cards = await _plan_cards(request, ctx, visit, warnings, patient_id, show=service["hook"] == "patient-view")
    counts = {level: sum(c["indicator"] == level for c in cards) for level in ("info", "warning", "critical")}
    for level, n in counts.items():
        if n:
            CARDS.labels(level).inc(n)
    audit_note(request, outcome="ok", **{f"cards_{k}": v for k, v in counts.items()})
    return JSONResponse({"cards": cards, "systemActions": []})


def _fhir_server_allowed(url: str, settings) -> bool:
    """Whether the service may read this fhirServer: listed, or any when the caller was authenticated.

    Without JWTs (demo) an open list would let anyone make the service fetch any URL (SSRF), so
    then only listed servers are read.
    """
    if not url.startswith(("https://", "http://")):
        return False
    if settings.fhir_servers:
        return any(url.startswith(prefix) for prefix in settings.fhir_servers)
    return settings.cds_auth == "jwt"


async def _plan_cards(
    request: Request, ctx: Ctx, visit: Visit, warnings: list[str], patient_id: str, show: bool
) -> list:
    result = await anyio.to_thread.run_sync(engine.recommend, visit, ctx.settings.region, warnings)
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
            rule_version=engine.rule_version(),
            region=ctx.settings.region,
            rxnorm_of=_rxnorm,
        )
    ]
    cards += [finding_card(f) for f in result.plan.findings if f.severity != "info"]
    ready = narrative.text if narrative is not None and narrative.status == "ready" else None
    cards.append(narrative_card(ready, f"{base}/page/narratives/{result.record_hash}", ctx.settings.model_version))
    rows = [rec] + [
        Card(uuid=c["uuid"], service="patient-view", recommendation_id=rec.id, indicator=c["indicator"]) for c in cards
    ]
    await anyio.to_thread.run_sync(lambda: ctx.store.add(*rows))
    return cards


def _rxnorm(drug: str) -> str | None:
    found = engine.formulary_lookup(drug)
    return getattr(found, "rxnorm", None) or None if found else None


def _draft_medications(bundle: dict[str, Any]) -> tuple[list[MedicationOrder], dict[str, str]]:
    orders, ids = [], {}
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "MedicationRequest":
            continue
        concept = res.get("medicationCodeableConcept") or {}
        codings = concept.get("coding") or []
        name = concept.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
        if not name:
            continue
        dosage = " ".join(d.get("text", "") for d in res.get("dosageInstruction") or [] if isinstance(d, dict)).strip()
        orders.append(
            MedicationOrder(drug=name, drug_class=engine.drug_class_of(name), action="start", dose=dosage or None)
        )
        if res.get("id"):
            ids[name] = f"MedicationRequest/{res['id']}"
    return orders, ids


def _concerns(f: Finding, orders: list[MedicationOrder]) -> bool:
    names = {o.drug.lower() for o in orders} | {o.drug_class for o in orders if o.drug_class != "other"}
    drugs = {d.lower() for d in f.drugs}
    return any(d in n or n in d for d in drugs for n in names)


def _order_sign_cards(visit: Visit, draft_orders: dict[str, Any], region: str) -> list[dict[str, Any]]:
    orders, ids = _draft_medications(draft_orders)
    if not orders:
        return []
    findings = [f for f in engine.check_orders(visit, orders, region) if _concerns(f, orders)]
    # a resource id per finding drug, so the card can offer to drop exactly that draft
    by_drug = {}
    for f in findings:
        for d in f.drugs:
            for o in orders:
                if (o.drug.lower() in d.lower() or d.lower() in o.drug.lower()) and o.drug in ids:
                    by_drug[d] = ids[o.drug]
    return [finding_card(f, resource_ids=by_drug) for f in findings if f.severity != "info"]


@router.post("/cds-services/{service_id}/feedback", summary="CDS Hooks feedback on cards")
async def feedback(service_id: str, request: Request, ctx: Ctx, caller: EHR) -> JSONResponse:
    service = SERVICES.get(service_id)
    if service is None:
        return _error(404, f"no CDS service {service_id!r}", request)
    audit_note(request, hook=service["hook"])
    try:
        items = (await _json(request))["feedback"]
        rows = [_feedback_row(item, service["hook"], caller) for item in items]
    except InputError as exc:
        return _error(400, exc.line(), request)
    except (KeyError, TypeError, AttributeError, ValueError):
        return _error(400, 'body must be {"feedback": [{"card", "outcome", ...}]}', request)
    await anyio.to_thread.run_sync(lambda: ctx.store.add(*rows))
    audit_note(request, outcome="ok")
    return JSONResponse({})


def _feedback_row(item: dict[str, Any], hook: str, caller: str | None) -> Feedback:
    card, outcome = item["card"], item["outcome"]
    if not isinstance(card, str) or outcome not in ("accepted", "overridden"):
        raise InputError("each feedback needs a card uuid and outcome accepted|overridden", field="feedback")
    reason = (item.get("overrideReason") or {}).get("reason") or {}
    comment = (item.get("overrideReason") or {}).get("userComment")
    when = item.get("outcomeTimestamp")
    return Feedback(
        channel="cds",
        service=hook,
        card_uuid=card[:64],
        outcome=outcome,
        override_reason=(reason.get("code") or reason.get("display") or None) if isinstance(reason, dict) else None,
        comment=str(comment)[:2000] if comment else None,
        accepted_suggestions=[s.get("id") for s in item.get("acceptedSuggestions") or [] if isinstance(s, dict)],
        principal=caller,
        outcome_at=dt.datetime.fromisoformat(when.replace("Z", "+00:00")) if isinstance(when, str) else None,
    )
