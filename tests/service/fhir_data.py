"""A small synthetic patient as CDS Hooks prefetch (FHIR R4), and a fake FHIR server serving it."""

from __future__ import annotations

import copy
from typing import Any

import httpx

PATIENT_ID = "pat-1"


def _obs(oid: str, loinc: str, display: str, value: float, unit: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"http://fhir.example/{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }


def prefetch(*, age_birth: str = "1948-03-02", egfr: float = 24.0, hba1c: float = 8.1, meds=("metformin",)) -> dict:
    """Prefetch of an older woman with type 2 diabetes and CKD stage 4 (eGFR 24) on metformin."""
    patient = {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "gender": "female",
        "birthDate": age_birth,
    }
    conditions = [
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": "E11.9",
                        "display": "Type 2 diabetes mellitus",
                    }
                ]
            },
            "onsetDateTime": "2015-01-01",
        },
        {
            "resourceType": "Condition",
            "id": "c2",
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N18.4", "display": "CKD stage 4"}]
            },
            "onsetDateTime": "2024-01-01",
        },
    ]
    observations = [
        _obs("o1", "4548-4", "Hemoglobin A1c", hba1c, "%", "2026-11-01"),
        _obs("o2", "33914-3", "eGFR", egfr, "mL/min/{1.73_m2}", "2026-11-01"),
        _obs("o3", "4548-4", "Hemoglobin A1c", 7.6, "%", "2026-05-01"),
        _obs("o4", "33914-3", "eGFR", egfr + 8, "mL/min/{1.73_m2}", "2026-05-01"),
    ]
    medications = [
        {
            "resourceType": "MedicationRequest",
            "id": f"m{i}",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "authoredOn": "2025-01-01",
            "medicationCodeableConcept": {"text": name},
            "dosageInstruction": [{"text": "500 mg twice daily"}],
        }
        for i, name in enumerate(meds)
    ]
    return {
        "patient": patient,
        "conditions": _bundle(conditions),
        "observations": _bundle(observations),
        "medications": _bundle(medications),
        "allergies": _bundle([]),
    }


def hook_request(hook: str = "patient-view", **extra) -> dict[str, Any]:
    body = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID},
        "prefetch": prefetch(),
    }
    body.update(extra)
    return body


def draft_orders(*names: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": f"draft-{i}",
                    "status": "draft",
                    "intent": "order",
                    "subject": {"reference": f"Patient/{PATIENT_ID}"},
                    "medicationCodeableConcept": {"text": name},
                }
            }
            for i, name in enumerate(names)
        ],
    }


class FakeFHIRServer:
    """Answers the prefetch queries from `data`; records the Authorization header of each read."""

    def __init__(self, data: dict[str, Any] | None = None, token: str = "fhir-token"):
        self.data = copy.deepcopy(data or prefetch())
        self.token = token
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, request.headers.get("authorization")))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401)
        path = request.url.path.rsplit("/", 2)
        kind = {
            "Condition": "conditions",
            "Observation": "observations",
            "MedicationRequest": "medications",
            "AllergyIntolerance": "allergies",
        }.get(path[-1])
        if path[-2] == "Patient":
            return httpx.Response(200, json=self.data["patient"])
        if kind is None:
            return httpx.Response(404)
        return httpx.Response(200, json=self.data[kind])

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)
