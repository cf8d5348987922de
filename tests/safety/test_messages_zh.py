"""A Chinese visit gets its findings and complexity reasons in Chinese; rule ids, sources,
severities and the drugs named stay the same as for the same visit in English."""

from __future__ import annotations

import re

import pytest

from diaguide.safety.checker import apply_safety, check
from diaguide.safety.complexity import complexity
from diaguide.safety.interactions import interaction_rules
from diaguide.safety.rules import rules_data

from .conftest import make_plan, make_visit

CJK = re.compile(r"[\u4e00-\u9fff]")

CASES = {
    "metformin_egfr_below_30": (dict(egfr=22), make_plan(("metformin", "continue", "500 mg"))),
    "interaction": (dict(meds=("glimepiride",)), make_plan("sitagliptin")),
    "allergy": (dict(allergies=("metformin",)), make_plan("metformin")),
    "sulfa_cross": (dict(allergies=("sulfonamide",)), make_plan("glipizide")),
    "older_overtreatment": (dict(age=80, hba1c=6.0), make_plan(("insulin glargine", "continue", "20 U"))),
    "unknown_drug": (dict(), make_plan("zorbaflozin 5 mg")),
}


def _key(findings):
    return [(f.rule_id, f.severity, f.source, f.drugs) for f in findings]


@pytest.mark.parametrize("case", sorted(CASES))
def test_chinese_visit_gets_chinese_messages_with_the_same_findings(case):
    kwargs, plan = CASES[case]
    en = check(make_visit(language="en", **kwargs), plan)
    zh = check(make_visit(language="zh", **kwargs), plan)
    assert en and _key(en) == _key(zh)
    for e, z in zip(en, zh, strict=True):
        assert not CJK.search(e.message.replace(e.drugs[0], ""))
        assert CJK.search(z.message), z.message
        assert e.message != z.message


def test_metformin_at_egfr_22_reads_as_a_contraindication_in_chinese():
    zh = check(make_visit(language="zh", egfr=22), make_plan(("二甲双胍", "continue", "0.5g bid")))
    crit = next(f for f in zh if f.rule_id == "metformin_egfr_below_30")
    assert crit.severity == "critical" and "禁用二甲双胍" in crit.message and "22" in crit.message


def test_physician_prompt_for_a_critical_finding_is_chinese():
    out = apply_safety(make_visit(language="zh", egfr=22), make_plan(("metformin", "continue", "500 mg")))
    assert any(p.startswith("安全警示（严重）") and "禁用" in p for p in out.prompts)


def test_missing_lab_reads_in_chinese():
    zh = check(make_visit(language="zh", egfr=None), make_plan("metformin"))
    assert any("无eGFR或肌酐结果" in f.message for f in zh)


def test_complexity_reasons_follow_the_visit_language():
    kwargs = dict(age=80, egfr=25, past_history="heart failure; 心力衰竭", meds=("pioglitazone",))
    en = complexity(make_visit(language="en", **kwargs))
    zh = complexity(make_visit(language="zh", **kwargs))
    assert (en.score, en.level) == (zh.score, zh.level) and len(en.reasons) == len(zh.reasons)
    assert "age 75 or older (+1)" in en.reasons and "年龄≥75岁 (+1)" in zh.reasons
    assert any("CKD G4期" in r for r in zh.reasons)
    assert all(CJK.search(r) for r in zh.reasons)


def test_every_rule_and_interaction_has_an_english_and_a_chinese_message():
    for rule in rules_data()["rules"] + interaction_rules():
        assert rule["message"]["en"] and CJK.search(rule["message"]["zh"]), rule["id"]
