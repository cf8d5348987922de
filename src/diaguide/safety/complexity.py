"""How complex a record is: the cases where a physician must read the plan closely.

The score adds weights (complexity.yaml) for comorbidities and CKD stage, polypharmacy, a current
drug that conflicts with the patient's condition, recent hypoglycaemia, old age and very high HbA1c.
Every reason is listed, so the score can be checked by hand.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from diaguide import clinical_data
from diaguide.knowledge.conditions import Facts, has_condition_spec
from diaguide.knowledge.regions import resolve_region
from diaguide.records.schema import Plan, Visit
from diaguide.safety.facts import patient_facts
from diaguide.safety.regimen import build_regimen
from diaguide.safety.rules import holds, load_yaml, targets

COMPLEXITY_PATH = clinical_data.path("safety/complexity.yaml")


class Complexity(BaseModel):
    score: int = Field(ge=0)
    level: Literal["low", "moderate", "high"]
    reasons: list[str] = Field(default_factory=list)


def _texts(visit: Visit) -> list[str]:
    texts = [visit.chief_complaint, visit.present_illness, visit.past_history]
    texts += [d.display for d in visit.diagnoses]
    return [t for t in texts if t]


def _fact(facts: Facts, name: str) -> bool:
    if name == "type1":
        return facts.diabetes_type == "1"
    return bool(getattr(facts, name, False))


def complexity(visit: Visit, region: str | None = None, facts: Facts | None = None) -> Complexity:
    """Score a visit's record: low (<3), moderate (3-5) or high (6+) with the reasons (in Chinese for a
    Chinese visit)."""
    cfg: dict[str, Any] = load_yaml(COMPLEXITY_PATH)
    facts = facts or patient_facts(visit, resolve_region(region))
    texts = _texts(visit)
    zh = visit.language == "zh"
    score, reasons = 0, []

    def named(item: dict[str, Any]) -> str:
        return str(item.get("zh") or item["name"]) if zh else str(item["name"])

    def add(weight: int, reason: str) -> None:
        nonlocal score
        score += int(weight)
        reasons.append(f"{reason} (+{weight})")

    stage_weight = cfg["ckd_stage_weights"].get(facts.ckd_stage or "", 0) if facts.ckd_stage else 0
    if stage_weight:
        add(stage_weight, f"CKD {facts.ckd_stage}期" if zh else f"CKD stage {facts.ckd_stage}")
    for item in cfg["comorbidities"]:
        present = _fact(facts, item["fact"]) if "fact" in item else has_condition_spec(visit, item, texts)
        if present:
            add(item["weight"], named(item))
    for band in cfg["age"]:
        if facts.age is not None and facts.age >= band["at_least"]:
            add(band["weight"], named(band))
    count = len({" ".join(m.drug.lower().split()) for m in visit.medications if m.drug})
    for band in cfg["polypharmacy"]:  # highest band first
        if count >= band["at_least"]:
            add(band["weight"], f"{named(band)}（{count}种）" if zh else f"{band['name']} ({count})")
            break
    for band in cfg["hba1c"]:
        if facts.hba1c is not None and facts.hba1c >= band["at_least"]:
            add(band["weight"], named(band))
    # the current medications, as if the plan continued them all
    regimen = build_regimen(visit, Plan())
    for conflict in cfg["conflicts"]:
        hit = next((e for e in regimen.current if targets(conflict, e) and holds(conflict["when"], facts, e)), None)
        if hit is not None:
            add(conflict["weight"], named(conflict))

    levels = cfg["levels"]
    level = "high" if score >= levels["high_at"] else "moderate" if score >= levels["moderate_at"] else "low"
    return Complexity(score=score, level=level, reasons=reasons)
