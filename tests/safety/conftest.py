"""Builders for the safety tests: a visit with just the facts a rule reads, and a plan of orders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from diaguide.records.schema import Plan, Visit

EGFR, CREATININE, ALT, HBA1C, GLUCOSE = "33914-3", "2160-0", "1742-6", "4548-4", "2345-7"


def make_visit(
    *,
    age: int | None = 58,
    sex: str = "male",
    weight_kg: float | None = 82.0,
    egfr: float | None = 85.0,
    creatinine: float | None = None,
    alt: float | None = 25.0,
    hba1c: float | None = 7.8,
    dx: tuple[str, ...] = ("E11.9",),
    meds: tuple[Any, ...] = (),
    allergies: tuple[Any, ...] = (),
    pregnant: bool = False,
    past_history: str = "",
    present_illness: str = "",
    language: str = "en",
    history: tuple[dict[str, Any], ...] = (),
) -> Visit:
    """A visit with only what a rule reads. `meds`: drug strings or (drug, dose) pairs."""
    labs = []
    for loinc, value in ((EGFR, egfr), (CREATININE, creatinine), (ALT, alt), (HBA1C, hba1c)):
        if value is not None:
            labs.append({"loinc": loinc, "value": value, "date": "2025-03-01"})
    medications = [
        {"drug": m, "since": "2023-01-01"}
        if isinstance(m, str)
        else {"drug": m[0], "dose": m[1], "since": "2023-01-01"}
        for m in meds
    ]
    return Visit.model_validate(
        {
            "visit_id": "v1",
            "patient_id": "p1",
            "date": "2025-03-01",
            "language": language,
            "patient": {"age": age, "sex": sex, "weight_kg": weight_kg, "pregnant": pregnant},
            "diagnoses": [{"system": "icd10", "code": c} for c in dx],
            "labs": labs,
            "medications": medications,
            "allergies": [a if isinstance(a, dict) else {"substance": a} for a in allergies],
            "past_history": past_history,
            "present_illness": present_illness,
            "history": list(history),
        }
    )


def make_plan(*orders: Any) -> Plan:
    """Orders as "drug", (drug, action) or (drug, action, dose[, reason])."""
    meds = []
    for o in orders:
        if isinstance(o, str):
            o = (o, "start")
        entry = {"drug": o[0], "action": o[1]}
        if len(o) > 2:
            entry["dose"] = o[2]
        if len(o) > 3:
            entry["reason"] = o[3]
        meds.append(entry)
    return Plan.model_validate({"treatment": "", "medications": meds})


@pytest.fixture
def visit_factory():
    return make_visit


@pytest.fixture
def plan_factory():
    return make_plan


def today() -> dt.date:
    return dt.date(2025, 3, 1)
