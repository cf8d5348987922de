"""The carry_forward baseline: every current drug continued, the labs that are due ordered (docs/evaluation.md)."""

from __future__ import annotations

import datetime as dt

from diaguide.evaluation.lineup import build_candidate
from diaguide.records.schema import Visit

HBA1C, LDL, EGFR, UACR = "4548-4", "13457-7", "33914-3", "9318-7"
VISIT_DATE = dt.date(2025, 6, 1)


def visit(language: str = "en", hba1c_days_ago: int = 30, ldl_days_ago: int = 30, diabetes: bool = True) -> Visit:
    """Type 2 diabetes on metformin, HbA1c 7.8% (above the 7% goal), LDL, eGFR and UACR on file."""

    def on(days_ago: int) -> str:
        return (VISIT_DATE - dt.timedelta(days=days_ago)).isoformat()

    return Visit.model_validate(
        {
            "visit_id": "v",
            "patient_id": "p",
            "date": VISIT_DATE.isoformat(),
            "language": language,
            "patient": {"age": 58, "sex": "male"},
            "diagnoses": [{"system": "icd10", "code": "E11.9" if diabetes else "I10"}],
            "labs": [
                {"loinc": HBA1C, "value": 7.8 if diabetes else 5.4, "date": on(hba1c_days_ago)},
                {"loinc": LDL, "value": 2.4, "unit": "mmol/L", "date": on(ldl_days_ago)},
                {"loinc": EGFR, "value": 85, "date": on(30)},
                {"loinc": UACR, "value": 12, "unit": "mg/g", "date": on(30)},
            ],
            "medications": [{"drug": "二甲双胍" if language == "zh" else "metformin", "drug_class": "metformin",
                             "dose": "500 mg", "frequency": "bid"}] if diabetes else [],
        }
    )  # fmt: skip


def ordered(v: Visit) -> list[str]:
    (p,) = build_candidate("carry_forward").predict([v])
    return [lab.loinc for lab in p.plan.labs]


def test_an_hba1c_older_than_its_interval_is_ordered_as_due_now():
    # above goal: every 3 months (91 days); the last one 200 days ago is overdue
    (p,) = build_candidate("carry_forward").predict([visit(hba1c_days_ago=200)])
    assert [(m.drug, m.action) for m in p.plan.medications] == [("metformin", "continue")]
    [hba1c] = [lab for lab in p.plan.labs if lab.loinc == HBA1C]
    assert "due now" in hba1c.reason and (VISIT_DATE - dt.timedelta(days=200)).isoformat() in hba1c.reason


def test_a_recent_yearly_test_is_not_ordered_and_an_old_one_is():
    recent = ordered(visit(ldl_days_ago=30))
    assert LDL not in recent and EGFR not in recent and UACR not in recent  # all yearly, all taken a month ago
    assert LDL in ordered(visit(ldl_days_ago=400))


def test_a_recent_hba1c_is_still_due_before_the_next_review():
    # the next review is within HbA1c's own interval, so it is ordered for the review, not as overdue
    (p,) = build_candidate("carry_forward").predict([visit(hba1c_days_ago=10)])
    [hba1c] = [lab for lab in p.plan.labs if lab.loinc == HBA1C]
    assert "due now" not in hba1c.reason and "due by" in hba1c.reason


def test_chinese_visit_gets_chinese_lab_names_and_keeps_its_drug_name():
    (p,) = build_candidate("carry_forward").predict([visit(language="zh", hba1c_days_ago=200, ldl_days_ago=400)])
    assert [(m.drug, m.action) for m in p.plan.medications] == [("二甲双胍", "continue")]
    names = {lab.loinc: lab.name for lab in p.plan.labs}
    assert names[HBA1C] == "糖化血红蛋白" and names[LDL] == "血脂(LDL-C)"
    assert "现已到期" in next(lab.reason for lab in p.plan.labs if lab.loinc == HBA1C)


def test_without_diabetes_on_record_no_monitoring_is_ordered():
    # a hypertensive 58-year-old with a normal HbA1c a month ago: no diabetes monitoring, no test due yet
    labs = ordered(visit(diabetes=False, hba1c_days_ago=30, ldl_days_ago=400))
    assert HBA1C not in labs and LDL not in labs and EGFR not in labs
