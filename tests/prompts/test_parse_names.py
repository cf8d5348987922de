"""What reaches the physician as a drug is a drug: a MED line whose drug is neither in the formulary nor a
plausible drug name is unreadable (strict retry, else partial), and a class name is shown as a class to be named."""

from __future__ import annotations

import pytest

from diaguide.prompts.parse import parse_med, parse_plan


@pytest.mark.parametrize(
    "line",
    [
        "continue | eBP2 | other",  # letters and digits mixed: no drug is spelt like that
        "continue | 口干多饮 | other",  # a symptom
        "continue | polyuria and fatigue | other",
        "adjust | blood glucose control | other",  # an instruction
        "continue | 控制(血糖)/监测 | other",  # a Chinese fragment with brackets and slashes
        "start | take one tablet in the morning with plenty of water | other",  # too long for a name
    ],
)
def test_a_field_that_is_no_drug_name_makes_the_line_unreadable(line) -> None:
    with pytest.raises(ValueError, match="no drug named"):
        parse_med(line)


@pytest.mark.parametrize(
    ("line", "cls", "shown"),
    [
        ("start | sulfonylurea | sulfonylurea", "sulfonylurea", "sulfonylurea (a class — name the drug)"),
        ("start | SGLT2 inhibitor | other", "sglt2i", "SGLT2 inhibitor (a class — name the drug)"),
        ("start | 磺脲类 | other", "sulfonylurea", "磺脲类（药物类别，请指明具体药物）"),
        ("start | 基础胰岛素 | basal_insulin | 10 U", "basal_insulin", "基础胰岛素（药物类别，请指明具体药物）"),
    ],
)
def test_a_class_name_is_shown_as_a_class_never_as_a_drug(line, cls, shown) -> None:
    med = parse_med(line)
    assert med.drug_class == cls and med.drug == shown


@pytest.mark.parametrize(("line", "drug"), [("continue | amlodipine | other | 5 mg", "amlodipine"),
                                            ("continue | 氨氯地平 | other", "氨氯地平"),
                                            ("continue | 二甲双胍缓释片 | metformin", "二甲双胍缓释片")])  # fmt: skip
def test_a_plausible_name_or_a_known_drug_is_kept(line, drug) -> None:
    assert parse_med(line).drug == drug


def test_an_answer_with_such_a_line_is_partial_not_whole() -> None:
    answer = (
        "GOAL: HbA1c <7.0%\nMED: continue | metformin | metformin | 500 mg | bid\nMED: continue | eBP2 | other\nEND\n"
    )
    result = parse_plan(answer)
    assert result.plan is not None and [m.drug for m in result.plan.medications] == ["metformin"]
    assert not result.whole
