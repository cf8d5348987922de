"""The facts read in the notes reach the model's prompt (a model trained with that line), with where they were
written; a model trained without it gets the prompt it was trained on."""

from __future__ import annotations

import datetime as dt
import json

from diaguide.prompts import render_prompt
from diaguide.prompts.guidance import PromptStyle, guideline_plan, notes_facts
from diaguide.records.schema import Visit


def _visit(lang: str, **text) -> Visit:
    return Visit(visit_id="v", patient_id="p", date=dt.date(2025, 6, 1), language=lang, patient={"age": 62, "sex": "male"},
                 diagnoses=[{"system": "icd10", "code": "E11.9"}],
                 medications=[{"drug": "metformin", "drug_class": "metformin", "dose": "500 mg", "frequency": "bid"}], **text)  # fmt: skip


def test_the_notes_line_names_each_fact_and_its_field() -> None:
    visit = _visit("zh", past_history="规律腹膜透析3年。", present_illness="1周前外院查eGFR 22。")
    items = notes_facts(visit)
    assert "dialysis (既往史)" in items and "egfr 22 2025-05-25 (现病史)" in items
    prompt = render_prompt(visit, guidance=guideline_plan(visit, "ada"), notes=items)
    lines = prompt.splitlines()
    assert lines[-2].startswith("病历要点：") and "dialysis (既往史)" in lines[-2]
    assert lines[-1].startswith("指南：") and "stop metformin" in lines[-1]  # the guideline line acts on the notes


def test_negated_and_family_facts_stay_out_of_the_line() -> None:
    visit = _visit("en", past_history="Not on dialysis. Father on dialysis.")
    assert notes_facts(visit) == []
    assert "From the notes" not in render_prompt(visit, notes=notes_facts(visit))


def test_the_style_flag_is_read_from_the_adapter_folder(tmp_path) -> None:
    assert PromptStyle.of(tmp_path) == PromptStyle()  # no prompt.json: no notes line, no guideline line
    (tmp_path / "prompt.json").write_text(json.dumps({"guidance": True, "notes_facts": True}))
    assert PromptStyle.of(tmp_path) == PromptStyle(guidance=True, notes_facts=True)
