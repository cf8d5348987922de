"""The words a decision rests on reach every door: the Plan JSON of the REST API, the CDS card's detail, and the
physician page (the browser test is in test_page_browser.py)."""

from __future__ import annotations

from tests.service.fhir_data import PATIENT_ID, hook_request, prefetch

PV = "/cds-services/diaguide-patient-view"
DIALYSIS = "规律血液透析3年"


def _visit() -> dict:
    return {
        "visit_id": "v-notes", "patient_id": "p-notes", "date": "2026-11-02", "language": "zh",
        "patient": {"age": 66, "sex": "male", "weight_kg": 70},
        "past_history": f"尿毒症，{DIALYSIS}，每周3次。父亲糖尿病。",
        "diagnoses": [{"system": "icd10", "code": "E11.9"}],
        "labs": [{"loinc": "4548-4", "value": 7.4, "date": "2026-11-01"}],
        "medications": [{"drug": "二甲双胍", "drug_class": "metformin", "dose": "500 mg", "frequency": "bid"}],
    }  # fmt: skip


def test_the_plan_json_carries_the_words_and_where_they_were_written(demo_client) -> None:
    body = demo_client.post("/api/v1/recommendations", json=_visit()).json()
    metformin = next(m for m in body["plan"]["medications"] if m["drug_class"] == "metformin")
    assert metformin["action"] == "stop"
    assert DIALYSIS in metformin["reason"] and "来自既往史" in metformin["reason"]
    assert metformin["evidence"][0]["field"] == "past_history" and metformin["evidence"][0]["assertion"] == "present"
    # the do-nothing plan, checked: the finding quotes the notes, in its message and its evidence
    carried = {"medications": [{"drug": "二甲双胍", "drug_class": "metformin", "action": "continue", "dose": "500 mg"}]}
    checked = demo_client.post("/api/v1/recommendations", json={"visit": _visit(), "plan": carried}).json()
    finding = next(f for f in checked["plan"]["findings"] if f["rule_id"] == "metformin_dialysis")
    assert finding["severity"] == "critical" and DIALYSIS in finding["message"]
    assert any(e["text"].startswith(DIALYSIS) for e in finding["evidence"])


def test_the_cds_card_detail_quotes_the_notes(demo_client) -> None:
    data = prefetch(egfr=80, hba1c=7.4)
    data["observations"]["entry"].append(
        {
            "fullUrl": "http://fhir.example/Observation/o-past",
            "resource": {
                "resourceType": "Observation", "id": "o-past", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "11348-0"}]},
                "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectiveDateTime": "2026-11-01",
                "valueString": "End-stage kidney disease on maintenance hemodialysis since 2023.",
            },
        }
    )  # fmt: skip
    cards = demo_client.post(PV, json=hook_request(prefetch=data)).json()["cards"]
    assert "stop metformin" in cards[0]["summary"]
    assert "from past history: 'End-stage kidney disease on maintenance hemodialysis" in cards[0]["detail"]
