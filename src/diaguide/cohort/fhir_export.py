"""The cohort as FHIR R4 collection Bundles, one file per patient (`fhir/<patient>.json`).

Each visit becomes an ambulatory Encounter (class AMB) with its Observations (labs with LOINC
and UCUM units, vital signs, chief complaint, present illness, past history); diagnoses become
Conditions (ICD-10-CM, plus SNOMED CT for type 2 diabetes) whose onset/abatement reproduce the
codes of every visit; medications become MedicationRequests (RxNorm where known, text always),
one per run of unchanged dose, whose validity period covers the visits that list it.
`diaguide.records.fhir.read_fhir_file` reads a file back into the same visits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

from diaguide.cohort.catalog import drugs
from diaguide.records.schema import CohortRecord, Visit
from diaguide.records.units import analyte_for

LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
ICD10, SNOMED = "http://hl7.org/fhir/sid/icd-10-cm", "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_NS = uuid.UUID("6f1d1c52-3c1e-4d7a-9a43-5b0c2f6a8e11")  # fixed namespace: same cohort, same ids
UCUM_CODES = {"mL/min/1.73m2": "mL/min/{1.73_m2}", "mmHg": "mm[Hg]", "kg/m2": "kg/m2"}
# SNOMED CT concepts written next to the ICD-10 code (Synthea and US Core servers code T2DM so)
SNOMED_FOR = {"E11": ("44054006", "Diabetes mellitus type 2")}
_DOSE = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]+)$")  # "500 mg", "0.5g", "12 U"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
GTS_CODES = {"qd": "QD", "bid": "BID", "tid": "TID"}
VITALS = (
    ("weight_kg", "29463-7", "Body weight", "kg"),
    ("bmi", "39156-5", "Body mass index", "kg/m2"),
    ("heart_rate", "8867-4", "Heart rate", "/min"),
)
NARRATIVE = (
    ("chief_complaint", "10154-3", "Chief complaint Narrative"),
    ("present_illness", "10164-2", "History of Present illness Narrative"),
    ("past_history", "11348-0", "History of Past illness Narrative"),
)


def _ref(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, f'{kind}/{key}')}"


def _entry(resource: dict, key: str) -> dict:
    return {"fullUrl": _ref(resource["resourceType"], key), "resource": resource}


def _cc(system: str, code: str, display: str, text: str | None = None) -> dict:
    out: dict = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


def _quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": UCUM_CODES.get(unit, unit)}


def bundle_for(patient_id: str, visits: list[Visit]) -> dict:
    """One patient's visits (date order) as a FHIR R4 collection Bundle (a plain dict)."""
    first, last = visits[0], visits[-1]
    patient_ref = _ref("Patient", patient_id)
    birth = _birth_date(visits)
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "gender": first.patient.sex,
        "birthDate": birth,
        "communication": [
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": "zh-CN" if last.language == "zh" else "en-US"}]
                }
            }
        ],
    }
    entries = [_entry(patient, patient_id)]
    subject = {"reference": patient_ref}
    for v in visits:
        enc_ref = {"reference": _ref("Encounter", v.visit_id)}
        entries.append(
            _entry(
                {
                    "resourceType": "Encounter",
                    "id": v.visit_id,
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                        "display": "ambulatory",
                    },
                    "type": [{"text": "Diabetes outpatient follow-up"}],
                    "subject": subject,
                    "period": {"start": v.date.isoformat(), "end": v.date.isoformat()},
                },
                v.visit_id,
            )
        )
        entries += _observations(v, subject, enc_ref)
    entries += _conditions(visits, subject)
    entries += _medications(visits, subject)
    for i, a in enumerate(last.allergies):
        allergy = {
            "resourceType": "AllergyIntolerance",
            "id": f"{patient_id}-A{i + 1}",
            "clinicalStatus": _cc(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"
            ),
            "verificationStatus": _cc(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"
            ),
            "category": ["medication"],
            "code": {"text": a.substance},
            "patient": subject,
            "recordedDate": first.date.isoformat(),
        }
        if a.reaction:
            allergy["reaction"] = [{"manifestation": [{"text": a.reaction}]}]
        entries.append(_entry(allergy, allergy["id"]))
    return {"resourceType": "Bundle", "id": f"cohort-{patient_id}", "type": "collection", "entry": entries}


def _birth_date(visits: list[Visit]) -> str:
    """The latest birth date that gives every visit its recorded age (a Visit keeps only the age)."""

    def years_before(day: dt.date, years: int) -> dt.date:
        try:
            return day.replace(year=day.year - years)
        except ValueError:  # 29 February
            return day.replace(year=day.year - years, day=28)

    return min(years_before(v.date, v.patient.age or 0) for v in visits).isoformat()


def _observations(v: Visit, subject: dict, enc_ref: dict) -> list[dict]:
    out = []
    day = v.date.isoformat()

    def obs(key: str, code: str, display: str, category: str, **value) -> dict:
        res = {
            "resourceType": "Observation",
            "id": f"{v.visit_id}-{key}".replace("_", "-"),
            "status": "final",
            "category": [
                _cc(
                    "http://terminology.hl7.org/CodeSystem/observation-category",
                    category,
                    category.replace("-", " ").title(),
                )
            ],
            "code": _cc(LOINC, code, display),
            "subject": subject,
            "encounter": enc_ref,
            "effectiveDateTime": value.pop("date", day),
            **value,
        }
        return _entry(res, res["id"])

    for lab in v.labs:
        if lab.date is not None and lab.date != v.date:
            continue  # an earlier result: written once, at the visit that measured it
        analyte = analyte_for(lab.loinc)
        out.append(
            obs(
                f"lab-{lab.loinc}",
                lab.loinc,
                analyte.name if analyte else lab.name,
                "laboratory",
                valueQuantity=_quantity(lab.value, lab.unit),
            )
        )
    vit = v.vitals
    if vit.systolic_bp is not None and vit.diastolic_bp is not None:
        out.append(
            obs(
                "bp",
                "85354-9",
                "Blood pressure panel",
                "vital-signs",
                component=[
                    {
                        "code": _cc(LOINC, "8480-6", "Systolic blood pressure"),
                        "valueQuantity": _quantity(vit.systolic_bp, "mmHg"),
                    },
                    {
                        "code": _cc(LOINC, "8462-4", "Diastolic blood pressure"),
                        "valueQuantity": _quantity(vit.diastolic_bp, "mmHg"),
                    },
                ],
            )
        )
    for field, code, display, unit in VITALS:
        value = getattr(vit, field)
        if value is not None:
            out.append(obs(field, code, display, "vital-signs", valueQuantity=_quantity(value, unit)))
    if v.patient.height_cm:
        out.append(
            obs("height", "8302-2", "Body height", "vital-signs", valueQuantity=_quantity(v.patient.height_cm, "cm"))
        )
    for field, code, display in NARRATIVE:
        text = getattr(v, field)
        if text:
            out.append(obs(field, code, display, "exam", valueString=text))
    return out


def _conditions(visits: list[Visit], subject: dict) -> list[dict]:
    """One Condition per code and run of consecutive visits that list it; abated when it drops off."""
    out = []
    runs: dict[str, list[int]] = {}
    for i, v in enumerate(visits):
        for d in v.diagnoses:
            runs.setdefault(d.code, []).append(i)
    display = {d.code: d.display for v in visits for d in v.diagnoses}
    for code, idx in runs.items():
        start = idx[0]
        for j, i in enumerate(idx):
            if j + 1 < len(idx) and idx[j + 1] == i + 1:
                continue
            key = f"{visits[0].patient_id}-{code}-{start + 1}"
            cc = _cc(ICD10, code, display[code], display[code])
            if code[:3] in SNOMED_FOR:
                cc["coding"].append(
                    {"system": SNOMED, "code": SNOMED_FOR[code[:3]][0], "display": SNOMED_FOR[code[:3]][1]}
                )
            res = {
                "resourceType": "Condition",
                "id": key,
                "clinicalStatus": _cc(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "active" if i + 1 == len(visits) else "resolved",
                    "",
                ),
                "category": [
                    _cc(
                        "http://terminology.hl7.org/CodeSystem/condition-category",
                        "encounter-diagnosis",
                        "Encounter Diagnosis",
                    )
                ],
                "code": cc,
                "subject": subject,
                "encounter": {"reference": _ref("Encounter", visits[start].visit_id)},
                "onsetDateTime": visits[start].date.isoformat(),
                "recordedDate": visits[start].date.isoformat(),
            }
            if i + 1 < len(visits):
                res["abatementDateTime"] = visits[i + 1].date.isoformat()
            for c in res["clinicalStatus"]["coding"]:
                c.pop("display")
            out.append(_entry(res, key))
            start = idx[j + 1] if j + 1 < len(idx) else start
    return out


def _medications(visits: list[Visit], subject: dict) -> list[dict]:
    """One MedicationRequest per drug and unchanged (dose, frequency), valid over the visits listing it."""
    rxnorm = {name: s.rxnorm for s in drugs().values() for name in (s.name, s.zh) if s.rxnorm}
    out = []
    open_runs: dict[str, tuple[tuple, dt.date, int]] = {}  # drug -> ((dose, freq), start, first visit)
    finished: list[tuple[str, tuple, dt.date, dt.date | None, int]] = []
    for i, v in enumerate(visits):
        # a run is one order: same dose, frequency and start date (a stop and restart is a new order)
        now = {m.drug: ((m.dose, m.frequency, m.since), m.since or v.date) for m in v.medications}
        for drug, (regimen, _start, first) in list(open_runs.items()):
            if drug not in now or now[drug][0] != regimen:
                finished.append((drug, regimen, _start, visits[i - 1].date, first))
                del open_runs[drug]
        for drug, (regimen, since) in now.items():
            if drug not in open_runs:
                open_runs[drug] = (regimen, since, i)
    finished += [(d, reg, start, None, first) for d, (reg, start, first) in open_runs.items()]
    for n, (drug, (dose, freq, _since), start, end, first) in enumerate(finished):
        med = {"text": drug}
        if drug in rxnorm:
            med["coding"] = [{"system": RXNORM, "code": rxnorm[drug], "display": drug}]
        dosage: dict = {"text": f"{dose} {freq}"}
        if freq:
            dosage["timing"] = {"code": {"text": freq}}
            if freq in GTS_CODES:
                dosage["timing"]["code"]["coding"] = [{"system": GTS, "code": GTS_CODES[freq]}]
        if dose and (m := _DOSE.match(dose)):
            value = float(m[1]) if "." in m[1] else int(m[1])  # "1.0g" stays 1.0, as written
            dosage["doseAndRate"] = [{"doseQuantity": {"value": value, "unit": m[2]}}]
        key = f"{visits[0].patient_id}-M{n + 1}"
        res = {
            "resourceType": "MedicationRequest",
            "id": key,
            "status": "active" if end is None else "completed",
            "intent": "order",
            "medicationCodeableConcept": med,
            "subject": subject,
            "encounter": {"reference": _ref("Encounter", visits[first].visit_id)},
            "authoredOn": start.isoformat(),
            "dosageInstruction": [dosage],
        }
        if end is not None:
            res["dispenseRequest"] = {"validityPeriod": {"start": start.isoformat(), "end": end.isoformat()}}
        out.append(_entry(res, key))
    return out


def write_bundles(records: list[CohortRecord], folder: Path) -> int:
    """Write `folder/<patient>.json` for every patient; the number of files written."""
    folder.mkdir(parents=True, exist_ok=True)
    by_patient: dict[str, list[Visit]] = {}
    for r in records:
        by_patient.setdefault(r.visit.patient_id, []).append(r.visit)
    for pid, visits in by_patient.items():
        visits.sort(key=lambda v: v.date)
        text = json.dumps(bundle_for(pid, visits), ensure_ascii=False, separators=(",", ":"))  # C encoder: 10x faster
        (folder / f"{pid}.json").write_text(text + "\n", encoding="utf-8")
    return len(by_patient)
