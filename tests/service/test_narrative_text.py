"""The model's narrative shown as sentences, not as the GOAL:/MED: lines it was trained to write."""

from __future__ import annotations

from diaguide.prompts.target import plan_to_text
from diaguide.records.schema import LabOrder, MedicationOrder, Plan
from diaguide.service.narrative_text import readable

PLAN = Plan(
    hba1c_goal=7.0,
    treatment="Add an SGLT2 inhibitor for CKD.",
    medications=[
        MedicationOrder(drug="glyburide", drug_class="sulfonylurea", action="stop", reason="hypoglycaemia risk"),
        MedicationOrder(drug="empagliflozin", drug_class="sglt2i", action="start", dose="10 mg", frequency="qd"),
        MedicationOrder(drug="metformin", drug_class="metformin", action="continue"),
    ],
    labs=[LabOrder(loinc="4548-4", name="HbA1c", reason="3 months after a change")],
    prompts=["Recheck eGFR in 4 weeks."],
)


def test_english_narrative_reads_as_sentences() -> None:
    lines = readable(plan_to_text(PLAN, "en"), "en")
    assert lines == [
        "HbA1c goal below 7.0%.",
        "Add an SGLT2 inhibitor for CKD.",
        "Stop glyburide — hypoglycaemia risk.",
        "Start empagliflozin 10 mg qd.",
        "Continue metformin.",
        "Order HbA1c (4548-4) — 3 months after a change.",
        "Caution: Recheck eGFR in 4 weeks.",
    ]
    assert not any(line.startswith(("GOAL", "MED", "LAB", "END")) for line in lines)


def test_chinese_narrative_reads_as_sentences() -> None:
    plan = Plan(
        hba1c_goal=7.5,
        medications=[MedicationOrder(drug="二甲双胍", drug_class="metformin", action="stop", reason="eGFR 24")],
        labs=[LabOrder(loinc="33914-3", name="eGFR")],
    )
    lines = readable(plan_to_text(plan, "zh"), "zh")
    assert lines[0] == "糖化血红蛋白目标 <7.5%。"
    assert "停用 二甲双胍：eGFR 24。" in lines and "检查 eGFR (33914-3)。" in lines


def test_a_cut_off_answer_says_so_and_unreadable_text_is_shown_as_written() -> None:
    cut = plan_to_text(PLAN, "en").replace("END", "").rstrip("\n")  # no END, last line cut mid-way
    lines = readable(cut, "en")
    assert lines[0].startswith("The model's answer was cut off")
    assert "Start empagliflozin 10 mg qd." in lines
    prose = "I cannot help with that.\nPlease see a physician."
    assert readable(prose, "en") == ["I cannot help with that.", "Please see a physician."]
