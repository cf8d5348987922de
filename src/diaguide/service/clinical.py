"""The service's one door to the clinical layers: records in, a checked Plan and a complexity out.

`service` only wires the others together (docs/design.md): FHIR reading, the guideline engine, the safety
checker and the complexity score are plain imports — a build ships all of them, so nothing here falls back to
"other" or None as if one could be missing. A visit's facts are read once per request (`facts_once`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Any

from diaguide import clinical_data
from diaguide.errors import InputError
from diaguide.knowledge import guideline
from diaguide.knowledge.conditions import facts_once
from diaguide.records import fhir
from diaguide.records.schema import Finding, MedicationOrder, Plan, Visit
from diaguide.safety.checker import apply_safety, check
from diaguide.safety.complexity import complexity as score_complexity
from diaguide.service.inputs import check_json


@dataclasses.dataclass
class Result:
    visit: Visit
    plan: Plan
    complexity: dict[str, Any] | None
    record_hash: str
    engine_ms: float
    warnings: list[str] = dataclasses.field(default_factory=list)
    plan_source: str = "guideline"  # or "submitted": a physician's or a model's plan was checked


def record_hash(visit: Visit) -> str:
    """sha256 of the visit's canonical JSON: the key of cached narratives and stored plans."""
    canonical = json.dumps(visit.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def rule_version() -> str:
    """Which rules produced a recommendation: a hash of every clinical data file (`clinical_data.version`, cached
    there once per process)."""
    return clinical_data.version()


def visits_from_bundle(bundle: dict[str, Any], source: str = "<bundle>") -> tuple[list[Visit], list[str]]:
    return fhir.visits_from_bundle(bundle, source=source)


def latest_visit(visits: list[Visit], source: str) -> Visit:
    if not visits:
        raise InputError("no visit could be read from the record", source=source)
    return max(visits, key=lambda v: v.date)


def visit_from_payload(payload: Any, source: str = "request") -> tuple[Visit, list[str]]:
    """A Visit from a Visit JSON, a FHIR Bundle, or {"visit": ...} / {"bundle": ...}."""
    if not isinstance(payload, dict):
        raise InputError("expected a JSON object (a Visit or a FHIR Bundle)", source=source)
    check_json(payload, source)  # depth, NUL bytes, lone surrogates: named here, not a 500 later
    if "bundle" in payload and isinstance(payload["bundle"], dict):
        payload = payload["bundle"]
    elif "visit" in payload and isinstance(payload["visit"], dict):
        payload = payload["visit"]
    if payload.get("resourceType") == "Bundle":
        visits, warnings = visits_from_bundle(payload, source=source)
        return latest_visit(visits, source), warnings
    if "resourceType" in payload:
        raise InputError(f"expected a Bundle, got {payload['resourceType']}", source=source, field="resourceType")
    try:
        return Visit.model_validate(payload), []
    except ValueError as exc:
        raise InputError(_first_error(exc), source=source) from None


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc).splitlines()[0]


def plan_from_payload(payload: Any, source: str = "request") -> Plan | None:
    """The plan submitted with a visit ({"visit": ..., "plan": ...}, e.g. a physician's or a model's), if any."""
    if not isinstance(payload, dict) or not isinstance(payload.get("plan"), dict):
        return None
    try:
        return Plan.model_validate(payload["plan"])
    except ValueError as exc:
        raise InputError(_first_error(exc), source=source, field="plan") from None


def recommend(visit: Visit, region: str = "ada", warnings: list[str] | None = None, plan: Plan | None = None) -> Result:
    """Safety findings + complexity for `plan` (default: the guideline engine's plan) for one visit."""
    start = time.perf_counter()
    source = "guideline" if plan is None else "submitted"
    with facts_once():  # the guideline engine, the checker and the complexity score read the visit once
        if plan is None:
            plan = guideline.recommend(visit, region=region)
        plan = apply_safety(visit, plan.model_copy(update={"findings": []}), region=region)
        complexity = score_complexity(visit).model_dump(mode="json")
    engine_ms = (time.perf_counter() - start) * 1000
    return Result(visit, plan, complexity, record_hash(visit), engine_ms, list(warnings or []), source)


def check_orders(visit: Visit, orders: list[MedicationOrder], region: str = "ada") -> list[Finding]:
    """Safety findings for draft orders, judged against what the patient already takes."""
    ordered = {o.drug.lower() for o in orders}
    current = [
        MedicationOrder(drug=m.drug, drug_class=m.drug_class, action="continue", dose=m.dose, frequency=m.frequency)
        for m in visit.medications
        if m.drug.lower() not in ordered
    ]
    return list(check(visit, Plan(medications=[*current, *orders]), region=region))


def current_findings(visit: Visit, region: str = "ada") -> list[Finding]:
    """Warning and critical findings on the drugs the patient takes now, whatever a plan will do.

    The checker is run on the current list as a plan that continues everything, so a drug that is
    contraindicated today (metformin at eGFR 24) is named even when the plan stops it
    (docs/security.md, "Cards for current drugs")."""
    if not visit.medications:
        return []
    taking = {m.drug.strip().lower() for m in visit.medications}
    continue_all = Plan(
        medications=[
            MedicationOrder(drug=m.drug, drug_class=m.drug_class, action="continue", dose=m.dose, frequency=m.frequency)
            for m in visit.medications
        ]
    )
    return [
        f
        for f in check(visit, continue_all, region=region)
        if f.severity != "info" and taking & {d.strip().lower() for d in f.drugs}
    ]
