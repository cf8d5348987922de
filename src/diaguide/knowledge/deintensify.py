"""Hypoglycaemia and single-drug safety in the guideline's plans: lower, stop or re-dose what the
safety checker (safety/rules.yaml, knowledge/interactions.yaml) would otherwise flag.

- an allergy on record (or a cross-reacting one: sulfonamide -> sulfonylurea) stops the class;
- glimepiride/gliclazide/glyburide stop below the renal limit (glipizide, insulin or linagliptin instead);
- an older adult below the de-intensification HbA1c stops the sulfonylurea and lowers insulin (ADA §13);
- premixed insulin with a separate basal insulin: the basal one stops;
- DPP-4 inhibitors get their renal dose;
- a DPP-4i or SGLT2i started next to a sulfonylurea or insulin lowers their dose (FDA Januvia,
  Jardiance labels), insulin by no more than the ketoacidosis limit.

Thresholds, drug lists and doses: guideline.yaml (`thresholds`, `drug_limits`, `allergy_cross`).
"""

from __future__ import annotations

from diaguide.drugs import classes as drug_classes
from diaguide.drugs.classes import INSULIN_CLASSES
from diaguide.drugs.formulary import drug_class_of, lookup
from diaguide.knowledge.conditions import knowledge, mentions
from diaguide.knowledge.plan_builder import PlanBuilder
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES

SECRETAGOGUES = ("sulfonylurea", "glinide")
_ONCE_DAILY = {"en": "once daily", "zh": "每日1次"}


def _generic(b: PlanBuilder, i: int) -> str | None:
    drug = lookup(b.current[i][0].drug)
    return drug.name if drug else None


def _stop_one(b: PlanBuilder, i: int, rule_id: str, replace: bool, **extra: object) -> None:
    if i in b.decided and b.decided[i].action == "stop":
        return
    b.order(i, "stop", b.say(rule_id, drug=b.current[i][0].drug, **extra))
    if replace and b.current[i][1] in GLUCOSE_LOWERING_CLASSES:
        b.to_replace += 1


def _allergen(b: PlanBuilder, cls: str) -> str:
    """The recorded allergen that rules out `cls` (its own class, or a cross-reacting one)."""
    named = [a.substance for a in b.visit.allergies if isinstance(a.substance, str) and a.substance.strip()]
    for substance in named:
        if drug_class_of(substance) == cls:
            return substance
    for cross in knowledge().get("allergy_cross") or []:
        if cls in cross["classes"]:
            hit = next((s for s in named if mentions([s], cross["patterns"])), None)
            if hit:
                return hit
    return next(iter(named), "")


def _allergies(b: PlanBuilder) -> None:
    """A current drug of a class the allergy list rules out: stop it, another class replaces it."""
    for i, (_med, cls) in enumerate(b.current):
        if cls not in b.f.allergy_classes:
            continue
        _stop_one(b, i, "allergy_stop", replace=True, substance=_allergen(b, cls))


def _renal_sulfonylureas(b: PlanBuilder) -> None:
    limit = b.t("su_stop_below_egfr")
    if b.f.egfr is None or b.f.egfr >= limit:
        return
    names = set(knowledge()["drug_limits"]["renal_sulfonylureas"]["drugs"])
    for i in b.meds_of("sulfonylurea"):
        if _generic(b, i) in names:
            _stop_one(b, i, "su_renal_stop", replace=True, limit=limit)


def _older_below_goal(b: PlanBuilder) -> None:
    """ADA 2025 §13: an older adult with HbA1c below the limit on a hypoglycaemia-causing drug."""
    f, limit = b.f, b.t("deintensify_hba1c_below")
    if not f.older or f.hba1c is None or f.hba1c >= limit:
        return
    for i in b.meds_of(*SECRETAGOGUES):
        _stop_one(b, i, "deintensify_su_older", replace=False, limit=limit)
    for i in b.meds_of(*INSULIN_CLASSES):
        if i not in b.decided:
            b.lower(i, "deintensify_insulin_older", b.t("insulin_reduce_factor"), limit=limit)


def _premixed_with_basal(b: PlanBuilder) -> None:
    # next to an SGLT2i, stopping a whole insulin is a cut far beyond ~20% (ketoacidosis): keep both
    if not b.meds_of("premixed_insulin") or b.meds_of("sglt2i"):
        return
    for i in b.meds_of("basal_insulin"):
        _stop_one(b, i, "premixed_with_basal", replace=False)


def _dpp4i_renal_dose(b: PlanBuilder) -> None:
    egfr = b.f.egfr
    if egfr is None:
        return
    doses = knowledge()["drug_limits"]["dpp4i_renal_doses"]
    for i in b.meds_of("dpp4i"):
        if i in b.decided:
            continue
        name = _generic(b, i)
        row = next((r for r in doses.get(name) or [] if egfr < r["egfr_below"]), None) if name else None
        if row is not None:
            b.order(i, "adjust", b.say("dpp4i_renal_dose", drug=b.current[i][0].drug, dose=row["dose"]),
                    row["dose"], _ONCE_DAILY[b.lang])  # fmt: skip
            b.lowered.add(i)


def safety_reductions(b: PlanBuilder) -> None:
    """Stops and dose changes for allergy, kidney function, over-treatment and duplicate insulin."""
    _allergies(b)
    _renal_sulfonylureas(b)
    _older_below_goal(b)
    _premixed_with_basal(b)
    _dpp4i_renal_dose(b)


def lower_for_add_on(b: PlanBuilder) -> None:
    """A DPP-4i or SGLT2i started next to a kept sulfonylurea/glinide or insulin: lower their dose."""
    added = [c for c in ("dpp4i", "sglt2i") if c in b.started]
    if not added:
        return
    names = ("、" if b.lang == "zh" else " / ").join(drug_classes.name(c, b.lang) for c in added)
    for classes, rule, factor in (
        (SECRETAGOGUES, "addon_reduce_su", b.t("su_reduce_factor")),
        (INSULIN_CLASSES, "addon_reduce_insulin", b.t("addon_insulin_factor")),
    ):
        for i in b.meds_of(*classes):
            decided = b.decided.get(i)
            if i in b.lowered or (decided is not None and decided.action == "stop"):
                continue
            b.lower(i, rule, factor, added=names)  # replaces a titration: one change at a time
