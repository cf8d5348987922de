"""Issue 18, item 12: NaN and infinities are refused at the schema, the analyte named; no plan is made
from an unusable HbA1c, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError
from tests.security.conftest import bearer
from tests.service.fhir_data import hook_request

from diaguide.records.schema import Lab, Patient, Plan, Visit, Vitals
from diaguide.service.store import Recommendation

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "NaN", "Infinity", "-inf"])
def test_a_lab_value_that_is_not_finite_is_refused_naming_the_analyte(value):
    with pytest.raises(ValidationError, match=r"lab 4548-4 \(HbA1c\): value .* is not a finite number"):
        Lab(loinc="4548-4", name="HbA1c", value=value, unit="%")
    assert Lab(loinc="4548-4", name="HbA1c", value="8.1").value == 8.1


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Vitals(systolic_bp=math.inf), "systolic_bp"),
        (lambda: Vitals(spo2=math.nan), "spo2"),
        (lambda: Patient(weight_kg=math.nan), "weight_kg"),
        (lambda: Plan(hba1c_goal=math.inf), "hba1c_goal"),
    ],
)
def test_other_numbers_that_are_not_finite_are_refused(make, field):
    with pytest.raises(ValidationError, match=field):
        make()


def _visit_text(value: str) -> str:
    visit = {
        "visit_id": "v1",
        "patient_id": "p1",
        "date": "2026-10-12",
        "patient": {"age": 58, "sex": "male"},
        "labs": [{"loinc": "4548-4", "name": "HbA1c", "value": 0, "unit": "%", "date": "2026-10-10"}],
        "medications": [{"drug": "metformin"}],
    }
    return json.dumps(visit).replace('"value": 0', f'"value": {value}')


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_rest_refuses_a_visit_with_a_nan_hba1c_on_both_databases(clinic, value):
    response = clinic.post(
        "/api/v1/recommendations", content=_visit_text(value), headers={**JSON, **bearer(clinic, "dr.li")}
    )
    assert response.status_code == 400, response.text
    assert "4548-4 (HbA1c)" in response.json()["detail"]
    assert clinic.app.state.ctx.store.count(Recommendation) == 0


def test_a_nan_lab_in_prefetch_makes_no_plan_from_it(make_client, db_url):
    client = make_client(demo=True, database_url=db_url)
    body = hook_request()
    observations = body["prefetch"]["observations"]["entry"]
    observations[0]["resource"]["valueQuantity"]["value"] = math.nan  # the latest HbA1c
    response = client.post("/cds-services/diaguide-patient-view", content=json.dumps(body), headers=JSON)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:  # the unusable result was skipped, the earlier one used
        rec = client.app.state.ctx.store.get(
            Recommendation, response.json()["cards"][0]["links"][0]["url"].rsplit("/", 1)[1]
        )
        labs = [lab for lab in Visit.model_validate(rec.visit).labs if lab.loinc == "4548-4"]
        assert all(math.isfinite(lab.value) for lab in labs)
        assert labs == [] or labs[0].value == 7.6
