import datetime as dt

import pytest
from pydantic import ValidationError

from diaguide.records.schema import DRUG_CLASSES, Finding, Lab, Plan, Visit


def _visit(**kw):
    base = {"visit_id": "v1", "patient_id": "p1", "date": "2025-03-01"}
    base.update(kw)
    return Visit.model_validate(base)


def test_visit_round_trips_through_json():
    v = _visit(
        labs=[{"loinc": "4548-4", "name": "HbA1c", "value": 8.1, "unit": "%", "date": "2025-02-20"}],
        diagnoses=[{"system": "icd10", "code": "E11.9", "display": "T2DM"}],
        medications=[{"drug": "metformin", "drug_class": "metformin", "dose": "500 mg", "frequency": "bid"}],
        language="zh",
    )
    again = Visit.model_validate_json(v.model_dump_json())
    assert again == v
    assert again.labs[0].date == dt.date(2025, 2, 20)


def test_latest_lab_picks_the_most_recent_of_a_group():
    v = _visit(
        labs=[
            {"loinc": "4548-4", "value": 8.1, "date": "2024-10-01"},
            {"loinc": "17856-6", "value": 7.4, "date": "2025-02-01"},
            {"loinc": "2160-0", "value": 1.0, "date": "2025-02-15"},
        ]
    )
    assert v.latest_lab("4548-4", "17856-6").value == 7.4
    assert v.latest_lab("33914-3") is None


def test_has_diagnosis_uses_icd10_and_mapped_codes():
    v = _visit(
        diagnoses=[
            {"system": "snomed", "code": "44054006", "icd10": "E11.9"},
            {"system": "icd10", "code": "n18.4"},
        ]
    )
    assert v.has_diagnosis("E11") and v.has_diagnosis("N18.4") and not v.has_diagnosis("I50")


def test_drug_class_vocabulary_is_enforced():
    assert "sglt2i" in DRUG_CLASSES and "other" in DRUG_CLASSES
    with pytest.raises(ValidationError):
        Plan.model_validate({"medications": [{"drug": "x", "drug_class": "wonderdrug"}]})


def test_finding_needs_a_source():
    with pytest.raises(ValidationError):
        Finding(rule_id="r", severity="warning", message="m", source="")


def test_lab_value_must_be_numeric():
    with pytest.raises(ValidationError):
        Lab(loinc="4548-4", value="high")
