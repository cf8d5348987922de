"""Visit history: earlier visits summarised, trends and medication changes visible."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from diaguide.records.fhir import visits_from_bundle
from diaguide.records.history import attach_history, changes, summarise
from diaguide.records.schema import Visit

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from fhir_bundles import SNOMED, bundle, condition, encounter, entry, med_request, obs, patient, uid  # noqa: E402


def _three_visit_bundle() -> dict:
    """Type 2 diabetes over three visits: HbA1c 9.1 -> 8.2 -> 7.3; empagliflozin added at the second,
    glipizide stopped before the third, metformin raised from 500 to 1000 mg at the third."""
    p = uid()
    return bundle(
        entry(patient(birth="1958-04-01", gender="male"), p),
        entry(condition(p, SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)", "2015-01-01"), uid()),
        entry(encounter(p, "2024-01-15"), uid()),
        entry(encounter(p, "2024-04-15"), uid()),
        entry(encounter(p, "2024-07-15"), uid()),
        entry(obs(p, "4548-4", 9.1, "%", "2024-01-10"), uid()),
        entry(obs(p, "4548-4", 8.2, "%", "2024-04-10"), uid()),
        entry(obs(p, "4548-4", 7.3, "%", "2024-07-10"), uid()),
        entry(obs(p, "33914-3", 58, "mL/min/{1.73_m2}", "2024-04-10"), uid()),
        entry(obs(p, "29463-7", 96.0, "kg", "2024-01-15"), uid()),
        entry(
            med_request(
                p,
                "860975",
                "metformin 500 MG Oral Tablet",
                "2023-01-01",
                dispenseRequest={"validityPeriod": {"start": "2023-01-01", "end": "2024-07-01"}},
            ),
            uid(),
        ),
        entry(med_request(p, "861004", "metformin 1000 MG Oral Tablet", "2024-07-15"), uid()),
        entry(
            med_request(
                p,
                "4821",
                "glipizide 5 MG Oral Tablet",
                "2022-06-01",
                dispenseRequest={"validityPeriod": {"start": "2022-06-01", "end": "2024-06-01"}},
            ),
            uid(),
        ),
        entry(med_request(p, "1545653", "empagliflozin 10 MG Oral Tablet", "2024-04-15"), uid()),
        entry(condition(p, SNOMED, "700378005", "Chronic kidney disease stage 3a", "2024-07-15"), uid()),
    )


def test_history_across_three_visits_shows_hba1c_trend_and_medication_changes():
    visits, warnings = visits_from_bundle(_three_visit_bundle(), "three.json")
    assert warnings == []
    assert [v.date for v in visits] == [dt.date(2024, 1, 15), dt.date(2024, 4, 15), dt.date(2024, 7, 15)]
    last = visits[-1]
    assert [h.hba1c for h in last.history] == [9.1, 8.2]
    assert last.latest_lab("4548-4").value == 7.3
    first, second = last.history
    assert {m.drug_class for m in first.medications} == {"metformin", "sulfonylurea"}
    assert {m.drug_class for m in second.medications} == {"metformin", "sulfonylurea", "sglt2i"}
    assert second.events == ["started sglt2i"]
    assert second.egfr == 58
    assert first.weight_kg == 96.0
    assert first.diagnoses == ["E11.9"]
    # the current visit: glipizide stopped, metformin raised
    assert {m.drug_class for m in last.medications} == {"metformin", "sglt2i"}
    assert next(m for m in last.medications if m.drug_class == "metformin").dose == "1000 mg"
    assert changes(second, summarise(last)) == [
        "stopped sulfonylurea",
        "metformin dose 500 mg -> 1000 mg",
        "new diagnosis N18.31",
    ]


def test_third_visit_history_carries_events_for_later_summaries():
    visits, _ = visits_from_bundle(_three_visit_bundle(), "three.json")
    again = attach_history(visits + [visits[-1].model_copy(update={"visit_id": "v4", "date": dt.date(2024, 10, 1)})])
    fourth = again[-1]
    assert [h.visit_id for h in fourth.history][-1] == visits[-1].visit_id
    assert fourth.history[-1].events == [
        "stopped sulfonylurea",
        "metformin dose 500 mg -> 1000 mg",
        "new diagnosis N18.31",
    ]


def _visit(pid: str, day: str, **kw) -> Visit:
    return Visit.model_validate({"visit_id": f"{pid}-{day}", "patient_id": pid, "date": day, **kw})


def test_attach_history_keeps_patients_apart_sorts_and_does_not_mutate():
    a2, a1, b1 = _visit("a", "2024-02-01"), _visit("a", "2024-01-01"), _visit("b", "2024-01-15")
    out = attach_history([a2, b1, a1])
    by_id = {v.visit_id: v for v in out}
    assert [h.visit_id for h in by_id["a-2024-02-01"].history] == ["a-2024-01-01"]
    assert by_id["b-2024-01-15"].history == []
    assert a2.history == []  # inputs untouched


def test_attach_history_limit_keeps_the_most_recent():
    visits = [_visit("a", f"2024-0{m}-01") for m in range(1, 6)]
    last = attach_history(visits, limit=2)[-1]
    assert [h.date.month for h in last.history] == [3, 4]


def test_summarise_reads_labs_vitals_and_marks_hypoglycaemia():
    v = _visit(
        "a",
        "2024-03-01",
        labs=[
            {"loinc": "4548-4", "value": 8.0, "date": "2023-12-01"},
            {"loinc": "4548-4", "value": 7.6, "date": "2024-02-20"},
            {"loinc": "1558-6", "value": 140},
            {"loinc": "9318-7", "value": 45},
            {"loinc": "13457-7", "value": 101},
        ],
        vitals={"systolic_bp": 146, "weight_kg": 88},
        diagnoses=[{"system": "icd10", "code": "E11.649", "icd10": "E11.649"}],
        medications=[{"drug": "glimepiride", "drug_class": "sulfonylurea", "dose": "2 mg"}],
        chief_complaint="shaky spells before lunch",
    )
    s = summarise(v)
    assert (s.hba1c, s.fasting_glucose, s.uacr, s.ldl) == (7.6, 140, 45, 101)
    assert (s.systolic_bp, s.weight_kg) == (146, 88)
    assert s.events == ["hypoglycaemia"]
    assert s.medications[0].drug_class == "sulfonylurea"
    assert s.chief_complaint == "shaky spells before lunch"


def test_changes_names_drugs_outside_the_class_vocabulary_and_switches():
    before = _visit("a", "2024-01-01", medications=[{"drug": "glipizide", "drug_class": "sulfonylurea"}])
    after = _visit(
        "a",
        "2024-04-01",
        medications=[{"drug": "gliclazide", "drug_class": "sulfonylurea"}, {"drug": "carvedilol"}],
    )
    assert changes(before, after) == ["started carvedilol", "switched glipizide -> gliclazide"]
