"""The facts that rest on the notes, added to what conditions.derive read from codes and lab results.

Each fact the notes decide is recorded with the words it came from (`Facts.evidence`, keyed by the Facts field),
so a decision or finding that rests on it can quote them. Values written in text compete with coded results by
date (the newest wins; a disagreement is written into `Facts.conflicts`). Possible mentions of conditions marked
`ask` become `Facts.possible`: questions for the physician, never grounds for a decision (docs/notes.md).
"""

from __future__ import annotations

from typing import Any

from diaguide.drugs.formulary import ingredients
from diaguide.knowledge.text_facts import counted, newest
from diaguide.knowledge.text_match import mentions
from diaguide.notes import NoteFacts
from diaguide.records.schema import Evidence, Visit

# Facts fields read from a condition of guideline.yaml: field -> condition
FIELD_CONDITIONS = {
    "dialysis": "dialysis",
    "ascvd": "ascvd",
    "heart_failure": "heart_failure",
    "pregnant": "pregnancy",
    "men2_mtc": "men2_mtc",
    "pancreatitis": "pancreatitis",
    "hepatic_impairment": "hepatic_impairment",
    "alcohol_abuse": "alcohol_abuse",
    "bowel_disease": "bowel_disease",
    "masld": "masld",
    "recent_hypo": "hypoglycaemia",
    "severe_hypo": "severe_hypoglycaemia",
    "gastroparesis": "gastroparesis",
    "autoimmune_diabetes": "autoimmune_diabetes",
    "ketoacidosis": "ketoacidosis",
    "sglt2i_genital_infection": "sglt2i_genital_infection",
    "fournier": "fournier",
    "bladder_cancer": "bladder_cancer",
    "breastfeeding": "breastfeeding",
    "pregnancy_planning": "pregnancy_planning",
    "declines_injections": "declines_injections",
    "cost_concern": "cost_concern",
    "falls": "falls",
}
# facts only the notes give (no Facts field of conditions.derive before them)
NEW_FIELDS = (
    "gastroparesis",
    "autoimmune_diabetes",
    "ketoacidosis",
    "sglt2i_genital_infection",
    "fournier",
    "bladder_cancer",
    "breastfeeding",
    "pregnancy_planning",
    "declines_injections",
    "cost_concern",
    "falls",
)


def _recent(e: Evidence, visit: Visit, days: int) -> bool:
    """A value the text dates within `days` of the visit, or undated (the notes of this visit speak of now)."""
    return e.date is None or 0 <= (visit.date - e.date).days <= days


def complete(
    visit: Visit, f: dict[str, Any], notes: NoteFacts, conditions: dict, allergy_cross: list, coded, threshold
) -> None:
    """Add the notes' facts, evidence, conflicts and questions to a derive() field dict, in place.

    Args:
        visit: the visit.
        f: conditions.derive's fields so far (booleans read from codes and text, lab values from coded results).
        notes: the visit's text facts (`text_facts.read`).
        conditions: guideline.yaml `conditions`.
        allergy_cross: guideline.yaml `allergy_cross` (a sulfonamide allergy rules out sulfonylureas).
        coded: `coded(visit, spec) -> bool`, whether a condition is coded in the record.
        threshold: `threshold(name)`, the region's threshold value.
    """
    evidence: dict[str, list[Evidence]] = {}
    for field in NEW_FIELDS:
        f[field] = False
    for field, name in FIELD_CONDITIONS.items():
        spec = conditions[name]
        words, is_coded = counted(notes, name, spec), coded(visit, spec)
        if field in NEW_FIELDS:
            f[field] = is_coded or bool(words)
        if words and f.get(field) and not is_coded:
            evidence[field] = words

    # kidney: the newest eGFR, coded or written (a value in this visit's present illness is this visit's)
    _newest_value(visit, f, notes, "egfr", "egfr", threshold("lab_conflict_egfr"), evidence)
    _newest_value(visit, f, notes, "hba1c", "hba1c", 0.5, evidence)
    if f["egfr"] is not None and f["egfr"] < 15 and "egfr" in evidence and not f["dialysis"]:
        f["ckd"] = True

    # hypoglycaemia: low readings written in the notes count like the word (ADA 2025 Table 6.3)
    window = threshold("recent_hypo_days")
    low = [
        e for e in notes.values("glucose") if e.value < threshold("hypo_glucose_below") and _recent(e, visit, window)
    ]
    if low:
        f["recent_hypo"] = True
        evidence.setdefault("recent_hypo", []).extend(low)
        if any(e.value < threshold("severe_hypo_glucose_below") for e in low):
            f["severe_hypo"] = True
            evidence.setdefault("severe_hypo", []).extend(
                e for e in low if e.value < threshold("severe_hypo_glucose_below")
            )
    if f["recent_hypo"] and f["falls"] and "falls" in evidence:
        evidence["recent_hypo"] = [*evidence.get("recent_hypo", []), *evidence["falls"]]

    # autoimmune diabetes: antibodies, LADA, or a low C-peptide written in the notes
    low_cpep = [e for e in notes.values("c_peptide") if e.value < threshold("c_peptide_low_below")]
    if low_cpep:
        f["autoimmune_diabetes"] = True
        evidence.setdefault("autoimmune_diabetes", []).extend(low_cpep)

    # drugs the notes say the patient cannot take: intolerance, allergy (their classes, through the formulary)
    intolerance = counted(notes, "drug_intolerance", conditions["drug_intolerance"])
    f["intolerant_classes"] = _classes_named(intolerance)
    if f["intolerant_classes"]:
        evidence["intolerant_classes"] = intolerance
    # "二甲双胍过敏（胃肠道不耐受）": an intolerance written as an allergy is an intolerance
    intolerance_texts = {e.text for e in intolerance}
    allergy_words = [
        e for e in counted(notes, "drug_allergy", conditions["drug_allergy"]) if e.text not in intolerance_texts
    ]
    # what the allergy list already holds is checked there (safety/checks.py); the notes add what it lacks
    f["text_allergy_classes"] = (_classes_named(allergy_words) | _cross_classes(allergy_words, allergy_cross)) - set(
        f["allergy_classes"]
    )
    if f["text_allergy_classes"]:
        f["allergy_classes"] = set(f["allergy_classes"]) | f["text_allergy_classes"]
        evidence["allergy_classes"] = allergy_words

    f["possible"] = [
        e
        for name, spec in conditions.items()
        if spec.get("ask")
        for e in notes.of(name, "possible")
        if not f.get(_field_of(name))
    ]
    f["evidence"] = evidence


def _field_of(condition: str) -> str:
    return next((field for field, name in FIELD_CONDITIONS.items() if name == condition), condition)


def _newest_value(
    visit: Visit, f: dict, notes: NoteFacts, analyte: str, field: str, conflict_at: float, evidence: dict
) -> None:
    """Replace a coded value by a newer one written in the notes; a disagreement between them is kept."""
    written = newest(notes.values(analyte))
    if written is None:
        return
    coded_value, coded_date = f[field], f.get(f"{field}_date")
    if coded_value is None or (written.date is not None and (coded_date is None or written.date > coded_date)):
        if coded_value is not None and abs(coded_value - written.value) >= conflict_at:
            f.setdefault("conflicts", []).append((analyte, written, coded_value, coded_date))
        f[field] = written.value
        f[f"{field}_date"] = written.date
        if field == "egfr":
            f["egfr_estimated"] = False
        evidence[field] = [written]


def _classes_named(words: list[Evidence]) -> set[str]:
    """The drug classes of the drugs a mention's clause names ("二甲双胍胃肠道反应重" -> metformin)."""
    return {d.drug_class for e in words for d in ingredients(e.text)} - {"other"}


def _cross_classes(words: list[Evidence], allergy_cross: list) -> set[str]:
    """Classes an allergy written in the notes rules out by cross-reaction (a sulfonamide allergy: sulfonylureas)."""
    out: set[str] = set()
    for cross in allergy_cross:
        if words and mentions([e.text for e in words], cross["patterns"]):
            out |= set(cross["classes"])
    return out
