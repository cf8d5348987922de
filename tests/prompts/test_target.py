"""Plan -> target text: fixed keys, one fact a line, and a lossless round trip of the orders."""

from __future__ import annotations

import pytest

from diaguide.cohort.generate import generate_cohort
from diaguide.prompts import parse_plan, plan_to_text
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
    assert lines[1] == "MED: continue | metformin | metformin | - | -"
    assert lines[2] == "MED: stop | a/b | other | 5 mg | - | line break"  # a `|` in a value cannot split it


def test_long_text_is_cut(lang):
    plan = Plan(treatment="Intensify therapy now. " * 40, prompts=["Check the feet. " * 30] * 5)
    lines = plan_to_text(plan, lang).splitlines()
    assert len(lines[1]) < 200
    assert sum(line.startswith("CAUTION: ") for line in lines) == 2


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
            (m.action, m.drug, m.drug_class, m.dose, m.frequency) for m in plan.medications
        ]
        assert [(lab.loinc, lab.name) for lab in got.labs] == [(lab.loinc, lab.name) for lab in plan.labs]
        for parsed, given in zip(got.medications, plan.medications, strict=True):
            if given.action != "continue":  # reasons are kept (cut to the template's budget)
                assert given.reason.startswith(parsed.reason.rstrip("…")), (parsed.reason, given.reason)
