"""Model text -> Plan: what a small model really writes must still give a usable plan."""

from __future__ import annotations

import json

import pytest

from diaguide.prompts import parse_plan, plan_to_text
from diaguide.prompts.parse import normalise_action, parse_goal
from diaguide.prompts.target import as_written

GOOD = """GOAL: HbA1c <7.0%
TREATMENT: Add an SGLT2 inhibitor for CKD; keep metformin.
MED: start | empagliflozin | sglt2i | 10 mg | qd | CKD benefit
MED: continue | metformin | metformin | 1000 mg | bid
LAB: 4548-4 | HbA1c | recheck in 3 months
LAB: 9318-7 | UACR | CKD monitoring
CAUTION: Watch volume status with the loop diuretic.
END"""


def _meds(result):
    return [(m.action, m.drug, m.drug_class, m.dose, m.frequency) for m in result.plan.medications]


def test_the_target_format_parses_whole():
    result = parse_plan(GOOD)
    assert result.complete and result.errors == [] and result.unread == 0 and result.whole
    plan = result.plan
    assert plan.hba1c_goal == 7.0
    assert _meds(result) == [
        ("start", "empagliflozin", "sglt2i", "10 mg", "qd"),
        ("continue", "metformin", "metformin", "1000 mg", "bid"),
    ]
    assert plan.medications[0].reason == "CKD benefit"
    assert [(lab.loinc, lab.name) for lab in plan.labs] == [("4548-4", "HbA1c"), ("9318-7", "UACR")]
    assert plan.prompts == ["Watch volume status with the loop diuretic."]
    assert plan.findings == []


def test_truncated_mid_line_drops_the_cut_line_and_says_incomplete():
    cut = GOOD[: GOOD.index("| qd | CKD")]  # stops inside the empagliflozin line
    result = parse_plan(cut)
    assert not result.complete and not result.whole
    assert result.unread == 0  # a cut-off line is what `complete` already says, not an unreadable one
    assert result.plan is not None and result.plan.hba1c_goal == 7.0
    assert result.plan.medications == []  # never a half-read order (its dose could be cut)
    assert any("cut off" in e for e in result.errors)


def test_truncated_after_a_whole_line_keeps_it():
    cut = GOOD[: GOOD.index("LAB: 9318-7")]  # ends with a newline
    result = parse_plan(cut)
    assert not result.complete
    assert len(result.plan.medications) == 2 and [lab.loinc for lab in result.plan.labs] == ["4548-4"]


def test_prose_around_the_answer_is_ignored():
    text = "Sure! Here is the plan for this patient.\n\n" + GOOD + "\nI hope this helps.\nMED: stop | metformin"
    result = parse_plan(text)
    assert result.complete
    assert _meds(result) == _meds(parse_plan(GOOD))  # nothing after END is read


def test_key_order_case_markdown_and_repeats_do_not_matter():
    text = """Plan:
- **lab**: 4548-4 | HbA1c | recheck
* Med: Continue | metformin | metformin | 1000 mg | bid
1. goal: HbA1c < 7.5 %
MED: start | empagliflozin | sglt2i | 10 mg | qd | CKD
MED: start | empagliflozin | sglt2i | 10 mg | qd | CKD
**END**"""
    result = parse_plan(text)
    assert result.complete
    assert result.plan.hba1c_goal == 7.5
    assert [m.drug for m in result.plan.medications] == ["metformin", "empagliflozin"]
    assert result.plan.labs[0].loinc == "4548-4"


def test_full_width_chinese_punctuation_and_chinese_actions():
    text = "GOAL：HbA1c＜7.0％\nMED：加用｜恩格列净｜｜10mg｜qd｜冠心病获益\nMED：继续，二甲双胍，metformin，0.5g，bid\nLAB：糖化血红蛋白｜3个月复查\nEND"
    result = parse_plan(text)
    assert result.complete, result.errors
    assert result.plan.hba1c_goal == 7.0
    assert _meds(result) == [
        ("start", "恩格列净", "sglt2i", "10mg", "qd"),  # class from the formulary
        ("continue", "二甲双胍", "metformin", "0.5g", "bid"),
    ]
    assert result.plan.medications[0].reason == "冠心病获益"
    assert result.plan.labs[0].loinc == "4548-4"  # code found from the Chinese test name


@pytest.mark.parametrize(
    ("word", "action"),
    [("begin", "start"), ("add", "start"), ("Started", "start"), ("开始", "start"), ("加用", "start"),
     ("继续", "continue"), ("keep", "continue"), ("调整", "adjust"), ("加量", "adjust"), ("减量", "adjust"),
     ("increased", "adjust"), ("停用", "stop"), ("discontinue", "stop"), ("stopped", "stop")],
)  # fmt: skip
def test_action_synonyms(word, action):
    assert normalise_action(word) == action
    result = parse_plan(f"MED: {word} | metformin | metformin | 500 mg | bid\nEND")
    assert result.plan.medications[0].action == action


def test_missing_or_unknown_class_comes_from_the_formulary():
    text = "MED: start | empagliflozin | 10 mg | qd | CKD\nMED: start | Jardiance | SGLT-2 inhibitor | 10 mg | qd\nMED: add insulin glargine | weird | 10 U | qhs\nEND"
    meds = parse_plan(text).plan.medications
    assert [(m.drug, m.drug_class, m.dose) for m in meds] == [
        ("empagliflozin", "sglt2i", "10 mg"),
        ("Jardiance", "sglt2i", "10 mg"),
        ("insulin glargine", "basal_insulin", "10 U"),
    ]
    assert meds[2].action == "start"


@pytest.mark.parametrize(
    ("line", "drug_class"),
    [
        ("MED: continue | 司美格鲁肽 | other", "glp1ra"),  # the default adapter's slip on a Chinese visit
        ("MED: continue | 甘精胰岛素 | other", "basal_insulin"),
        ("MED: start | glyburide | dpp4i | 2.5 mg | qd", "sulfonylurea"),
        ("MED: continue | Janumet | metformin", "metformin"),  # a combination: the written class is one of its own
        ("MED: continue | Janumet | statin", "dpp4i"),  # ... or the formulary's first
        ("MED: continue | drug X | sglt2i", "sglt2i"),  # unknown to the formulary: as written
    ],
)
def test_a_drug_the_formulary_knows_has_the_formulary_class(line, drug_class):
    assert parse_plan(line + "\nEND").plan.medications[0].drug_class == drug_class


def test_unusable_lines_are_reported_and_the_rest_kept():
    text = "GOAL: HbA1c <70%\nMED: start | | sglt2i\nLAB: no code | something odd\nLAB: 4548-4 | HbA1c\nEND"
    result = parse_plan(text)
    assert result.complete and result.plan.labs[0].loinc == "4548-4"
    assert result.plan.hba1c_goal is None and result.plan.medications == []
    assert len(result.errors) == 3 and all(e.startswith("line ") for e in result.errors)
    assert result.unread == 3 and not result.whole  # END came, but three lines are missing from the plan


def test_a_med_line_that_names_an_action_as_its_drug_is_unread():
    # a 135M model's loop on a Chinese visit: every field an action, no drug
    text = (
        "GOAL: HbA1c <7.0%\nMED: continue | continue | adjust | stop | 150 mg | qd | 近期发生低血糖\n"
        "MED: start | metformin | metformin | 500 mg | bid\nEND"
    )
    result = parse_plan(text)
    assert [m.drug for m in result.plan.medications] == ["metformin"]
    assert result.errors == ["line 2: MED: no drug named ('continue' is an action)"]
    assert result.complete and result.unread == 1 and not result.whole


@pytest.mark.parametrize(
    ("field", "what"),
    [
        ("17 U", "a dose"),
        ("30单位", "a dose"),
        ("4548-4", "a LOINC code"),
        ("FBG", "a laboratory test"),
        ("糖化血红蛋白", "a laboratory test"),
        ("血脂(LDL-C)", "a laboratory test"),
    ],
)
def test_a_med_line_with_a_dose_code_or_test_for_its_drug_is_unread(field, what):
    # what the default adapter wrote where the drug belongs on looping or cut-off answers
    result = parse_plan(
        f"GOAL: HbA1c <7.0%\nMED: continue | {field} | basal_insulin\nMED: continue | metformin | metformin\nEND"
    )
    assert [m.drug for m in result.plan.medications] == ["metformin"]
    assert result.errors == [f"line 2: MED: no drug named ({field!r} is {what})"]
    assert result.unread == 1 and not result.whole


@pytest.mark.parametrize("drug", ["insulin glargine 100 U/mL", "Humulin 70/30", "门冬胰岛素30", "glucagon"])
def test_a_drug_whose_name_has_numbers_or_units_is_still_a_drug(drug):
    result = parse_plan(f"GOAL: HbA1c <7.0%\nMED: continue | {drug}\nEND")
    assert [m.drug for m in result.plan.medications] == [drug] and result.whole


@pytest.mark.parametrize(
    ("text", "goal"),
    [("HbA1c <7.0%", 7.0), ("HbA1c < 7.5 %", 7.5), ("＜8.0％", 8.0), ("目标 HbA1c<6.5%", 6.5), ("below 7", 7.0),
     ("-", None), ("none", None), ("个体化", None)],
)  # fmt: skip
def test_goal_forms(text, goal):
    assert parse_goal(text) == goal


def test_goal_is_found_in_the_treatment_when_the_line_is_missing():
    result = parse_plan("TREATMENT: HbA1c goal <8.0% given frailty.\nEND")
    assert result.plan.hba1c_goal == 8.0


def test_a_json_plan_is_accepted(make_plan):
    plan = make_plan("en")
    data = plan.model_dump(mode="json")
    data["medications"][0]["action"] = "begin"
    del data["medications"][1]["drug_class"]
    text = "Here you go:\n```json\n" + json.dumps(data) + "\n```"
    result = parse_plan(text)
    assert result.complete and result.plan is not None
    assert result.plan.medications[0].action == "start"
    assert result.plan.medications[1].drug_class == "metformin"
    assert result.plan.labs == plan.labs and result.plan.hba1c_goal == 7.0
    assert result.plan.findings == []  # findings come from the checker only
    assert result.whole
    data["medications"].append({"action": "start"})  # no drug: skipped, so the plan is not whole
    skipped = parse_plan(json.dumps(data))
    assert skipped.unread == 1 and not skipped.whole
    assert len(skipped.plan.medications) == len(data["medications"]) - 1


@pytest.mark.parametrize(
    "text",
    ["", "   \n", "I'm sorry, I cannot help with that.", "{not json", '{"foo": 1}', "GOAL: -\nEND", "MED: | | \nEND"],
)
def test_garbage_gives_no_plan(text):
    result = parse_plan(text)
    assert result.plan is None
    assert result.errors


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_round_trip_on_hand_made_plans(make_plan, lang):
    plan = make_plan(lang)
    result = parse_plan(plan_to_text(plan, lang))
    assert result.complete and result.errors == []
    assert result.plan.hba1c_goal == plan.hba1c_goal
    assert _meds(result) == [(m.action, m.drug, m.drug_class, m.dose, m.frequency) for m in as_written(plan)]
    assert [(lab.loinc, lab.name, lab.reason) for lab in result.plan.labs] == [
        (lab.loinc, lab.name, lab.reason) for lab in plan.labs
    ]
    assert result.plan.prompts == plan.prompts


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_prefix_of_a_target_parses_without_error(make_plan, lang):
    """Truncation at any character: never an exception, never a made-up order."""
    text = plan_to_text(make_plan(lang), lang)
    whole = {(m.action, m.drug, m.dose, m.frequency) for m in parse_plan(text).plan.medications}
    assert whole == {(m.action, m.drug, m.dose, m.frequency) for m in as_written(make_plan(lang))}
    for cut in range(len(text)):
        result = parse_plan(text[:cut])
        assert not result.complete or text[:cut].rstrip().endswith("END")
        if result.plan is not None:
            assert {(m.action, m.drug, m.dose, m.frequency) for m in result.plan.medications} <= whole
