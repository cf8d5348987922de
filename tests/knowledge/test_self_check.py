"""The reference plan is checked against itself before it is proposed: an order the engine would start that the
safety checker calls critical for this visit is not proposed, and the plan says why (issue 20, item 2)."""

from __future__ import annotations

import datetime as dt

import pytest

from diaguide.cohort.generate import generate_cohort
from diaguide.knowledge.guideline import recommend
from diaguide.records.schema import Visit
from diaguide.safety.checker import check


def _arni_visit(language: str, arni: str) -> Visit:
    """Type 2 diabetes, CKD 3a with albuminuria and heart failure, on metformin and sacubitril/valsartan."""
    return Visit(
        visit_id="arni", patient_id="p", date=dt.date(2025, 6, 1), language=language, patient={"age": 64, "sex": "male"},
        diagnoses=[{"system": "icd10", "code": c} for c in ("E11.22", "N18.31", "I50.22")],
        labs=[{"loinc": "4548-4", "value": 7.8}, {"loinc": "33914-3", "value": 52}, {"loinc": "9318-7", "value": 120}],
        medications=[{"drug": "metformin", "drug_class": "metformin", "dose": "1000 mg", "frequency": "bid"},
                     {"drug": arni, "drug_class": "other", "dose": "49/51 mg", "frequency": "bid"}],
    )  # fmt: skip


@pytest.mark.parametrize(("language", "arni"), [("en", "Entresto"), ("en", "Entresto 49/"), ("zh", "诺欣妥")])
def test_no_ace_inhibitor_is_started_beside_sacubitril_valsartan(language, arni) -> None:
    visit = _arni_visit(language, arni)
    plan = recommend(visit)
    assert not [m for m in plan.medications if m.drug_class == "acei" and m.action == "start"]
    assert not [f for f in check(visit, plan) if f.severity == "critical"]
    said = [p for p in plan.prompts if "not started" in p or "未起始" in p]
    assert said and any("sacubitril" in p or "沙库巴曲" in p for p in said), plan.prompts


@pytest.mark.parametrize("region", ["ada", "cds"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_reference_plan_starts_a_drug_the_checker_calls_critical(lang, region) -> None:
    for record in generate_cohort(30, 5, lang):
        visit = record.visit
        plan = recommend(visit, region)
        started = {m.drug.lower() for m in plan.medications if m.action == "start"}
        for f in check(visit, plan, region):
            assert not (f.severity == "critical" and started & {d.lower() for d in f.drugs}), (visit.visit_id, f)


@pytest.mark.parametrize(("language", "drug", "cls", "said"), [
    ("en", "janagliflozin 10 mg", "sglt2i", "suggests a SGLT2 inhibitor"),
    ("zh", "新格列净片 10mg", "sglt2i", "名称提示为SGLT2抑制剂"),
])  # fmt: skip
def test_an_unknown_current_drug_is_not_silently_doubled(language, drug, cls, said) -> None:
    """A current drug the formulary does not know, whose name suggests a class (the checker's class words), is not
    taken as nothing: no other drug of that class is started, and the plan says so."""
    visit = Visit(
        visit_id="u", patient_id="p", date=dt.date(2025, 6, 1), language=language, patient={"age": 60, "sex": "male"},
        diagnoses=[{"system": "icd10", "code": "E11.9"}, {"system": "icd10", "code": "I50.22"}],
        labs=[{"loinc": "4548-4", "value": 8.4}, {"loinc": "33914-3", "value": 70}],
        medications=[{"drug": "metformin", "drug_class": "metformin", "dose": "1000 mg", "frequency": "bid"},
                     {"drug": drug, "drug_class": "other"}],
    )  # fmt: skip
    plan = recommend(visit)
    assert not [m for m in plan.medications if m.drug_class == cls and m.action == "start"], plan.medications
    assert any(said in p and drug in p for p in plan.prompts), plan.prompts
    # the checker names it too, and checks it as the class its name suggests
    assert any(f.rule_id in ("unknown_drug", "class_only") and drug in f.message for f in check(visit, plan))


def test_a_start_the_checker_warns_about_says_why_it_was_chosen() -> None:
    seen = 0
    for record in generate_cohort(60, 0, "zh"):
        visit = record.visit
        plan = recommend(visit, "cds")
        started = {m.drug.lower(): m.drug for m in plan.medications if m.action == "start"}
        for f in check(visit, plan, "cds"):
            for drug in {d.lower() for d in f.drugs} & started.keys() if f.severity == "warning" else ():
                seen += 1
                assert any(started[drug] in p and "尽管安全检查提示警告" in p and "原因" in p for p in plan.prompts)
    assert seen  # the cohort has such starts (basal insulin next to an SGLT2 inhibitor: tests of reference plans)
