"""Hypoglycaemia and single-drug safety in the guideline's own plans (knowledge/deintensify.py):
each case is a plan the safety checker used to flag, fixed in the plan rather than in the rule."""

from __future__ import annotations

from diaguide.knowledge.guideline import recommend
from diaguide.records.schema import Plan, Visit
from diaguide.safety.checker import check

TODAY = "2025-06-15"


def _visit(*, age=55, hba1c=8.0, egfr=90.0, meds=(), allergies=(), language="en", history="T2DM for 8 years.") -> Visit:
    labs = [("4548-4", hba1c), ("33914-3", egfr), ("9318-7", 10)]
    return Visit.model_validate(
        {
            "visit_id": "d",
            "patient_id": "d",
            "date": TODAY,
            "language": language,
            "patient": {"age": age, "sex": "male", "bmi": 26.0, "weight_kg": 75},
            "present_illness": history,
            "diagnoses": [{"system": "icd10", "code": "E11.9", "icd10": "E11.9"}],
            "labs": [{"loinc": c, "value": v, "date": TODAY} for c, v in labs if v is not None],
            "medications": [{"drug": d, "drug_class": c, "dose": dose, "frequency": "qd"} for d, c, dose in meds],
            "allergies": [{"substance": s} for s in allergies],
        }
    )


def _order(plan: Plan, cls: str):
    return next(m for m in plan.medications if m.drug_class == cls)


def _warnings(visit: Visit, plan: Plan, region: str = "ada") -> list[str]:
    return [f.rule_id for f in check(visit, plan, region) if f.severity != "info"]


def test_sglt2i_added_to_a_sulfonylurea_lowers_the_sulfonylurea_dose():
    v = _visit(hba1c=8.2, meds=(("metformin", "metformin", "1000 mg bid"), ("glimepiride", "sulfonylurea", "2 mg")))
    plan = recommend(v)
    assert _order(plan, "sglt2i").action == "start"
    su = _order(plan, "sulfonylurea")
    assert su.action == "adjust" and su.dose == "1 mg" and "reduce" in su.reason
    assert _warnings(v, plan) == []


def test_add_on_lowers_insulin_by_no_more_than_a_fifth():
    v = _visit(
        egfr=50,
        hba1c=8.2,
        meds=(("metformin", "metformin", "1000 mg bid"), ("insulin glargine", "basal_insulin", "20 U")),
    )
    plan = recommend(v)
    assert _order(plan, "sglt2i").action == "start"
    insulin = _order(plan, "basal_insulin")
    assert insulin.action == "adjust" and insulin.dose == "18 U"
    assert _warnings(v, plan) == []


def test_older_adult_below_6_5_stops_the_sulfonylurea_and_lowers_insulin():
    v = _visit(
        age=78,
        hba1c=6.1,
        meds=(("glimepiride", "sulfonylurea", "2 mg"), ("insulin glargine", "basal_insulin", "20 U")),
    )
    plan = recommend(v)
    assert _order(plan, "sulfonylurea").action == "stop"
    assert _order(plan, "basal_insulin").action == "adjust" and _order(plan, "basal_insulin").dose == "17 U"
    assert "overtreatment_older_adult" not in _warnings(v, plan)


def test_sulfonamide_allergy_stops_glimepiride_and_another_class_replaces_it():
    v = _visit(
        hba1c=6.8,
        meds=(("metformin", "metformin", "1000 mg bid"), ("glimepiride", "sulfonylurea", "2 mg")),
        allergies=("penicillin", "Sulfa drugs"),
    )
    plan = recommend(v)
    assert _order(plan, "sulfonylurea").action == "stop" and "Sulfa drugs" in _order(plan, "sulfonylurea").reason
    new = [m.drug_class for m in plan.medications if m.action == "start"]
    assert new and "sulfonylurea" not in new
    assert _warnings(v, plan) == []


def test_a_sulfate_salt_allergy_is_not_a_sulfonamide_allergy():
    v = _visit(hba1c=6.8, meds=(("glimepiride", "sulfonylurea", "2 mg"),), allergies=("morphine sulfate",))
    assert _order(recommend(v), "sulfonylurea").action != "stop"


def test_glimepiride_stops_below_egfr_30_and_the_chinese_plan_says_why():
    v = _visit(egfr=24, hba1c=7.8, meds=(("格列美脲", "sulfonylurea", "2 mg"),), language="zh")
    plan = recommend(v, "cds")
    su = _order(plan, "sulfonylurea")
    assert su.action == "stop" and "停用" in su.reason
    assert not any(m.action == "start" and m.drug_class == "sulfonylurea" for m in plan.medications)
    assert "sulfonylurea_egfr_below_30" not in _warnings(v, plan, "cds")


def test_sitagliptin_gets_its_renal_dose():
    v = _visit(egfr=38, hba1c=6.8, meds=(("sitagliptin", "dpp4i", "100 mg"),))
    plan = recommend(v)
    assert _order(plan, "dpp4i").dose == "50 mg"
    assert not [r for r in _warnings(v, plan) if r.startswith("sitagliptin")]
