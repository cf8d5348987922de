"""Hand-written FHIR R4 resources for the ingestion tests: small, explicit, one fact each."""

from __future__ import annotations

import itertools
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
_n = itertools.count()


def cc(system: str | None, code: str, display: str = "") -> dict:
    coding: dict[str, Any] = {"code": code}
    if system:
        coding["system"] = system
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display else {})}


def uid() -> str:
    return f"urn:uuid:00000000-0000-4000-8000-{next(_n):012d}"


def bundle(*entries: dict, kind: str = "collection") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(resource: dict, full_url: str | None = None, **extra: Any) -> dict:
    e: dict[str, Any] = {"resource": resource}
    if full_url:
        e["fullUrl"] = full_url
    e.update(extra)
    return e


def patient(birth: str = "1970-06-15", gender: str = "female", **kw: Any) -> dict:
    return {"resourceType": "Patient", "gender": gender, "birthDate": birth, **kw}


def encounter(subject: str, start: str, cls: str = "AMB", **kw: Any) -> dict:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "subject": {"reference": subject},
        "period": {"start": start},
        **kw,
    }


def condition(subject: str, system: str, code: str, display: str, onset: str | None = None, **kw: Any) -> dict:
    r = {"resourceType": "Condition", "subject": {"reference": subject}, "code": cc(system, code, display), **kw}
    if onset:
        r["onsetDateTime"] = onset
    return r


def obs(subject: str, loinc: str, value: float | None, unit: str | None, when: str, **kw: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")],
        "code": cc(LOINC, loinc),
        "subject": {"reference": subject},
        "effectiveDateTime": when,
    }
    if value is not None:
        r["valueQuantity"] = {"value": value, **({"unit": unit} if unit is not None else {})}
    r.update(kw)
    return r


def bp(subject: str, systolic: float, diastolic: float, when: str, **kw: Any) -> dict:
    r = obs(subject, "85354-9", None, None, when, **kw)
    r["category"] = [cc("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")]
    r["component"] = [
        {
            "code": cc(LOINC, "8480-6"),
            "valueQuantity": {"value": systolic, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": cc(LOINC, "8462-4"),
            "valueQuantity": {"value": diastolic, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
    ]
    return r


def med_request(subject: str, rxnorm: str, text: str, authored: str, status: str = "active", **kw: Any) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "subject": {"reference": subject},
        "medicationCodeableConcept": cc(RXNORM, rxnorm, text),
        "authoredOn": authored,
        **kw,
    }
