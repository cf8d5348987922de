"""Patient facts for the safety rules: the guideline engine's facts, read from plausible labs only.

A lab value that is not a number or lies outside its analyte's plausibility range (records/units.py)
is not a result - it is dropped here rather than allowed to drive a rule (a creatinine of 0 would
otherwise give an infinite eGFR).
"""

from __future__ import annotations

import dataclasses
import functools
import math

from diaguide.knowledge import text_facts
from diaguide.knowledge.conditions import Facts, derive, is_coded, knowledge, threshold
from diaguide.records import units
from diaguide.records.schema import Visit
from diaguide.safety.data import rules_data


@dataclasses.dataclass
class SafetyFacts(Facts):
    """The guideline engine's facts plus the conditions only the safety rules ask about
    (rules.yaml `conditions`: acute heart failure, hypoxia, ketoacidosis ...)."""

    extra: frozenset[str] = frozenset()

    def has(self, name: str) -> bool:
        return bool(getattr(self, name, False)) or name in self.extra


def _plausible(loinc: str, value: float) -> bool:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    analyte = units.analyte_for(loinc)
    return analyte is None or analyte.low <= value <= analyte.high


def _hypo_coded_in_history(visit: Visit, region: str) -> bool:
    """A hypoglycaemia code (E11.64x, E16.x ...) on an earlier visit within the recent window."""
    codes = tuple(knowledge()["conditions"]["hypoglycaemia"].get("icd10", []))
    days = threshold(region, "recent_hypo_days")
    for past in visit.history:
        if 0 <= (visit.date - past.date).days <= days and any(str(c).upper().startswith(codes) for c in past.diagnoses):
            return True
    return False


def _recent_history_egfr(visit: Visit) -> float | None:
    """The latest plausible eGFR of an earlier visit within `settings.egfr_history_days`."""
    days = rules_data()["settings"]["egfr_history_days"]
    recent = [
        p
        for p in visit.history
        if p.egfr is not None and _plausible("33914-3", p.egfr) and 0 <= (visit.date - p.date).days <= days
    ]
    return max(recent, key=lambda p: p.date).egfr if recent else None


def patient_facts(visit: Visit, region: str) -> SafetyFacts:
    """`conditions.derive` on a copy of the visit without implausible lab values; recent
    hypoglycaemia also read from the diagnosis codes of earlier visits, and eGFR from an earlier
    visit when this one has neither eGFR nor creatinine."""
    labs = [lab for lab in visit.labs if _plausible(lab.loinc, lab.value)]
    if len(labs) != len(visit.labs):
        visit = visit.model_copy(update={"labs": labs})
    facts = derive(visit, region)
    values = {f.name: getattr(facts, f.name) for f in dataclasses.fields(facts)}
    if facts.egfr is None:
        values["egfr"] = _recent_history_egfr(visit)
    if not facts.recent_hypo and _hypo_coded_in_history(visit, region):
        values["recent_hypo"] = True
    conditions = rules_data().get("conditions") or {}
    notes = text_facts.read(visit, _vocabulary())
    extra, evidence = set(), dict(values["evidence"])
    for name, spec in conditions.items():
        words, coded = text_facts.counted(notes, name, spec), is_coded(visit, spec)
        if coded or words:
            extra.add(name)
            if words and not coded:
                evidence[name] = words
    values["evidence"] = evidence
    return SafetyFacts(**values, extra=frozenset(extra))


@functools.cache
def _vocabulary() -> text_facts.Vocabulary:
    """The text patterns of the conditions only the safety rules ask about (rules.yaml `conditions`)."""
    return text_facts.vocabulary(rules_data().get("conditions") or {})
