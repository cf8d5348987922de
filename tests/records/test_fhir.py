"""FHIR R4 ingestion: carebundle-generated bundles, hand-written edge cases, and bad files."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import carebundle
import pytest

from diaguide.errors import InputError
from diaguide.records.fhir import read_fhir_file, visits_from_bundle

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from fhir_bundles import (  # noqa: E402
    ICD10,
    LOINC,
    SNOMED,
    bp,
    bundle,
    cc,
    condition,
    encounter,
    entry,
    med_request,
    obs,
    patient,
    uid,
)


def _carebundle(profile: str = "type2_diabetes", seed: int = 3) -> dict:
    return json.loads(carebundle.to_json(carebundle.generate_bundle(profile=profile, seed=seed)))


def _resources(b: dict, rtype: str) -> list[dict]:
    return [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == rtype]


def _lab(visit, loinc):
    return next((lab for lab in visit.labs if lab.loinc == loinc), None)


# --- bundles produced by carebundle (US Core, transaction, fullUrl references, no resource ids) ----------


def test_carebundle_type2_visit_carries_the_bundles_own_values():
    b = _carebundle()
    assert all("id" not in r for r in _resources(b, "Observation"))  # references resolve through fullUrl only
    visits, warnings = visits_from_bundle(b, "t2.json")
    assert warnings == []
    assert len(visits) == 1
    v = visits[0]
    pat, enc = _resources(b, "Patient")[0], _resources(b, "Encounter")[0]
    born = dt.date.fromisoformat(pat["birthDate"])
    assert v.date == dt.date.fromisoformat(enc["period"]["start"][:10])
    assert v.patient.age == v.date.year - born.year - ((v.date.month, v.date.day) < (born.month, born.day))
    assert v.patient.sex == pat["gender"]
    assert v.has_diagnosis("E11")
    a1c = next(o for o in _resources(b, "Observation") if o["code"]["coding"][0]["code"] == "4548-4")
    assert _lab(v, "4548-4").value == pytest.approx(a1c["valueQuantity"]["value"])
    panel = next(o for o in _resources(b, "Observation") if o["code"]["coding"][0]["code"] == "85354-9")
    assert v.vitals.systolic_bp == panel["component"][0]["valueQuantity"]["value"]
    assert v.vitals.diastolic_bp == panel["component"][1]["valueQuantity"]["value"]
    # eGFR written as CKD-EPI 2021 (98979-8) is filed under the canonical eGFR code
    assert _lab(v, "33914-3") is not None
    meds = {m.drug: m for m in v.medications}
    assert meds["metformin"].drug_class == "metformin"
    assert meds["metformin"].since == v.date
    weight = next(o for o in _resources(b, "Observation") if o["code"]["coding"][0]["code"] == "29463-7")
    assert v.patient.weight_kg == weight["valueQuantity"]["value"]


def test_carebundle_profiles_map_diagnoses_and_drug_classes():
    v = visits_from_bundle(_carebundle("ckd_stage3", 1), "ckd.json")[0][0]
    assert v.has_diagnosis("N18.3")
    assert {"acei"} <= {m.drug_class for m in v.medications}
    v = visits_from_bundle(_carebundle("type2_diabetes", 1), "t2.json")[0][0]
    classes = {m.drug: m.drug_class for m in v.medications}
    assert classes["atorvastatin"] == "statin"
    assert classes["losartan"] == "arb"


def test_carebundle_history_gives_one_visit_per_encounter_with_earlier_ones_summarised():
    b = json.loads(carebundle.to_json(carebundle.generate_history(profile="type2_diabetes", seed=1, visits=3)))
    visits, warnings = visits_from_bundle(b, "hist.json")
    assert warnings == []
    assert [len(v.history) for v in visits] == [0, 1, 2]
    assert visits[0].date < visits[1].date < visits[2].date
    systolic = [v.vitals.systolic_bp for v in visits]
    assert [h.systolic_bp for h in visits[2].history] == systolic[:2]
    assert visits[2].history[0].date == visits[0].date


def test_carebundle_defects_become_warnings_and_the_rest_is_still_read():
    clean = _carebundle()
    dirty, defects = carebundle.inject_defects(clean, carebundle.Imperfection(unparseable_value=0.3), seed=2)
    assert defects
    visits, warnings = visits_from_bundle(dirty, "dirty.json")
    assert len(visits) == 1
    assert any("not a number" in w and w.startswith("dirty.json: Observation urn:uuid:") for w in warnings)
    assert visits[0].has_diagnosis("E11")
    assert len(visits[0].labs) > 5


# --- hand-written edge cases ------------------------------------------------------------------------


def test_transaction_with_requests_and_relative_references():
    b = bundle(
        entry(patient(id="123", birth="1960-01-20"), request={"method": "PUT", "url": "Patient/123"}),
        entry(
            encounter("Patient/123", "2024-03-10T09:00:00Z", id="e1"), request={"method": "POST", "url": "Encounter"}
        ),
        entry(obs("Patient/123", "4548-4", 7.9, "%", "2024-03-10"), request={"method": "POST", "url": "Observation"}),
        {"request": {"method": "DELETE", "url": "Observation/old"}},
        kind="transaction",
    )
    visits, warnings = visits_from_bundle(b, "tx.json")
    assert warnings == []
    (v,) = visits
    assert (v.patient_id, v.visit_id, v.patient.age) == ("123", "e1", 64)
    assert _lab(v, "4548-4").value == 7.9


def test_searchset_with_outcome_and_absolute_references():
    base = "https://fhir.example.org/R4"
    b = bundle(
        entry(patient(id="p9", birth="1980-12-31"), f"{base}/Patient/p9", search={"mode": "match"}),
        entry(encounter(f"{base}/Patient/p9", "2025-01-02"), f"{base}/Encounter/e9", search={"mode": "include"}),
        entry(obs("Patient/p9", "2345-7", 150, "mg/dL", "2025-01-01"), f"{base}/Observation/o1"),
        entry({"resourceType": "OperationOutcome", "issue": []}, search={"mode": "outcome"}),
        kind="searchset",
    )
    (v,), warnings = visits_from_bundle(b, "search.json")
    assert warnings == []
    assert (v.patient_id, v.visit_id, v.patient.age) == ("p9", "Encounter/e9", 44)
    assert _lab(v, "2345-7").value == 150


def test_no_encounter_makes_one_visit_at_the_latest_observation():
    p = uid()
    b = bundle(
        entry(patient(birth="1950-05-05"), p),
        entry(obs(p, "4548-4", 8.1, "%", "2023-06-01"), uid()),
        entry(obs(p, "4548-4", 7.4, "%", "2023-11-20"), uid()),
        entry(condition(p, SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)", "2010-01-01"), uid()),
    )
    (v,), _ = visits_from_bundle(b, "noenc.json")
    assert v.date == dt.date(2023, 11, 20)
    assert v.patient.age == 73
    assert _lab(v, "4548-4").value == 7.4  # the latest of the two


def test_snomed_only_diagnoses_are_mapped_to_icd10():
    p = uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-05-01"), uid()),
        entry(condition(p, SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)", "2015-01-01"), uid()),
        entry(condition(p, SNOMED, "431857002", "Chronic kidney disease stage 4 (disorder)", "2022-01-01"), uid()),
        entry(condition(p, SNOMED, "88805009", "Chronic congestive heart failure (disorder)", "2023-01-01"), uid()),
        entry(
            {
                "resourceType": "Condition",
                "subject": {"reference": p},
                "code": {"text": "Multiple endocrine neoplasia type 2A"},
            },
            uid(),
        ),
    )
    (v,), warnings = visits_from_bundle(b, "snomed.json")
    assert warnings == []
    by_code = {d.code: d for d in v.diagnoses}
    assert by_code["44054006"].icd10 == "E11.9"
    assert by_code["44054006"].system == "snomed"
    assert by_code["431857002"].icd10 == "N18.4"
    assert v.has_diagnosis("E11", "N18.4", "I50")
    assert "E31.22" in v.icd10_codes()  # text-only condition, recognised by its words


def test_si_units_are_converted_and_flagged():
    p = uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-05-01"), uid()),
        entry(obs(p, "59261-8", 53, "mmol/mol", "2024-04-28"), uid()),
        entry(obs(p, "14749-6", 7.0, "mmol/L", "2024-04-28"), uid()),
        entry(obs(p, "14682-9", 106, "umol/L", "2024-04-28"), uid()),
    )
    (v,), warnings = visits_from_bundle(b, "si.json")
    assert warnings == []
    a1c = _lab(v, "4548-4")
    assert (a1c.value, a1c.unit) == (pytest.approx(7.0, abs=0.01), "%")
    assert "53 mmol/mol" in a1c.flag
    glucose = _lab(v, "2345-7")
    assert (glucose.value, glucose.unit) == (pytest.approx(126.1, abs=0.1), "mg/dL")
    assert _lab(v, "2160-0").value == pytest.approx(1.2, abs=0.01)


def test_implausible_value_and_unknown_unit_are_warned_by_name_and_skipped():
    p = uid()
    bad_a1c, bad_unit = uid(), uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-05-01"), uid()),
        entry(obs(p, "4548-4", 6.9, "%", "2023-12-01"), uid()),
        entry(obs(p, "4548-4", 80, "%", "2024-04-30"), bad_a1c),
        entry(obs(p, "2345-7", 130, "furlongs", "2024-04-30"), bad_unit),
        entry(obs(p, "2160-0", 0.9, "mg/dL", "2024-04-30"), uid()),
    )
    (v,), warnings = visits_from_bundle(b, "bad.json")
    assert len(warnings) == 2
    a1c_warning = next(w for w in warnings if bad_a1c in w)
    assert a1c_warning.startswith("bad.json: Observation")
    assert "4548-4" in a1c_warning and "80" in a1c_warning and "skipped" in a1c_warning
    unit_warning = next(w for w in warnings if bad_unit in w)
    assert "2345-7" in unit_warning and "130" in unit_warning and "furlongs" in unit_warning
    # the implausible 80 % never reaches the visit; the older plausible value is the latest usable one
    assert _lab(v, "4548-4").value == 6.9
    assert _lab(v, "2345-7") is None
    assert _lab(v, "2160-0").value == 0.9


def test_invalid_resource_is_warned_with_field_and_the_rest_processed():
    p = uid()
    broken = uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-05-01"), uid()),
        entry({**obs(p, "4548-4", 7.0, "%", "2024-05-01"), "status": None}, broken),  # status is required
        entry(obs(p, "2160-0", 1.1, "mg/dL", "2024-05-01"), uid()),
        entry({"resourceType": "Claim", "garbage": True}, uid()),  # never parsed, never warned about
    )
    (v,), warnings = visits_from_bundle(b, "inv.json")
    assert len(warnings) == 1
    assert warnings[0].startswith(f"inv.json: Observation {broken}: status")
    assert _lab(v, "2160-0").value == 1.1


def test_medications_active_at_the_visit_only():
    p = uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-06-01"), uid()),
        entry(med_request(p, "860975", "metformin 500 MG Oral Tablet", "2020-01-01"), uid()),
        entry(
            med_request(
                p,
                "4821",
                "glipizide 5 MG Oral Tablet",
                "2020-01-01",
                dispenseRequest={"validityPeriod": {"start": "2020-01-01", "end": "2023-12-31"}},
            ),
            uid(),
        ),
        entry(
            {
                "resourceType": "MedicationStatement",
                "status": "completed",
                "subject": {"reference": p},
                "medicationCodeableConcept": cc(None, "x", "sitagliptin 100 mg"),
                "effectivePeriod": {"start": "2021-01-01", "end": "2022-01-01"},
            },
            uid(),
        ),
        entry(med_request(p, "1545653", "empagliflozin 10 MG Oral Tablet", "2024-09-01"), uid()),  # after the visit
        entry(
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "subject": {"reference": p},
                "contained": [
                    {"resourceType": "Medication", "id": "m1", "code": cc(None, "x", "Lantus (insulin glargine)")}
                ],
                "medicationReference": {"reference": "#m1"},
                "authoredOn": "2023-01-01",
                "dosageInstruction": [
                    {
                        "doseAndRate": [{"doseQuantity": {"value": 12, "unit": "U"}}],
                        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                    }
                ],
            },
            uid(),
        ),
    )
    (v,), warnings = visits_from_bundle(b, "meds.json")
    assert warnings == []
    meds = {m.drug_class: m for m in v.medications}
    assert set(meds) == {"metformin", "basal_insulin"}
    assert meds["metformin"].dose == "500 mg"
    assert meds["metformin"].since == dt.date(2020, 1, 1)
    assert (meds["basal_insulin"].dose, meds["basal_insulin"].frequency) == ("12 U", "1 per 1 d")


def test_medication_resource_referenced_by_fullurl():
    p, m = uid(), uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-06-01"), uid()),
        entry(
            {
                "resourceType": "Medication",
                "code": cc("http://www.nlm.nih.gov/research/umls/rxnorm", "1991302", "semaglutide"),
            },
            m,
        ),
        entry(
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "subject": {"reference": p},
                "medicationReference": {"reference": m},
                "authoredOn": "2024-01-01",
            },
            uid(),
        ),
    )
    (v,), _ = visits_from_bundle(b, "medref.json")
    assert [(x.drug, x.drug_class) for x in v.medications] == [("semaglutide", "glp1ra")]


def test_conditions_active_at_the_visit_and_pregnancy():
    p = uid()
    b = bundle(
        entry(patient(birth="1992-02-02"), p),
        entry(encounter(p, "2024-06-01"), uid()),
        entry(
            condition(p, SNOMED, "72892002", "Normal pregnancy", "2024-02-01", abatementDateTime="2024-11-01"), uid()
        ),
        entry(condition(p, ICD10, "K85.90", "Acute pancreatitis", "2019-03-01", abatementDateTime="2019-04-01"), uid()),
        entry(condition(p, ICD10, "I10", "Hypertension", "2025-01-01"), uid()),  # after the visit
        entry(condition(p, ICD10, "E66.9", "Obesity", "2018-01-01", verificationStatus=cc(None, "refuted")), uid()),
    )
    (v,), _ = visits_from_bundle(b, "preg.json")
    assert v.patient.pregnant is True
    assert v.icd10_codes() == ["Z34.90"]
    assert "K85.90" in v.past_history  # resolved pancreatitis is history, not a current diagnosis


def test_pregnancy_from_an_observation():
    p = uid()
    b = bundle(
        entry(patient(birth="1990-01-01"), p),
        entry(encounter(p, "2024-06-01"), uid()),
        entry(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": cc(LOINC, "82810-3"),
                "subject": {"reference": p},
                "effectiveDateTime": "2024-05-20",
                "valueCodeableConcept": cc(SNOMED, "77386006", "Pregnant"),
            },
            uid(),
        ),
    )
    assert visits_from_bundle(b, "p.json")[0][0].patient.pregnant is True


def test_lab_window_chief_complaint_and_vitals():
    p, e = uid(), uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-06-01", reasonCode=[cc(SNOMED, "x", "Diabetes follow-up")]), e),
        entry(obs(p, "2093-3", 200, "mg/dL", "2022-01-01"), uid()),  # older than a year
        entry(obs(p, "13457-7", 120, "mg/dL", "2023-07-01"), uid()),
        entry(bp(p, 142, 88, "2024-06-01", encounter={"reference": e}), uid()),
    )
    (v,), _ = visits_from_bundle(b, "w.json")
    assert _lab(v, "2093-3") is None
    assert _lab(v, "13457-7").value == 120
    assert v.chief_complaint == "Diabetes follow-up"
    assert (v.vitals.systolic_bp, v.vitals.diastolic_bp) == (142, 88)
    (v,), _ = visits_from_bundle(b, "w.json", window_days=900)
    assert _lab(v, "2093-3").value == 200
    b["entry"].append(
        entry(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": cc(LOINC, "10154-3"),
                "subject": {"reference": p},
                "encounter": {"reference": e},
                "valueString": "Thirst and frequent urination for 3 weeks",
            },
            uid(),
        )
    )
    (v,), _ = visits_from_bundle(b, "w.json")
    assert v.chief_complaint == "Thirst and frequent urination for 3 weeks"


def test_only_ambulatory_encounters_become_visits_and_patients_stay_apart():
    p1, p2 = uid(), uid()
    b = bundle(
        entry(patient(birth="1960-01-01"), p1),
        entry(patient(birth="1970-01-01", gender="male"), p2),
        entry(encounter(p1, "2024-01-10"), uid()),
        entry(encounter(p1, "2024-02-10", cls="EMER"), uid()),
        entry(encounter(p2, "2024-03-10", cls="IMP"), uid()),
        entry(encounter(p2, "2024-04-10", cls="VR"), uid()),
    )
    visits, _ = visits_from_bundle(b, "multi.json")
    assert [(v.patient.age, v.date.month) for v in visits] == [(64, 1), (54, 4)]
    assert visits[1].patient.sex == "male"


# --- bad files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty file"),
        (b"   \n", "empty file"),
        (b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Pat', "not valid JSON"),
        (b'{"resourceType": "Patient", "id": "1"}', "not a FHIR Bundle (resourceType='Patient')"),
        (b"[1, 2, 3]", "not a FHIR Bundle"),
        (bytes(range(256)) * 4, "not"),
        (b'{"resourceType": "Bundle", "entry": {"x": 1}}', "entry"),
    ],
)
def test_bad_files_raise_one_line_input_error_naming_the_file(tmp_path, content, words):
    path = tmp_path / "record.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_fhir_file(path)
    line = str(err.value)
    assert str(path) in line and words in line
    assert "\n" not in line


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_fhir_file(tmp_path / "nope.json")


def test_read_fhir_file_reads_plain_and_gzipped_bundles(tmp_path):
    import gzip

    raw = carebundle.to_json(carebundle.generate_bundle(profile="type2_diabetes", seed=5)).encode()
    (tmp_path / "a.json").write_bytes(raw)
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(raw))
    plain, _ = read_fhir_file(tmp_path / "a.json")
    zipped, _ = read_fhir_file(tmp_path / "a.json.gz")
    assert plain == zipped and len(plain) == 1


def test_only_emergency_encounters_fall_back_to_one_visit_and_say_so_without_ids():
    p = uid()
    b = bundle(
        entry(patient(birth="1960-01-01"), p),
        entry(encounter(p, "2024-02-10", cls="EMER"), uid()),
        entry(obs(p, "2345-7", 250, "mg/dL", "2024-02-10"), uid()),
    )
    (v,), warnings = visits_from_bundle(b, "er.json")
    assert v.date == dt.date(2024, 2, 10) and v.latest_lab("2345-7").value == 250
    assert warnings == [
        "er.json: Encounter: a patient has no ambulatory encounter; one visit made at the latest observation"
    ]
    assert p not in warnings[0]


def test_stopped_order_without_end_date_counts_only_at_the_visit_that_wrote_it():
    p = uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-01-10"), uid()),
        entry(encounter(p, "2024-04-10"), uid()),
        entry(med_request(p, "4821", "glipizide 5 MG Oral Tablet", "2024-01-10", status="stopped"), uid()),
        entry(med_request(p, "860975", "metformin 500 MG Oral Tablet", "2024-01-10"), uid()),
    )
    first, second = visits_from_bundle(b, "stop.json")[0]
    assert {m.drug for m in first.medications} == {"glipizide", "metformin"}
    assert {m.drug for m in second.medications} == {"metformin"}
    assert second.history[0].events == []


def test_resources_for_a_patient_outside_the_bundle_form_their_own_visit():
    b = bundle(
        entry(obs("Patient/abc", "4548-4", 8.8, "%", "2024-03-01"), uid()),
        entry(obs("Patient/abc", "1558-6", 160, "mg/dL", "2024-03-02"), uid()),
        kind="searchset",
    )
    (v,), warnings = visits_from_bundle(b, "obs-only.json")
    assert warnings == []
    assert (v.patient_id, v.date, v.patient.age) == ("abc", dt.date(2024, 3, 2), None)
    assert v.latest_lab("4548-4").value == 8.8


def _allergy(subject: str, code: dict, category: list[str], status: str = "active", **kw) -> dict:
    return {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": subject},
        "category": category,
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", status),
        "code": code,
        **kw,
    }


def test_allergies_name_the_substance_and_the_drug_class_of_drugs():
    p = uid()
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-06-01"), uid()),
        entry(
            _allergy(
                p,
                cc(rx, "4821", "glipizide"),
                ["medication"],
                reaction=[{"manifestation": [cc(SNOMED, "271807003", "Skin rash")]}],
            ),
            uid(),
        ),
        entry(_allergy(p, cc(SNOMED, "91935009", "Peanut"), ["food"]), uid()),
        entry(_allergy(p, cc(rx, "7980", "penicillin G"), ["medication"], status="resolved"), uid()),
        entry(_allergy(p, {"text": "sulfa drugs"}, ["medication"], recordedDate="2025-01-01"), uid()),  # later
    )
    (v,), warnings = visits_from_bundle(b, "allergy.json")
    assert warnings == []
    got = {a.substance: a for a in v.allergies}
    assert set(got) == {"glipizide", "Peanut"}
    assert (got["glipizide"].drug_class, got["glipizide"].reaction) == ("sulfonylurea", "Skin rash")
    assert got["Peanut"].drug_class is None
    carebundle_visit = visits_from_bundle(_carebundle(), "t2.json")[0][0]
    assert [(a.substance, a.drug_class) for a in carebundle_visit.allergies] == [("penicillin G", "other")]
