"""The cohort's FHIR bundles read back (records.fhir) into the same visits."""

from __future__ import annotations

import json

import pytest

from diaguide.cohort.fhir_export import write_bundles
from diaguide.cohort.generate import generate_cohort
from diaguide.drugs.formulary import lookup
from diaguide.records.fhir import read_fhir_file


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fhir")
    records = generate_cohort(25, seed=21, lang="mixed")
    assert write_bundles(records, folder) == len({r.visit.patient_id for r in records})
    return records, folder


def _meds(visit, canonical):
    def name(drug):
        found = lookup(drug) if canonical else None
        return found.name if found else drug

    return sorted(
        (name(m.drug), m.drug_class, (m.dose or "").replace(" ", ""), m.frequency, m.since) for m in visit.medications
    )


def test_bundles_are_fhir_r4_collections_with_the_expected_codes(exported):
    records, folder = exported
    pid = records[0].visit.patient_id
    bundle = json.loads((folder / f"{pid}.json").read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Encounter", "Condition", "Observation", "MedicationRequest"} <= kinds
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Encounter":
            assert r["class"]["code"] == "AMB"
        if r["resourceType"] == "Observation" and "valueQuantity" in r:
            assert r["code"]["coding"][0]["system"] == "http://loinc.org"
            assert r["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    all_codings = [
        c
        for f in folder.glob("*.json")
        for e in json.loads(f.read_text(encoding="utf-8"))["entry"]
        if e["resource"]["resourceType"] in ("Condition", "MedicationRequest")
        for c in (e["resource"].get("code") or e["resource"].get("medicationCodeableConcept")).get("coding", [])
    ]
    systems = {c["system"] for c in all_codings}
    assert {
        "http://hl7.org/fhir/sid/icd-10-cm",
        "http://snomed.info/sct",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
    } <= systems
    assert any(c["code"] == "44054006" for c in all_codings)  # SNOMED type 2 diabetes


def test_round_trip_gives_the_same_visits(exported):
    records, folder = exported
    original = {r.visit.visit_id: r.visit for r in records}
    read = 0
    for path in sorted(folder.glob("*.json")):
        visits, warnings = read_fhir_file(path)
        assert warnings == []
        for v in visits:
            o = original[v.visit_id]
            read += 1
            assert (v.patient_id, v.date) == (o.patient_id, o.date)
            assert v.patient.model_dump() == o.patient.model_dump()
            assert sorted(v.icd10_codes()) == sorted(o.icd10_codes())
            assert sorted((lab.loinc, lab.value, lab.date) for lab in v.labs) == sorted(
                (lab.loinc, lab.value, lab.date) for lab in o.labs
            )
            assert (v.vitals.systolic_bp, v.vitals.diastolic_bp, v.vitals.weight_kg) == (
                o.vitals.systolic_bp,
                o.vitals.diastolic_bp,
                o.vitals.weight_kg,
            )
            assert _meds(v, canonical=False) == _meds(o, canonical=True)
            assert v.chief_complaint == o.chief_complaint
            assert v.language == o.language
            assert v.present_illness == o.present_illness
            assert v.past_history.startswith(o.past_history)  # then any condition resolved since
            assert [a.substance for a in v.allergies] == [a.substance for a in o.allergies]
            assert len(v.history) == len(o.history)
    assert read == len(records)
    assert {r.visit.language for r in records} == {"en", "zh"}  # both languages were exercised
    assert all(r.visit.present_illness for r in records)
