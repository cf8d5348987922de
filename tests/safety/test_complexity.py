"""The complexity score marks the records where a physician must look closely."""

from __future__ import annotations

import pytest

from diaguide.safety.complexity import complexity


def test_simple_record_is_low(visit_factory) -> None:
    c = complexity(visit_factory(meds=("metformin 500 mg bid",)))
    assert (c.score, c.level, c.reasons) == (0, "low", [])


def test_complex_record_is_high_with_every_reason_listed(visit_factory) -> None:
    visit = visit_factory(
        age=79,
        egfr=25,
        dx=("E11.22", "N18.4", "I50.9", "I25.10", "E11.649", "E11.319"),
        meds=("metformin", "pioglitazone", "glimepiride", "furosemide", "metoprolol", "atorvastatin", "aspirin"),
    )
    c = complexity(visit)
    assert c.level == "high"
    text = " ".join(c.reasons)
    for reason in (
        "CKD stage G4",
        "heart failure",
        "ASCVD",
        "recent hypoglycaemia",
        "retinopathy",
        "age 75",
        "5 or more medications",
        "thiazolidinedione",
        "eGFR below 30 on metformin",
    ):
        assert reason in text
    assert c.score == sum(int(r.rsplit("(+", 1)[1].rstrip(")")) for r in c.reasons)


@pytest.mark.parametrize(
    ("egfr", "stage_reason"), [(59, "G3a"), (44, "G3b"), (29, "G4"), (14, "G5"), (60, None), (None, None)]
)
def test_ckd_stage_from_egfr(visit_factory, egfr, stage_reason) -> None:
    reasons = " ".join(complexity(visit_factory(egfr=egfr)).reasons)
    if stage_reason:
        assert f"CKD stage {stage_reason}" in reasons
    else:
        assert "CKD stage" not in reasons


@pytest.mark.parametrize(("count", "band"), [(4, None), (5, "5 or more"), (9, "5 or more"), (10, "10 or more")])
def test_polypharmacy_bands(visit_factory, count, band) -> None:
    names = [
        "metformin",
        "lisinopril",
        "atorvastatin",
        "aspirin",
        "amlodipine",
        "omeprazole",
        "sertraline",
        "levothyroxine",
        "tamsulosin",
        "vitamin d",
    ]
    reasons = " ".join(complexity(visit_factory(meds=tuple(names[:count]))).reasons)
    if band:
        assert band in reasons
    else:
        assert "medications" not in reasons


def test_pregnancy_on_non_insulin_agent_is_a_conflict(visit_factory) -> None:
    c = complexity(visit_factory(sex="female", pregnant=True, meds=("metformin", "lisinopril")))
    assert c.level in ("moderate", "high")
    assert any("pregnant on" in r for r in c.reasons)


def test_chinese_text_comorbidity(visit_factory) -> None:
    c = complexity(visit_factory(language="zh", past_history="糖尿病视网膜病变3年，周围神经病变"))
    assert any("视网膜病变" in r for r in c.reasons) and any("神经病变" in r for r in c.reasons)
