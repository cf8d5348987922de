"""Visits without diabetes on record: no glucose-lowering drug is started (ADA 2025 §2, §3).

Table-driven: each row is a visit and what the physician must (and must not) see in its Plan.
The carebundle case reproduces the review finding: a hyperlipidaemia/obesity patient with HbA1c
5.3% was offered metformin and semaglutide by `diaguide recommend --engine rules --format fhir`.
"""

from __future__ import annotations

import json

import carebundle
import pytest

from diaguide.knowledge.conditions import derive
from diaguide.knowledge.guideline import recommend
from diaguide.recommend import recommend_command
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Plan, Visit, VisitSummary


def _visit(
    dx=(), labs=(), meds=(), text="", lang="en", age=50, bmi=31.0, sex="female", snomed=(), pregnant=False, history=()
) -> Visit:
    diagnoses = [{"system": "icd10", "code": c, "icd10": c} for c in dx]
    diagnoses += [{"system": "http://snomed.info/sct", "code": c} for c in snomed]
    return Visit.model_validate(
        {
            "visit_id": "v1",
            "patient_id": "p1",
            "date": "2026-01-10",
            "language": lang,
            "patient": {"age": age, "sex": sex, "bmi": bmi, "weight_kg": 88, "pregnant": pregnant},
            "chief_complaint": text,
            "diagnoses": diagnoses,
            "labs": [{"loinc": loinc, "value": value, "date": "2026-01-10"} for loinc, value in labs],
            "medications": [{"drug": m} for m in meds],
            "history": list(history),
        }
    )


def _started_glucose_lowering(plan: Plan) -> list[str]:
    return [m.drug for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES]


A1C, FPG, EGFR = "4548-4", "1558-6", "33914-3"

# (name, visit, expected status, words the treatment must hold, words a prompt must hold or None for no prompt)
CASES = [
    (
        "non-diabetic: hyperlipidaemia and obesity, HbA1c 5.3%",
        _visit(dx=("E78.5", "E66.9"), labs=((A1C, 5.3), (EGFR, 91)), age=64, bmi=30.4),
        "none",
        ["No diabetes found in this record", "HbA1c 5.3%", "for diabetes care"],
        None,
    ),
    (
        "non-diabetic in Chinese: 否认糖尿病",
        _visit(text="体检发现血脂高，否认糖尿病", lang="zh", labs=((A1C, 5.4), (EGFR, 95))),
        "none",
        ["本记录未发现糖尿病", "糖尿病诊疗"],
        None,
    ),
    (
        "family history and screening are not diabetes",
        _visit(text="diabetes screening; mother has type 2 diabetes", labs=((A1C, 5.5),)),
        "none",
        ["No diabetes found"],
        None,
    ),
    (
        "diabetes insipidus and 'non-diabetic' are not diabetes",
        _visit(text="Central diabetes insipidus on desmopressin; non-diabetic", labs=((A1C, 5.1),), age=30, bmi=22.0),
        "none",
        ["No diabetes found"],
        None,
    ),
    (
        "prediabetes by ICD-10, age 45 with BMI 36: metformin only considered",
        _visit(dx=("R73.03",), labs=((A1C, 6.0), (EGFR, 90)), age=45, bmi=36.0),
        "prediabetes",
        ["Prediabetes (R73.03", "lifestyle", "no glucose-lowering drug is started"],
        "metformin for prevention may be considered",
    ),
    (
        "prediabetes by SNOMED 15777000, age 68: lifestyle only",
        _visit(snomed=("15777000",), labs=((A1C, 6.1), (EGFR, 80)), age=68, bmi=36.0),
        "prediabetes",
        ["Prediabetes", "lifestyle"],
        None,
    ),
    (
        "prediabetes in Chinese with prior gestational diabetes",
        _visit(text="糖尿病前期，既往妊娠期糖尿病史", lang="zh", labs=((A1C, 5.9),), age=66, bmi=24.0),
        "prediabetes",
        ["糖尿病前期", "生活方式"],
        "妊娠期糖尿病史",
    ),
    (
        "undiagnosed: HbA1c 7.1% without a code",
        _visit(dx=("E78.5",), labs=((A1C, 7.1), (EGFR, 90))),
        "unconfirmed",
        ["Probable undiagnosed diabetes: confirm", "HbA1c 7.1%"],
        "probable undiagnosed diabetes: confirm",
    ),
    (
        "undiagnosed: fasting glucose 7.8 mmol/L in Chinese",
        _visit(lang="zh", labs=((FPG, 140.5), (EGFR, 90))),
        "unconfirmed",
        ["可能为未诊断的糖尿病，请确认", "空腹血糖 7.8 mmol/L"],
        "可能为未诊断的糖尿病",
    ),
    (
        "on insulin with no diagnosis: continued, confirm",
        _visit(meds=("insulin glargine",), labs=((A1C, 6.2), (EGFR, 90))),
        "unconfirmed",
        ["Probable undiagnosed diabetes: confirm", "continue insulin glargine"],
        "insulin glargine (glucose-lowering)",
    ),
]


@pytest.mark.parametrize(("name", "visit", "status", "words", "prompt"), CASES, ids=[c[0] for c in CASES])
def test_no_glucose_lowering_start_without_a_diabetes_diagnosis(name, visit, status, words, prompt):
    assert derive(visit).diabetes_status == status
    plan = recommend(visit, region="cds" if visit.language == "zh" else "ada")
    assert _started_glucose_lowering(plan) == []
    assert [m for m in plan.medications if m.action == "start"] == []  # no statin or ACE inhibitor "for diabetes"
    assert plan.hba1c_goal is None
    for word in words:
        assert word in plan.treatment
    if prompt is None:
        assert not any("metformin" in p or "二甲双胍" in p for p in plan.prompts)
    else:
        assert any(prompt in p for p in plan.prompts), plan.prompts
    assert all(m.action in ("continue", "stop") for m in plan.medications)


def test_undiagnosed_diabetes_orders_the_confirmation_tests():
    plan = recommend(_visit(labs=((A1C, 7.1), (EGFR, 90))))
    assert {lab.loinc for lab in plan.labs} == {A1C, FPG}
    assert all("confirm" in lab.reason for lab in plan.labs)
    # two abnormal tests in one sample already meet the criteria: record the diagnosis, no repeat test
    both = recommend(_visit(labs=((A1C, 7.1), (FPG, 140), (EGFR, 90))))
    assert both.labs == [] and "both reach the diagnostic cut-offs" in both.prompts[0]


def test_marked_hyperglycaemia_without_a_diagnosis_is_not_left_to_wait():
    plan = recommend(_visit(labs=((A1C, 11.5), ("2345-7", 330), (EGFR, 90))))
    assert _started_glucose_lowering(plan) == []
    assert any("assess today" in p for p in plan.prompts)


def test_screening_is_suggested_only_when_due():
    overdue = recommend(_visit(dx=("I10",), age=40, bmi=27.0))
    assert [lab.loinc for lab in overdue.labs] == [A1C] and "screening" in overdue.labs[0].reason
    assert recommend(_visit(dx=("I10",), labs=((A1C, 5.2),), age=40, bmi=27.0)).labs == []  # normal: 3 years
    assert recommend(_visit(age=28, bmi=22.0)).labs == []  # young, lean, no risk factor


@pytest.mark.parametrize(
    "visit",
    [
        _visit(text="Type 2 diabetes for 8 years", labs=((A1C, 8.2), (EGFR, 90))),
        _visit(text="2型糖尿病10年", lang="zh", labs=((A1C, 8.2), (EGFR, 90))),
        _visit(snomed=("44054006",), labs=((A1C, 8.2), (EGFR, 90))),
        _visit(labs=((A1C, 8.2), (EGFR, 90)), history=[VisitSummary(date="2025-06-01", diagnoses=["E11.9"])]),
        _visit(text="gestational diabetes, 28 weeks gestation", pregnant=True, labs=((A1C, 6.4), (EGFR, 110))),
    ],
    ids=["english text", "chinese text", "snomed", "earlier visit code", "gestational diabetes now"],
)
def test_a_diabetes_diagnosis_from_text_snomed_or_history_is_still_treated(visit):
    assert derive(visit).diabetes_status == "diabetes"
    plan = recommend(visit, region="cds" if visit.language == "zh" else "ada")
    assert plan.hba1c_goal is not None
    assert "No diabetes" not in plan.treatment


def test_carebundle_patient_without_diabetes_gets_no_glucose_lowering(tmp_path, capsys):
    # `carebundle generate --profile mixed --seed 7` writes this patient as mixed-7-0000.json
    bundle = carebundle.generate_cohort(count=1, seed=7, sex="F")[0]
    path = tmp_path / "mixed-7-0000.json"
    path.write_text(carebundle.to_json(bundle), encoding="utf-8")
    assert recommend_command(engine="rules", input=str(path), fmt="fhir") == 0
    plan = Plan.model_validate(json.loads(capsys.readouterr().out))
    assert plan.medications == []  # was: start metformin, semaglutide and atorvastatin
    assert "No diabetes found in this record" in plan.treatment and "HbA1c 5.3%" in plan.treatment
    assert "for diabetes care" in plan.treatment
    assert not any(f.severity == "critical" for f in plan.findings)
