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


def _plan(treatment: str = "", goal: float | None = 7.0, meds: tuple = ()) -> Plan:
    orders = [{"action": a, "drug": d, "drug_class": c} for a, d, c in meds]
    return Plan.model_validate({"treatment": treatment, "hba1c_goal": goal, "medications": orders})


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_orders_for_drugs_the_visit_does_not_list_get_a_caution(make_visit, lang):
    visit = make_visit(lang)  # takes metformin and glimepiride (English names in both languages), not empagliflozin
    meds = (
        ("continue", "二甲双胍", "metformin"),  # listed, by its Chinese name: no caution
        ("continue", "empagliflozin", "sglt2i"),
        ("stop", "pioglitazone", "tzd"),
        ("start", "atorvastatin", "statin"),  # a start needs nothing on the list
    )
    got = against_visit(_plan(meds=meds), visit).prompts
    assert len(got) == 2
    assert got[0].startswith("empagliflozin") and got[1].startswith("pioglitazone")
    assert (
        ("继续使用" in got[0] and "停用" in got[1]) if lang == "zh" else ("continues" in got[0] and "stops" in got[1])
    )


@pytest.mark.parametrize(
    ("text", "goal", "expected"),
    [
        ("Current HbA1c 8.4%: above goal. Review in 3 months.", 7.0, []),  # true, and the value on file
        ("Current HbA1c 8.4%: at goal.", 7.0, ["at goal, but the plan's goal is <7.0%"]),
        ("Current HbA1c 8.4%: above goal.", 8.5, ["above goal, but it is below the plan's goal of <8.5%"]),
        ("HbA1c 6.4% (prev 6.3), above goal.", 7.0, ["above goal", "the latest result on file is 8.4%"]),
        ("Current HbA1c 8.4%: above goal.", None, []),  # no goal in the plan: nothing to compare the claim with
        ("Start empagliflozin.", 7.0, []),  # no claim
    ],
)
def test_a_treatment_text_that_misreads_hba1c_gets_a_caution(make_visit, text, goal, expected):
    visit = make_visit("en")  # HbA1c 8.4% on file
    got = against_visit(_plan(text, goal), visit).prompts
    assert len(got) == len(expected), got
    for caution, words in zip(got, expected, strict=True):
        assert words in caution


def test_chinese_status_words_are_read_and_cautions_are_not_added_twice(make_visit):
    visit = make_visit("zh")
    once = against_visit(_plan("目前HbA1c 6.9%，未达标。", 7.0), visit)
    assert once.prompts == [
        "文中称HbA1c 6.9%未达标，但已低于本方案目标<7.0%。",
        "文中HbA1c为6.9%，而最近一次结果为8.4%。",
    ]
    assert against_visit(once, visit).prompts == once.prompts
    assert against_visit(_plan("目前HbA1c 8.4%，未达标。", 7.0), visit).prompts == []
    assert against_visit(_plan("目前HbA1c 8.4%，已达标。", 7.0), visit).prompts == [
        "文中称HbA1c 8.4%已达标，但本方案目标为<7.0%。"
    ]
