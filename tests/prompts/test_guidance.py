"""The guideline line in the prompt, targets checked against the guideline, and the style kept with an adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diaguide.errors import ModelError
from diaguide.knowledge.guideline import recommend as guideline
from diaguide.prompts.dataset import build_dataset
from diaguide.prompts.guidance import PromptStyle, as_target, checked_target, guidance_text
from diaguide.prompts.render import render_prompt
from diaguide.prompts.target import plan_to_text
from diaguide.prompts.templates import load_template as template
from diaguide.records.schema import Plan, Visit


def _plan(goal: float | None, *meds: tuple[str, str, str]) -> Plan:
    return Plan(
        hba1c_goal=goal,
        medications=[{"action": a, "drug": d, "drug_class": c} for a, d, c in meds],
    )


def test_guidance_text_lists_decisions_by_class_in_a_fixed_order() -> None:
    plan = _plan(
        8.0,
        ("continue", "metformin", "metformin"),
        ("stop", "glyburide", "sulfonylurea"),
        ("start", "empagliflozin", "sglt2i"),
        ("start", "atorvastatin", "statin"),
        ("continue", "losartan", "arb"),
        ("continue", "losartan", "arb"),
    )
    plan.medications[2].dose, plan.medications[2].frequency = "10 mg", "qd"
    assert guidance_text(plan) == (
        "GOAL HbA1c <8.0%; stop glyburide (sulfonylurea); start empagliflozin 10 mg qd (sglt2i), "
        "atorvastatin (statin); continue metformin, losartan"
    )
    assert guidance_text(_plan(None)) == "GOAL -"


def test_prompt_carries_the_line_only_when_asked(make_visit, lang) -> None:
    visit = make_visit(lang)
    reference = guideline(visit)
    plain, guided = render_prompt(visit), render_prompt(visit, guidance=reference)
    label = "指南：" if lang == "zh" else "Guideline: "
    assert label not in plain
    line = next(x for x in guided.splitlines() if x.startswith(label))
    assert line == label + guidance_text(reference)
    # the line sits after the visit's facts, in place of the output instruction (the adapter learnt the
    # format); the strict retry spells the format out after it
    assert guided == plain.replace(template(lang).instruction, line)
    strict = render_prompt(visit, guidance=reference, strict=True)
    assert strict == render_prompt(visit, strict=True).replace(
        template(lang).strict, line + "\n" + template(lang).strict
    )


def test_concordant_physician_plan_is_kept(make_visit) -> None:
    visit = make_visit("en")
    reference = guideline(visit)
    target, why = checked_target(visit, reference.model_copy(update={"treatment": "as I see it"}), "ada")
    assert why == "physician" and target.treatment == "as I see it"


def test_departures_are_replaced_by_the_guideline_plan(make_visit, make_plan) -> None:
    visit = make_visit("en")  # eGFR 52, CAD, HbA1c 8.4%, on metformin + glimepiride
    reference = guideline(visit)
    other_goal = reference.model_copy(update={"hba1c_goal": 6.0})
    assert checked_target(visit, other_goal, "ada") == (as_target(reference), "goal")
    fewer = reference.model_copy(update={"medications": reference.medications[:0]})
    assert checked_target(visit, fewer, "ada") == (as_target(reference), "classes")


def test_a_flagged_physician_plan_is_not_taught(make_visit) -> None:
    visit = make_visit("en")
    visit = visit.model_copy(update={"labs": [*visit.labs]})
    reference = guideline(visit)
    # same goal and classes as the guideline, but metformin far above its maximum dose
    risky = reference.model_copy(deep=True)
    for m in risky.medications:
        if m.drug_class == "metformin":
            m.dose, m.frequency = "3000 mg", "tid"
    assert any(m.drug_class == "metformin" for m in risky.medications), "fixture lost its metformin"
    target, why = checked_target(visit, risky, "ada")
    assert (target, why) == (as_target(reference), "safety")


def _rows(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def cohort(tmp_path: Path, write_cohort, make_plan) -> Path:
    """12 patients x 2 visits: the first visit's plan is the guideline's own, the second's (make_plan) departs
    from the guideline's goal or classes."""
    return write_cohort(tmp_path / "cohort", 12, lambda visit, lang, v: make_plan(lang) if v else guideline(visit))


def test_guided_dataset_checks_train_targets_and_keeps_the_test_truth(cohort, tmp_path) -> None:
    out = tmp_path / "ds"
    manifest = build_dataset(cohort, out, seed=0, guidance=True)
    assert manifest["options"]["guidance"] is True and manifest["options"]["region"] == "ada"
    assert sum(manifest["targets"].values()) == 24
    assert PromptStyle.of_dataset(out) == PromptStyle(guidance=True)
    for split in ("train", "val", "test"):
        for row in _rows(out, split):
            visit, physician = Visit.model_validate(row["visit"]), Plan.model_validate(row["plan"])
            reference = guideline(visit)
            assert row["prompt"] == render_prompt(visit, guidance=reference)
            if split == "test" or row["target_source"] == "physician":
                assert row["target"] == plan_to_text(physician, row["language"])
            else:
                assert row["target"] == plan_to_text(as_target(reference), row["language"])
    train = _rows(out, "train")
    assert {r["target_source"] for r in train} >= {"physician"} and len({r["target_source"] for r in train}) > 1
    assert all(r["target_source"] == "physician" for r in _rows(out, "test"))
    counted: dict[str, int] = {}
    for split in ("train", "val", "test"):
        for r in _rows(out, split):
            counted[r["target_source"]] = counted.get(r["target_source"], 0) + 1
    assert counted == manifest["targets"]


def test_plain_dataset_is_unchanged_by_the_option(cohort, tmp_path) -> None:
    manifest = build_dataset(cohort, tmp_path / "plain", seed=0)
    assert manifest["options"]["guidance"] is False and manifest["targets"] == {"physician": 24}
    assert PromptStyle.of_dataset(tmp_path / "plain") == PromptStyle()
    assert all("Guideline:" not in r["prompt"] for r in _rows(tmp_path / "plain", "train"))


def test_unreadable_dataset_manifest_is_an_error_not_the_plain_style(tmp_path) -> None:
    from diaguide.errors import ConfigError

    assert PromptStyle.of_dataset(tmp_path) == PromptStyle()  # no manifest: a dataset written by hand
    (tmp_path / "manifest.json").write_text("{torn", encoding="utf-8")
    with pytest.raises(ConfigError, match="manifest is not JSON"):
        PromptStyle.of_dataset(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="no options"):
        PromptStyle.of_dataset(tmp_path)


def test_style_round_trips_and_a_bad_file_is_named(tmp_path) -> None:
    assert PromptStyle.of(tmp_path) == PromptStyle() == PromptStyle.of(None)
    PromptStyle(guidance=True).save(tmp_path)
    assert PromptStyle.of(tmp_path).guidance is True
    (tmp_path / "prompt.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="prompt.json is not JSON"):
        PromptStyle.of(tmp_path)
    (tmp_path / "prompt.json").write_text('{"guidance": true, "colour": 1}', encoding="utf-8")
    with pytest.raises(ModelError, match="unknown keys"):
        PromptStyle.of(tmp_path)


def test_guideline_target_keeps_why_the_goal_and_drops_the_repeated_steps(make_visit, lang) -> None:
    reference = guideline(make_visit(lang))
    assert "Plan: " in reference.treatment or "治疗：" in reference.treatment
    target = as_target(reference)
    assert "Plan: " not in target.treatment and "治疗：" not in target.treatment
    assert target.medications == reference.medications and target.hba1c_goal == reference.hba1c_goal
    text = plan_to_text(target, lang)
    treatment = next(x for x in text.splitlines() if x.startswith("TREATMENT: "))
    # the goal sentence says why this goal, so it stays (a bare "goal <7.0%." restating GOAL is dropped)
    assert "HbA1c goal <" in treatment or "HbA1c控制目标<" in treatment
    assert plan_to_text(Plan(treatment="HbA1c goal <7.0%. Add an SGLT2i.", hba1c_goal=7.0), "en").splitlines()[1] == (
        "TREATMENT: Add an SGLT2i."
    )
