"""The physician's plan read from FHIR R4 bundles (docs/records.md, "FHIR bundles"): hand-written bundles in
English and Chinese, one rule each, the bad orders the issue names, and carebundle output."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import carebundle

from diaguide.records.fhir import records_from_bundle
from diaguide.records.plans import INFERRED_LABS, NOT_REWRITTEN, ORDERED
from diaguide.records.plans_fhir import OPEN_END

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from fhir_bundles import LOINC, bundle, cc, encounter, entry, med_request, obs, patient  # noqa: E402

PAT = "urn:uuid:p-1"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _enc(n: int, start: str, **kw) -> dict:
    return entry({**encounter(PAT, start, **kw), "id": f"e{n}"}, f"urn:uuid:e{n}")


def _order(n: str, text: str, authored: str | None, enc: int | None = None, status: str = "active", **kw) -> dict:
    r = med_request(PAT, "0", text, authored or "2000-01-01", status=status, id=n, **kw)
    r["medicationCodeableConcept"] = cc(None, "x", text)
    if authored is None:
        del r["authoredOn"]
    if enc is not None:
        r["encounter"] = {"reference": f"urn:uuid:e{enc}"}
    return entry(r, f"urn:uuid:{n}")


def _plans(*entries: dict, lab_days: int = 30):
    b = bundle(entry(patient(), PAT), *entries)
    pairs, warnings, problems = records_from_bundle(b, "b.json", lab_days=lab_days)
    return {v.visit_id: (v, p) for v, p in pairs}, problems


def _actions(plan) -> dict[str, str]:
    return {m.drug: m.action for m in plan.medications}


def test_each_action_from_orders_against_the_list_before():
    got, problems = _plans(
        _enc(1, "2024-01-10"),
        _enc(2, "2024-04-10"),
        _enc(3, "2024-07-10"),
        _order("m1", "metformin 500 MG Oral Tablet", "2024-01-10", 1),
        _order("l1", "lisinopril 10 MG Oral Tablet", "2024-01-10", 1),
        _order("m2", "metformin 1000 MG Oral Tablet", "2024-04-10", 2),
        _order("g2", "empagliflozin 10 MG Oral Tablet", "2024-04-10", 2),
        _order("m3", "metformin 1000 MG Oral Tablet", "2024-07-10", 3),
        _order("l3", "lisinopril 10 MG Oral Tablet", "2024-07-10", 3, status="stopped"),
        _order("s3", "glipizide 5 MG Oral Tablet", "2024-07-10T09:30:00Z"),  # no encounter: placed by its day
    )
    assert problems == []
    v1, p1 = got["e1"]
    assert p1.source == "record" and _actions(p1) == {"metformin": "start", "lisinopril": "start"}
    assert v1.medications == []  # the visit's own orders are the plan, not its input
    v2, p2 = got["e2"]
    assert _actions(p2) == {"metformin": "adjust", "empagliflozin": "start", "lisinopril": "continue"}
    assert {m.drug: m.dose for m in v2.medications} == {"metformin": "500 mg", "lisinopril": "10 mg"}
    bases = {m.drug: m.basis for m in p2.medications}
    assert bases["lisinopril"] == NOT_REWRITTEN and bases["empagliflozin"] == ORDERED
    assert "500 mg" in bases["metformin"]
    _, p3 = got["e3"]
    assert _actions(p3) == {
        "metformin": "continue",
        "glipizide": "start",
        "lisinopril": "stop",
        "empagliflozin": "continue",
    }
    assert next(m for m in p3.medications if m.drug == "lisinopril").basis == "order at the visit with status stopped"


def test_chinese_orders_compare_by_amount_and_frequency():
    dose = [{"text": "每日2次", "doseAndRate": [{"doseQuantity": {"value": 0.5, "unit": "g"}}]}]
    dose3 = [{"text": "每日3次", "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}]}]
    same = [{"text": "每日两次", "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}]}]
    got, _ = _plans(
        _enc(1, "2024-01-10"),
        _enc(2, "2024-03-10"),
        _enc(3, "2024-05-10"),
        _order("a", "二甲双胍片", "2024-01-10", 1, dosageInstruction=dose),
        _order("b", "盐酸二甲双胍", "2024-03-10", 2, dosageInstruction=same),  # 0.5 g twice a day = 500 mg twice
        _order("c", "二甲双胍片", "2024-05-10", 3, dosageInstruction=dose3),  # three times a day: a new dose
    )
    assert _actions(got["e2"][1]) == {"metformin": "continue"}
    assert _actions(got["e3"][1]) == {"metformin": "adjust"}
    assert got["e3"][1].medications[0].drug_class == "metformin"


def test_a_statement_the_visit_ends_is_a_stop_and_an_unknown_drug_keeps_its_name():
    statement = {
        "resourceType": "MedicationStatement",
        "status": "completed",
        "subject": {"reference": PAT},
        "medicationCodeableConcept": cc(None, "x", "glyburide 5 MG"),
        "effectivePeriod": {"start": "2023-01-01", "end": "2024-02-01"},
    }
    got, _ = _plans(
        _enc(1, "2024-02-01"),
        entry(statement, "urn:uuid:st"),
        _order("h", "Huangqi granules 10 g", "2024-02-01", 1),
    )
    plan = got["e1"][1]
    assert _actions(plan) == {"glyburide": "stop", "Huangqi granules 10 g": "start"}
    assert next(m for m in plan.medications if m.action == "start").drug_class == "other"


def test_labs_are_inferred_from_results_within_the_window_after_the_visit():
    got, _ = _plans(
        _enc(1, "2024-01-10"),
        _order("m", "metformin 500 MG", "2024-01-10", 1),
        entry(obs(PAT, "4548-4", 7.9, "%", "2024-01-10"), "urn:uuid:o0"),  # the visit's own result: an input
        entry(obs(PAT, "2160-0", 1.0, "mg/dL", "2024-01-20"), "urn:uuid:o1"),
        entry(obs(PAT, "4548-4", 7.4, "%", "2024-02-25"), "urn:uuid:o2"),  # 46 days after
    )
    labs = got["e1"][1].labs
    assert [(lab.loinc, lab.basis) for lab in labs] == [("2160-0", INFERRED_LABS)]
    wide, _ = _plans(
        _enc(1, "2024-01-10"),
        _order("m", "metformin 500 MG", "2024-01-10", 1),
        entry(obs(PAT, "4548-4", 7.4, "%", "2024-02-25"), "urn:uuid:o2"),
        lab_days=60,
    )
    assert [lab.loinc for lab in wide["e1"][1].labs] == ["4548-4"]


def test_lab_orders_come_from_service_requests_when_the_patient_has_them():
    sr = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": PAT},
        "encounter": {"reference": "urn:uuid:e1"},
        "code": cc(LOINC, "4548-4", "Hemoglobin A1c"),
    }
    got, _ = _plans(
        _enc(1, "2024-01-10"),
        _enc(2, "2024-04-10"),
        _order("m", "metformin 500 MG", "2024-01-10", 1),
        entry(sr, "urn:uuid:sr"),
        entry(obs(PAT, "2160-0", 1.0, "mg/dL", "2024-04-20"), "urn:uuid:o1"),
    )
    assert [(lab.loinc, lab.basis) for lab in got["e1"][1].labs] == [("4548-4", "ServiceRequest at the visit")]
    assert got["e2"][1].labs == []  # requests, not results, say what was ordered once the bundle has them


def test_hba1c_goal_from_a_goal_resource_in_percent_or_mmol_per_mol():
    def goal(start: str, quantity: dict) -> dict:
        return {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "subject": {"reference": PAT},
            "description": {"text": "HbA1c goal"},
            "startDate": start,
            "target": [{"measure": cc(LOINC, "4548-4"), "detailQuantity": quantity}],
        }

    got, _ = _plans(
        _enc(1, "2024-01-10"),
        _enc(2, "2024-06-10"),
        entry(goal("2024-01-10", {"value": 7, "comparator": "<", "unit": "%"}), "urn:uuid:g1"),
        entry(goal("2024-06-10", {"value": 64, "unit": "mmol/mol"}), "urn:uuid:g2"),
    )
    assert got["e1"][1].hba1c_goal == 7.0
    assert got["e2"][1].hba1c_goal == 8.0


def test_treatment_from_care_plan_composition_or_note():
    careplan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": PAT},
        "encounter": {"reference": "urn:uuid:e1"},
        "category": [cc(None, "698360004", "Diabetes self management plan")],
        "activity": [{"detail": {"status": "in-progress", "code": cc(None, "160670007", "Diabetic diet")}}],
    }
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": cc(LOINC, "11488-4"),
        "subject": {"reference": PAT},
        "encounter": {"reference": "urn:uuid:e2"},
        "date": "2024-04-10",
        "author": [{"display": "Dr"}],
        "title": "Note",
        "section": [
            {
                "code": cc(LOINC, "18776-5"),
                "text": {"status": "generated", "div": "<div>加用恩格列净，3个月后复查糖化血红蛋白。</div>"},
            }
        ],
    }
    note = "# History\nPolyuria.\n\n## Plan\nStart empagliflozin 10 mg daily.\nRecheck HbA1c in 3 months.\n"
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": PAT},
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(note.encode()).decode()}}],
        "context": {"encounter": [{"reference": "urn:uuid:e3"}]},
    }
    got, _ = _plans(
        _enc(1, "2024-01-10"),
        _enc(2, "2024-04-10"),
        _enc(3, "2024-07-10"),
        entry(careplan, "urn:uuid:cp"),
        entry(composition, "urn:uuid:co"),
        entry(document, "urn:uuid:dr"),
    )
    assert got["e1"][1].treatment == "Diabetes self management plan: Diabetic diet"
    assert got["e2"][1].treatment == "加用恩格列净，3个月后复查糖化血红蛋白。"
    assert got["e3"][1].treatment == "Start empagliflozin 10 mg daily. Recheck HbA1c in 3 months."


def test_bad_orders_are_named_and_the_good_ones_still_used():
    got, problems = _plans(
        _enc(1, "2024-01-10"),
        _order("ok", "metformin 500 MG", "2024-01-10", 1),
        _order("twice", "metformin 500 MG", "2024-01-10", 1),
        _order("nodate", "empagliflozin 10 MG", None),
        _order("elsewhere", "glipizide 5 MG", "2024-01-10", 9),
    )
    assert _actions(got["e1"][1]) == {"metformin": "start"}
    text = "\n".join(problems)
    assert "b.json: MedicationRequest urn:uuid:nodate: authoredOn, encounter: both missing" in text
    assert "MedicationRequest urn:uuid:elsewhere: encounter: refers to urn:uuid:e9, which is not in this bundle" in text
    assert "MedicationRequest urn:uuid:twice: medication: duplicate of urn:uuid:ok" in text
    assert len(problems) == 3


def test_a_visit_without_anything_of_a_plan_is_named_not_dropped():
    got, problems = _plans(_enc(1, "2024-01-10"))
    visit, plan = got["e1"]
    assert plan is None and visit.visit_id == "e1"
    assert problems == [
        "b.json: Encounter e1: no plan derivable (no medication in force or ordered, no lab order, goal or plan text)"
    ]


def test_synthea_shape_a_stopped_order_without_end_ends_at_the_next_visit_writing_another_drug():
    # Synthea writes status 'stopped' on the order that started a drug it stopped later, with no end date
    got, _ = _plans(
        _enc(1, "2020-01-10"),
        _enc(2, "2020-07-10"),
        _enc(3, "2021-01-10"),
        _order("m", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet", "2020-01-10", 1, "stopped"),
        _order("i", "insulin glargine 100 UNT/ML Injectable Solution", "2021-01-10", 3),
    )
    assert _actions(got["e1"][1]) == {"metformin": "start"}
    assert _actions(got["e2"][1]) == {"metformin": "continue"}
    third = got["e3"][1]
    assert _actions(third) == {"insulin glargine": "start", "metformin": "stop"}
    assert next(m for m in third.medications if m.action == "stop").basis == OPEN_END


def test_carebundle_bundles_give_plans_with_the_bundles_own_drugs():
    from diaguide.drugs.formulary import drug_class_of

    for profile, seed in (("type2_diabetes", 3), ("type2_diabetes", 1), ("ckd_stage3", 1)):
        b = json.loads(carebundle.to_json(carebundle.generate_bundle(profile=profile, seed=seed)))
        named = {
            drug_class_of(e["resource"]["medicationCodeableConcept"]["coding"][0].get("display"))
            for e in b["entry"]
            if e["resource"]["resourceType"] == "MedicationRequest"
        }
        pairs, _, problems = records_from_bundle(b, f"{profile}.json")
        plans = [p for _, p in pairs if p is not None]
        assert plans and problems == [] and all(p.source == "record" for p in plans)
        # one encounter, its prescriptions written at it: each is a start of a drug the bundle names
        starts = {m.drug_class for p in plans for m in p.medications if m.action == "start" and m.basis == ORDERED}
        assert starts and starts <= named
        if seed == 3:
            assert "metformin" in starts
