"""Plan -> target text: fixed keys, one fact a line, and a lossless round trip of the orders."""

from __future__ import annotations

import pytest

from diaguide.cohort.generate import generate_cohort
from diaguide.prompts import parse_plan, plan_to_text
from diaguide.prompts.target import against_visit, as_written
from diaguide.records.schema import Plan

KEYS = ("GOAL: ", "TREATMENT: ", "MED: ", "LAB: ", "CAUTION: ")


def test_target_lines_use_fixed_ascii_keys_in_a_fixed_order(make_plan, lang):
    lines = plan_to_text(make_plan(lang), lang).splitlines()
    assert lines[0] == "GOAL: HbA1c <7.0%"
    assert lines[-1] == "END"
    order = [next(i for i, k in enumerate(KEYS) if line.startswith(k)) for line in lines[:-1]]
    assert order == sorted(order)
    assert [line.split(": ", 1)[0] for line in lines[:-1]].count("MED") == 3


def test_values_are_in_the_visit_language(make_plan):
    zh = plan_to_text(make_plan("zh"), "zh")
    assert "MED: start | 恩格列净 | sglt2i | 10 mg | qd | 冠心病、CKD获益" in zh
    assert "LAB: 4548-4 | HbA1c | 3个月复查" in zh


def test_findings_never_reach_the_target_and_goal_is_not_repeated(make_plan, lang):
    text = plan_to_text(make_plan(lang), lang)
    assert "not in the target" not in text
    # the treatment's opening "HbA1c goal <7.0%." restates the GOAL line
    treatment = next(line for line in text.splitlines() if line.startswith("TREATMENT: "))
    assert "<7.0%" not in treatment


def test_continue_lines_carry_no_reason_and_empty_fields_are_dashes():
    plan = Plan.model_validate(
        {
            "medications": [
                {"drug": "metformin", "drug_class": "metformin", "action": "continue", "reason": "continue therapy"},
                {"drug": "a|b", "drug_class": "other", "action": "stop", "dose": "5 mg", "reason": "line\nbreak"},
            ]
        }
    )
    lines = plan_to_text(plan, "en").splitlines()
    assert lines[0] == "GOAL: -"
    assert lines[1] == "MED: stop | a/b | other | 5 mg | - | line break"  # a `|` in a value cannot split it
    assert lines[2] == "MED: continue | metformin | metformin"  # no dose (the visit's), no reason


def test_med_lines_follow_the_action_order_and_keep_their_order_within_an_action():
    meds = [("continue", "metformin"), ("start", "empagliflozin"), ("stop", "glyburide"), ("continue", "losartan"),
            ("adjust", "insulin glargine"), ("start", "atorvastatin")]  # fmt: skip
    plan = Plan.model_validate({"medications": [{"action": a, "drug": d, "dose": "1 mg"} for a, d in meds]})
    written = [line.split(" | ")[:2] for line in plan_to_text(plan, "en").splitlines() if line.startswith("MED: ")]
    assert written == [["MED: stop", "glyburide"], ["MED: start", "empagliflozin"], ["MED: start", "atorvastatin"],
                       ["MED: adjust", "insulin glargine"], ["MED: continue", "metformin"],
                       ["MED: continue", "losartan"]]  # fmt: skip


def test_continued_drugs_get_the_dose_the_visit_lists(make_visit):
    visit = make_visit("en")  # metformin 1000 mg bid, glimepiride 2 mg qd, ...
    plan = Plan.model_validate(
        {
            "medications": [
                {"drug": "Metformin", "drug_class": "metformin", "action": "continue"},
                {"drug": "glimepiride", "drug_class": "sulfonylurea", "action": "continue", "dose": "1 mg"},
                {"drug": "empagliflozin", "drug_class": "sglt2i", "action": "continue"},  # not taken: left empty
            ]
        }
    )
    got = against_visit(plan, visit)
    now = {m.drug: (m.dose, m.frequency) for m in visit.medications}
    assert [(m.dose, m.frequency) for m in got.medications] == [now["metformin"], ("1 mg", None), (None, None)]


def test_the_same_drug_is_found_by_the_formulary_in_any_language(make_visit):
    visit = make_visit("en")  # metformin 1000 mg bid, glimepiride 2 mg qd
    plan = Plan.model_validate(
        {
            "medications": [
                {"drug": "二甲双胍", "drug_class": "metformin", "action": "continue"},
                {"drug": "格列美脲", "drug_class": "sulfonylurea", "action": "start", "dose": "1 mg"},
                {"drug": "glimepiride", "drug_class": "sulfonylurea", "action": "continue"},
            ]
        }
    )
    now = {m.drug: (m.dose, m.frequency) for m in visit.medications}
    got = [(m.action, m.drug, m.dose, m.frequency) for m in against_visit(plan, visit).medications]
    assert got == [("continue", "二甲双胍", *now["metformin"]), ("continue", "glimepiride", *now["glimepiride"])]


def test_a_drug_ordered_twice_keeps_the_order_that_fits_the_visit(make_visit):
    visit = make_visit("en")  # takes metformin and glimepiride, not empagliflozin
    orders = [
        ("start", "metformin", "500 mg"),  # taken: the start goes
        ("adjust", "Metformin", "1000 mg"),
        ("continue", "metformin", None),  # a second non-start order of a taken drug: the first one stays
        ("continue", "empagliflozin", None),  # not taken: the start stays
        ("start", "empagliflozin", "10 mg"),
        ("stop", "glimepiride", None),  # ordered once: kept as written
        ("start", "atorvastatin", "20 mg"),
    ]
    plan = Plan.model_validate({"medications": [{"action": a, "drug": d, "dose": x} for a, d, x in orders]})
    got = [(m.action, m.drug, m.dose) for m in against_visit(plan, visit).medications]
    assert got == [
        ("adjust", "Metformin", "1000 mg"),
        ("start", "empagliflozin", "10 mg"),
        ("stop", "glimepiride", None),
        ("start", "atorvastatin", "20 mg"),
    ]


@pytest.mark.parametrize(("lang", "seed"), [("en", 11), ("zh", 12)])
def test_round_trip_on_a_generated_cohort(lang, seed):
    """parse_plan(plan_to_text(p)) gives back every physician plan's orders and goal."""
    records = generate_cohort(patients=25, seed=seed, lang=lang)
    assert len(records) > 25
    for record in records:
        plan = record.plan
        result = parse_plan(plan_to_text(plan, lang))
        assert result.complete and result.errors == [], result.errors
        got = result.plan
        assert got.hba1c_goal == (round(plan.hba1c_goal, 1) if plan.hba1c_goal is not None else None)
        assert [(m.action, m.drug, m.drug_class, m.dose, m.frequency) for m in got.medications] == [
            (m.action, m.drug, m.drug_class, m.dose, m.frequency) for m in as_written(plan)
        ]
        # a continued drug the visit lists gets its dose back from the visit
        now = {m.drug: (m.dose, m.frequency) for m in record.visit.medications}
        for m in against_visit(got, record.visit).medications:
            if m.action == "continue" and m.drug in now:
                assert (m.dose, m.frequency) == now[m.drug]
        assert [(lab.loinc, lab.name) for lab in got.labs] == [(lab.loinc, lab.name) for lab in plan.labs]
        for parsed, given in zip(got.medications, as_written(plan), strict=True):
            if given.action != "continue":  # reasons are kept (cut to the template's budget)
                assert given.reason.startswith(parsed.reason.rstrip("…")), (parsed.reason, given.reason)
