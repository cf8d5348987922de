"""Issue 18, item 16: a drug the patient takes now that is contraindicated gets a warning or critical
card of its own in patient-view, even when the plan stops it (English and Chinese records)."""

from __future__ import annotations

import pytest
from tests.service.fhir_data import hook_request, prefetch

from diaguide.records.schema import Lab, Medication, Patient, Visit
from diaguide.service import clinical
from diaguide.service.store import Card

PV = "/cds-services/diaguide-patient-view"


def _current(cards: list[dict]) -> list[dict]:
    return [c for c in cards if c["summary"].startswith("Taking now")]


@pytest.mark.parametrize("drug", ["metformin", "Metformin 500 MG Oral Tablet", "二甲双胍缓释片", "格华止"])
def test_metformin_at_egfr_24_gets_its_own_card(make_client, db_url, drug):
    client = make_client(demo=True, database_url=db_url)
    response = client.post(PV, json=hook_request(prefetch=prefetch(egfr=24, meds=(drug,))))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    plan = cards[0]
    assert plan["indicator"] == "info" and "stop" in plan["summary"]  # the plan stops it: no finding of its own
    current = _current(cards)
    assert len(current) == 1, [c["summary"] for c in cards]
    card = current[0]
    assert card["indicator"] in ("warning", "critical")
    assert "metformin" in card["summary"]  # the FHIR reader names it by its generic name
    assert "The plan above stops it." in card["detail"]
    assert card["overrideReasons"]
    stored = client.app.state.ctx.store.get(Card, card["uuid"])
    assert stored is not None and stored.indicator == card["indicator"]


def test_a_safe_current_list_gets_no_such_card(demo_client):
    cards = demo_client.post(PV, json=hook_request(prefetch=prefetch(egfr=80, meds=("metformin",)))).json()["cards"]
    assert _current(cards) == []
    assert all(c["indicator"] == "info" for c in cards)


def _visit(language: str, drug: str, egfr: float) -> Visit:
    return Visit(
        visit_id="v1",
        patient_id="p1",
        date="2026-11-01",
        patient=Patient(age=78, sex="female"),
        labs=[
            Lab(loinc="33914-3", name="eGFR", value=egfr, unit="mL/min/1.73m2", date="2026-11-01"),
            Lab(loinc="4548-4", name="HbA1c", value=8.1, unit="%", date="2026-11-01"),
        ],
        medications=[Medication(drug=drug, dose="500 mg", frequency="bid")],
        language=language,
    )


@pytest.mark.parametrize(("language", "drug"), [("en", "metformin"), ("zh", "二甲双胍")])
def test_current_findings_name_the_drug_on_the_list(language, drug):
    found = clinical.current_findings(_visit(language, drug, egfr=24))
    assert found and all(f.severity in ("warning", "critical") for f in found)
    assert any(drug in f.drugs for f in found)
    words = {"en": "contraindicated", "zh": "禁用"}[language]
    assert any(
        words in f.message and "(lactic acidosis)" in f.message.replace("（乳酸酸中毒）", "(lactic acidosis)")
        for f in found
    )
    assert clinical.current_findings(_visit(language, drug, egfr=90)) == []
