"""Chinese records: diagnoses only in the note, drugs by Chinese generic or brand name."""

from __future__ import annotations

import pytest

from diaguide.safety.checker import check

CASES = [
    ("慢性心力衰竭，NYHA III级", {}, ("吡格列酮", "start"), "tzd_heart_failure", "critical"),
    ("无心衰病史", {}, ("吡格列酮", "start"), None, None),
    (
        "孕24周，妊娠期糖尿病",
        {"sex": "female", "age": 31},
        ("恩格列净", "continue"),
        "pregnancy_contraindicated",
        "critical",
    ),
    ("甲状腺髓样癌家族史", {}, ("度拉糖肽", "start"), "glp1_men2_mtc", "critical"),
    ("2年前急性胰腺炎", {}, ("西格列汀", "start"), "incretin_pancreatitis", "warning"),
    ("上周夜间低血糖2次", {"age": 72}, ("格列美脲", "continue"), "hypoglycaemia_recent", "warning"),
    ("1型糖尿病10年", {"dx": ()}, ("达格列净", "start"), "type1_sglt2i", "critical"),
    ("肝硬化失代偿期", {}, ("拜糖平", "continue"), "agi_cirrhosis_or_bowel", "critical"),
]


@pytest.mark.parametrize(("history", "visit_kw", "order", "rule", "severity"), CASES, ids=[c[0] for c in CASES])
def test_condition_in_chinese_note(visit_factory, plan_factory, history, visit_kw, order, rule, severity) -> None:
    visit = visit_factory(language="zh", past_history=history, **visit_kw)
    findings = check(visit, plan_factory(order), "cds")
    alarms = {f.rule_id: f for f in findings if f.severity != "info"}
    if rule is None:
        assert alarms == {}
    else:
        assert rule in alarms and alarms[rule].severity == severity and alarms[rule].drugs == [order[0]]
