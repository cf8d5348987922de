"""The medication-safety checker: any Plan (from a model, the guideline engine or a physician)
against its Visit -> findings a physician can act on.

Every drug is normalised through the formulary first (brand, Chinese, codes). Then: per-drug
contraindications (rules.yaml), drug-drug interactions (knowledge/interactions.yaml), duplicates,
dose ceilings, allergies, type 1 without insulin, an SGLT2i with a sharp insulin cut. A drug the
formulary does not know is reported, never skipped silently; a rule that needs a lab that is not
on file says which lab is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from diaguide.errors import InputError
from diaguide.knowledge.regions import resolve_region
from diaguide.records.schema import Finding, Plan, Visit
from diaguide.safety import checks
from diaguide.safety.complexity import complexity
from diaguide.safety.facts import patient_facts
from diaguide.safety.interactions import interactions
from diaguide.safety.regimen import build_regimen
from diaguide.safety.rules import contraindications

_RANK = {"critical": 0, "warning": 1, "info": 2}
FLAG_SEVERITIES = frozenset({"warning", "critical"})  # what "a safety rule flags" means for a suggestion
_PROMPT_PREFIX = {"en": "Safety (critical): ", "zh": "安全警示（严重）："}


def _as_model(value: Any, model: type[Visit] | type[Plan], what: str) -> Any:
    if isinstance(value, model):
        return value
    if value is None and model is Plan:
        return Plan()
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or None
        raise InputError(err.get("msg", "invalid"), source=what, field=field) from None


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop exact repeats, keep order."""
    seen: set[str] = set()
    out = []
    for f in findings:
        key = f.model_dump_json()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def check(visit: Visit, plan: Plan, region: str | None = "ada") -> list[Finding]:
    """Safety findings for `plan` given `visit`, most severe first.

    Args:
        visit: the patient record the plan is for.
        plan: the plan to check; stopped drugs are not checked, current medications the plan does
            not mention are taken to continue.
        region: `ada` or `cds` (thresholds that differ, e.g. metformin and eGFR); None reads
            `$DIAGUIDE_REGION`.
    """
    region = resolve_region(region)
    visit = _as_model(visit, Visit, "visit")
    plan = _as_model(plan, Plan, "plan")
    facts = patient_facts(visit, region)
    regimen = build_regimen(visit, plan)
    findings = [
        *checks.unknown_drugs(regimen, facts),
        *contraindications(regimen, facts, region),
        *checks.type1_without_insulin(regimen, facts),
        *checks.allergies(regimen, facts, visit.allergies),
        *interactions(regimen, facts),
        *checks.duplicates(regimen, facts),
        *checks.doses(regimen, facts, region),
        *checks.sglt2i_insulin_cut(regimen, facts),
        *checks.over_basalisation(regimen, facts),
    ]
    return sorted(dedupe(findings), key=lambda f: _RANK[f.severity])


def flags_on_proposed(plan: Plan | None, findings: Iterable[Finding]) -> list[Finding]:
    """Warning/critical findings that name a drug the plan starts, continues or adjusts."""
    if plan is None:
        return []
    proposed = {m.drug.strip().lower() for m in plan.medications if m.action != "stop"}
    return [f for f in findings if f.severity in FLAG_SEVERITIES and proposed & {d.strip().lower() for d in f.drugs}]


def apply_safety(visit: Visit, plan: Plan, region: str | None = "ada") -> Plan:
    """A copy of `plan` with its safety findings attached and a physician prompt per critical finding."""
    plan = _as_model(plan, Plan, "plan")
    out = plan.model_copy(deep=True)
    out.findings = dedupe([*out.findings, *check(visit, plan, region)])
    visit_model = _as_model(visit, Visit, "visit")
    prefix = _PROMPT_PREFIX.get(visit_model.language, _PROMPT_PREFIX["en"])
    prompts = list(out.prompts)
    for f in out.findings:
        if f.severity != "critical":
            continue
        text = f"{prefix}{f.message}"
        if text not in prompts:
            prompts.append(text)
    out.prompts = prompts
    return out


def load_plan(path: str | Path) -> Plan:
    """A Plan from a JSON file holding a Plan or a {"plan": Plan} record.

    Raises:
        InputError: missing or unreadable file, bad JSON, or a field that is not a valid Plan field.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("plan file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read plan file: {exc.__class__.__name__}", source=source) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source) from None
    if isinstance(data, dict) and isinstance(data.get("plan"), dict):
        data = data["plan"]
    if not isinstance(data, dict):
        raise InputError('expected a JSON object (a Plan, or {"plan": ...})', source=source)
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or None
        raise InputError(err.get("msg", "invalid value"), source=source, field=field) from None


def check_command(input: str, fmt: str = "visit", plan: str | None = None, region: str | None = None) -> int:
    """`diaguide check`: print {"findings": [...], "complexity": {...}} as JSON on stdout."""
    from diaguide.records.io import load_visit

    if not plan:
        raise InputError("a plan file is required", field="--plan")
    region = resolve_region(region)
    the_plan = load_plan(plan)
    visit = load_visit(input, fmt)
    findings = check(visit, the_plan, region)
    out = {
        "findings": [f.model_dump(mode="json") for f in findings],
        "complexity": complexity(visit, region).model_dump(mode="json"),
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0
