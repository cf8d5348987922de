"""Hand-made visits and plans (en, zh) shared by the prompt tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diaguide.records.schema import Plan, Visit


def make_visit(lang: str = "en", visit_id: str = "v3", patient_id: str = "p1", long_text: bool = False) -> Visit:
    """A type 2 visit with CKD, ASCVD, two earlier visits; `long_text` repeats the present illness."""
    zh = lang == "zh"
    repeat = 5 if long_text else 1
    return Visit.model_validate(
        {
            "visit_id": visit_id,
            "patient_id": patient_id,
            "date": "2025-03-01",
            "language": lang,
            "patient": {"age": 67, "sex": "male", "height_cm": 172, "weight_kg": 92.0, "bmi": 31.1},
            "chief_complaint": "口干多饮3月" if zh else "Thirst and polyuria for 3 months",
            "present_illness": (
                "2型糖尿病8年，二甲双胍联合格列美脲治疗，近3月血糖控制欠佳，空腹血糖8-10mmol/L。" * repeat
                if zh
                else "T2DM x8y on metformin + glimepiride. Home FPG 150-180 mg/dL over the last 3 months. " * repeat
            ),
            "past_history": "高血压10年，冠心病PCI术后2年" if zh else "HTN 10y; CAD s/p PCI 2023",
            "allergies": [{"substance": "磺胺" if zh else "sulfonamides", "reaction": "皮疹" if zh else "rash"}],
            "diagnoses": [
                {
                    "system": "icd10",
                    "code": "E11.65",
                    "display": "2型糖尿病伴高血糖" if zh else "Type 2 DM with hyperglycaemia",
                },
                {"system": "icd10", "code": "I25.10", "display": "冠心病" if zh else "Coronary artery disease"},
            ],
            "vitals": {"systolic_bp": 142, "diastolic_bp": 86, "heart_rate": 78},
            "labs": [
                {"loinc": "4548-4", "name": "HbA1c", "value": 8.4, "unit": "%", "date": "2025-02-25"},
                {"loinc": "1558-6", "name": "FPG", "value": 171.2, "unit": "mg/dL", "date": "2025-02-25"},
                {"loinc": "33914-3", "name": "eGFR", "value": 52.4, "unit": "mL/min/1.73m2", "date": "2025-02-25"},
                {"loinc": "9318-7", "name": "UACR", "value": 45, "unit": "mg/g", "date": "2025-02-25"},
                {"loinc": "13457-7", "name": "LDL", "value": 112, "unit": "mg/dL", "date": "2024-11-02"},
                {"loinc": "1742-6", "name": "ALT", "value": 31, "unit": "U/L", "date": "2024-11-02"},
                {"loinc": "4548-4", "name": "HbA1c", "value": 8.0, "unit": "%", "date": "2024-11-02"},
            ],
            "medications": [
                {"drug": "metformin", "drug_class": "metformin", "dose": "1000 mg", "frequency": "bid"},
                {"drug": "glimepiride", "drug_class": "sulfonylurea", "dose": "2 mg", "frequency": "qd"},
            ],
            "history": [
                {
                    "date": "2024-06-03",
                    "hba1c": 7.6,
                    "egfr": 61,
                    "medications": [{"drug": "metformin", "drug_class": "metformin", "dose": "500 mg"}],
                },
                {
                    "date": "2024-11-02",
                    "hba1c": 8.0,
                    "egfr": 58,
                    "medications": [{"drug": "metformin", "drug_class": "metformin", "dose": "1000 mg"}],
                    "events": ["低血糖1次" if zh else "hypoglycaemia x1"],
                },
            ],
        }
    )


def make_plan(lang: str = "en") -> Plan:
    zh = lang == "zh"
    return Plan.model_validate(
        {
            "treatment": (
                "HbA1c目标<7.0%。合并冠心病及CKD，加用SGLT2抑制剂，继续二甲双胍并减量。"
                if zh
                else "HbA1c goal <7.0%. ASCVD and CKD: add an SGLT2 inhibitor; keep metformin at a lower dose."
            ),
            "hba1c_goal": 7.0,
            "medications": [
                {
                    "drug": "恩格列净" if zh else "empagliflozin",
                    "drug_class": "sglt2i",
                    "action": "start",
                    "dose": "10 mg",
                    "frequency": "qd",
                    "reason": "冠心病、CKD获益" if zh else "ASCVD and CKD benefit",
                },
                {
                    "drug": "二甲双胍" if zh else "metformin",
                    "drug_class": "metformin",
                    "action": "adjust",
                    "dose": "500 mg",
                    "frequency": "bid",
                    "reason": "eGFR 45-60" if zh else "eGFR 52",
                },
                {
                    "drug": "格列美脲" if zh else "glimepiride",
                    "drug_class": "sulfonylurea",
                    "action": "continue",
                    "dose": "2 mg",
                    "frequency": "qd",
                    "reason": "",
                },
            ],
            "labs": [
                {"loinc": "4548-4", "name": "HbA1c", "reason": "3个月复查" if zh else "recheck in 3 months"},
                {"loinc": "9318-7", "name": "UACR", "reason": "CKD监测" if zh else "CKD monitoring"},
            ],
            "prompts": ["注意低血糖" if zh else "Watch for hypoglycaemia with glimepiride."],
            "findings": [{"rule_id": "x", "severity": "info", "message": "not in the target", "source": "test"}],
        }
    )


@pytest.fixture(params=["en", "zh"])
def lang(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(name="make_visit")
def _make_visit_fixture():
    return make_visit


@pytest.fixture(name="make_plan")
def _make_plan_fixture():
    return make_plan


def write_cohort(folder, patients: int, plan_for) -> Path:
    """A cohort folder (visits.jsonl) of `patients` x 2 visits, odd patients English, even Chinese;
    `plan_for(visit, lang, v)` is the physician plan of visit number v (0 or 1)."""
    folder = Path(folder)
    folder.mkdir()
    lines = []
    for p in range(patients):
        lang = "en" if p % 2 else "zh"
        for v in range(2):
            visit = make_visit(lang, visit_id=f"P{p}-V{v}", patient_id=f"P{p}")
            plan = plan_for(visit, lang, v)
            lines.append(json.dumps({"visit": visit.model_dump(mode="json"), "plan": plan.model_dump(mode="json")}))
    (folder / "visits.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(name="write_cohort")
def _write_cohort_fixture():
    return write_cohort
