"""CDS Hooks cards from a checked Plan (CDS Hooks 2.0 §Card Attributes).

One plan card (treatment with its goal, medications, labs, cautions; draft FHIR orders as
suggestions; a link to the full page) and one card per warning or critical safety finding
(critical = a contraindication, `overrideReasons` offered). Every `summary` stays under
140 characters, as the spec requires.
"""

from __future__ import annotations

import uuid
from typing import Any

from diaguide.records.schema import Finding, LabOrder, MedicationOrder, Plan
from diaguide.service.narrative_text import readable

SUMMARY_LIMIT = 139
SOURCE = {"label": "DiaGuide guideline and safety engine"}
TOPIC_PLAN = {"system": "urn:diaguide:card-topic", "code": "diabetes-plan", "display": "Diabetes treatment plan"}
TOPIC_SAFETY = {"system": "urn:diaguide:card-topic", "code": "medication-safety", "display": "Medication safety"}
OVERRIDE_SYSTEM = "urn:diaguide:override-reason"
OVERRIDE_REASONS = [
    {"code": "patient-aware", "system": OVERRIDE_SYSTEM, "display": "Patient aware of the risk and agrees"},
    {"code": "benefit-outweighs-risk", "system": OVERRIDE_SYSTEM, "display": "Benefit outweighs the risk"},
    {"code": "already-addressed", "system": OVERRIDE_SYSTEM, "display": "Already addressed / monitored"},
    {"code": "not-applicable", "system": OVERRIDE_SYSTEM, "display": "Does not apply to this patient"},
]
_ICON = {"critical": "⛔", "warning": "⚠️", "info": "ℹ️"}


def clip(text: str, limit: int = SUMMARY_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def md(text: str) -> str:
    """Escape Markdown so record text can never become a link, image or heading in the EHR."""
    out = " ".join(str(text).split())
    for ch in "\\`*_[]<>#|!":
        out = out.replace(ch, "\\" + ch)
    return out


def _finding_line(f: Finding) -> str:
    drugs = f" ({md(', '.join(f.drugs))})" if f.drugs else ""
    return f"- {_ICON[f.severity]} **{f.severity}**{drugs}: {md(f.message)} — *{md(f.source)}* `{md(f.rule_id)}`"


def plan_summary(plan: Plan) -> str:
    parts = []
    if plan.hba1c_goal:
        parts.append(f"HbA1c goal <{plan.hba1c_goal:g}%")
    changes = [m for m in plan.medications if m.action != "continue"]
    parts += [f"{m.action} {m.drug}" for m in changes[:2]]
    if len(changes) > 2:
        parts.append(f"+{len(changes) - 2} more")
    if plan.labs:
        parts.append(f"{len(plan.labs)} lab{'s' if len(plan.labs) > 1 else ''} due")
    critical = sum(f.severity == "critical" for f in plan.findings)
    if critical:
        parts.append(f"{critical} critical safety finding{'s' if critical > 1 else ''}")
    return clip("DiaGuide: " + ("; ".join(parts) if parts else "no change suggested"))


def plan_detail(plan: Plan, complexity: dict[str, Any] | None, rule_version: str, region: str) -> str:
    lines = [f"**Treatment.** {md(plan.treatment) or '—'}", ""]
    if plan.medications:
        lines += ["**Medications**", "", "| action | drug | dose | frequency | why |", "|---|---|---|---|---|"]
        lines += [
            f"| {m.action} | {md(m.drug)} | {md(m.dose or '')} | {md(m.frequency or '')} | {md(m.reason)} |"
            for m in plan.medications
        ]
        lines.append("")
    if plan.labs:
        lines += ["**Labs due**", ""] + [
            f"- {md(lab.name or lab.loinc)} ({lab.loinc}): {md(lab.reason)}" for lab in plan.labs
        ]
        lines.append("")
    if plan.prompts:
        lines += ["**Cautions**", ""] + [f"- {md(p)}" for p in plan.prompts] + [""]
    if plan.findings:
        lines += ["**Safety findings**", ""] + [_finding_line(f) for f in plan.findings] + [""]
    if complexity:
        reasons = "; ".join(md(r) for r in complexity.get("reasons", []))
        lines.append(f"Record complexity: **{complexity.get('level')}** (score {complexity.get('score')}). {reasons}")
    lines.append(f"_Rules {rule_version}, guideline region {region.upper()}. A suggestion, not an order._")
    return "\n".join(lines)


def finding_card(f: Finding, *, resource_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """A card for one warning/critical finding; in order-sign it offers to drop the draft order."""
    drugs = ", ".join(f.drugs)
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": clip(
            f"{'Contraindicated' if f.severity == 'critical' else 'Caution'}: {drugs + ' — ' if drugs else ''}{f.message}"
        ),
        "indicator": f.severity,
        "detail": "\n".join([_finding_line(f), "", f"Rule `{md(f.rule_id)}`. Source: {md(f.source)}."]),
        "source": {**SOURCE, "topic": TOPIC_SAFETY},
        "overrideReasons": OVERRIDE_REASONS,
    }
    targets = [rid for drug, rid in (resource_ids or {}).items() if drug.lower() in {d.lower() for d in f.drugs}]
    if targets:
        card["suggestions"] = [
            {
                "label": f"Remove the draft order of {drugs}",
                "uuid": str(uuid.uuid4()),
                # CDS Hooks 2.0: resourceId is one relative reference per delete action
                "actions": [{"type": "delete", "description": f"Remove {rid}", "resourceId": rid} for rid in targets],
            }
        ]
        card["selectionBehavior"] = "at-most-one"
    return card


def current_drug_card(f: Finding, plan: Plan) -> dict[str, Any]:
    """A card of its own for a warning/critical finding on a drug the patient takes now: shown even
    when the plan stops the drug, since the patient may be taking it until someone acts."""
    drugs = {d.strip().lower() for d in f.drugs}
    stopped = any(m.action == "stop" and m.drug.strip().lower() in drugs for m in plan.medications)
    card = finding_card(f)
    label = "Contraindicated" if f.severity == "critical" else "Caution"
    card["summary"] = clip(f"Taking now — {label.lower()}: {', '.join(f.drugs)} — {f.message}")
    doing = "The plan above stops it." if stopped else "The plan above does not stop it."
    card["detail"] = f"**On the current medication list.** {doing}\n\n{card['detail']}"
    return card


def unreadable_card(problems: list[str]) -> dict[str, Any]:
    """An order-sign card saying which draft orders could not be read, so nobody takes them as checked."""
    n = len(problems)
    return {
        "uuid": str(uuid.uuid4()),
        "summary": clip(f"DiaGuide could not read {n} draft order{'s' if n > 1 else ''}: not safety-checked"),
        "indicator": "info",
        "detail": "\n".join(f"- {md(p)}" for p in problems[:20]),
        "source": {**SOURCE, "topic": TOPIC_SAFETY},
    }


def medication_request(m: MedicationOrder, patient_ref: str, rxnorm: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": m.drug}
    if rxnorm:
        concept["coding"] = [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm, "display": m.drug}
        ]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": patient_ref},
        "medicationCodeableConcept": concept,
    }
    dosage = " ".join(x for x in (m.dose, m.frequency) if x)
    if dosage:
        resource["dosageInstruction"] = [{"text": dosage}]
    if m.reason:
        resource["note"] = [{"text": m.reason}]
    return resource


def service_request(lab: LabOrder, patient_ref: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": patient_ref},
        "code": {"coding": [{"system": "http://loinc.org", "code": lab.loinc, "display": lab.name or lab.loinc}]},
        **({"reasonCode": [{"text": lab.reason}]} if lab.reason else {}),
    }


def plan_card(
    plan: Plan,
    *,
    complexity: dict[str, Any] | None,
    patient_id: str,
    link: str | None,
    rule_version: str,
    region: str,
    rxnorm_of=lambda drug: None,
) -> dict[str, Any]:
    patient_ref = f"Patient/{patient_id}"
    suggestions = []
    for m in plan.medications:
        if m.action in ("start", "adjust"):
            suggestions.append(
                {
                    "label": clip(f"{m.action.capitalize()} {m.drug} {m.dose or ''} {m.frequency or ''}", 80),
                    "uuid": str(uuid.uuid4()),
                    "actions": [
                        {
                            "type": "create",
                            "description": clip(f"Draft order: {m.drug}", 80),
                            "resource": medication_request(m, patient_ref, rxnorm_of(m.drug)),
                        }
                    ],
                }
            )
    for lab in plan.labs:
        suggestions.append(
            {
                "label": clip(f"Order {lab.name or lab.loinc}", 80),
                "uuid": str(uuid.uuid4()),
                "actions": [
                    {
                        "type": "create",
                        "description": f"Lab order {lab.loinc}",
                        "resource": service_request(lab, patient_ref),
                    }
                ],
            }
        )
    worst = (
        "critical"
        if any(f.severity == "critical" for f in plan.findings)
        else ("warning" if any(f.severity == "warning" for f in plan.findings) else "info")
    )
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": plan_summary(plan),
        "indicator": worst,
        "detail": plan_detail(plan, complexity, rule_version, region),
        "source": {**SOURCE, "topic": TOPIC_PLAN},
        "overrideReasons": OVERRIDE_REASONS,
    }
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    if link:
        card["links"] = [{"label": "Full recommendation and evidence", "url": link, "type": "absolute"}]
    return card


def narrative_card(text: str | None, link: str, model_version: str, language: str = "en") -> dict[str, Any]:
    """The model's narrative when ready, as sentences in the visit's language (`narrative_text.readable`, not the
    GOAL:/MED: lines the model writes); otherwise a link to where it will appear."""
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "indicator": "info",
        "source": {"label": f"DiaGuide model ({model_version})", "topic": TOPIC_PLAN},
        "links": [{"label": "Model narrative", "url": link, "type": "absolute"}],
    }
    if text:
        card["summary"] = "DiaGuide narrative (model draft, checked plan above)"
        card["detail"] = "  \n".join(md(line) for line in readable(text[:4000], language))
    else:
        card["summary"] = "DiaGuide narrative is being prepared — open the link in a moment"
    return card
