"""The guideline engine against hand-written outpatient cases and at its thresholds.

Each case in tests/knowledge/cases/*.json is a Visit plus what the guideline requires:
`goal` (HbA1c %), classes that must be started (`start`, or one of each `start_any` group),
continued, adjusted or stopped, classes that must not be given (`absent`: no start, continue
or adjust order), `no_start` (no new glucose-lowering class), labs that must be ordered
(LOINC) and words the prompts must contain.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diaguide.errors import ConfigError
from diaguide.knowledge.guideline import recommend
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Plan, Visit
from diaguide.records.units import canonical_loinc

CASES = sorted((Path(__file__).parent / "cases").glob("*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _actions(plan: Plan, cls: str) -> set[str]:
    return {m.action for m in plan.medications if m.drug_class == cls}


def concordance_errors(plan: Plan, expect: dict) -> list[str]:
    """Every way the plan departs from the case's expectations (empty when concordant)."""
    errors = []
    if "goal" in expect and plan.hba1c_goal != expect["goal"]:
        errors.append(f"goal {plan.hba1c_goal} != {expect['goal']}")
    for key, action in (("start", "start"), ("continue", "continue"), ("adjust", "adjust"), ("stop", "stop")):
        for cls in expect.get(key, []):
            if action not in _actions(plan, cls):
                errors.append(f"{cls} not {action}ed (actions {_actions(plan, cls) or 'none'})")
    for group in expect.get("start_any", []):
        if not any("start" in _actions(plan, cls) for cls in group):
            errors.append(f"none of {group} started")
    for cls in expect.get("present", []):
        if not _actions(plan, cls) - {"stop"}:
            errors.append(f"{cls} missing from the plan")
    for cls in expect.get("absent", []):
        if _actions(plan, cls) - {"stop"}:
            errors.append(f"{cls} must not be given (actions {_actions(plan, cls)})")
    if expect.get("no_start"):
        new = [m.drug_class for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES]
        if new:
            errors.append(f"nothing should start, started {new}")
    ordered = {canonical_loinc(lab.loinc) for lab in plan.labs}
    for loinc in expect.get("labs", []):
        if canonical_loinc(loinc) not in ordered:
            errors.append(f"lab {loinc} not ordered (ordered {sorted(ordered)})")
    prompts = " ".join(plan.prompts)
    for words in expect.get("prompts", []):
        if words not in prompts:
            errors.append(f"no prompt mentions {words!r}")
    return errors


def test_there_are_enough_cases_in_both_languages():
    languages = [_load(p)["visit"].get("language", "en") for p in CASES]
    assert len(CASES) >= 16
    assert languages.count("zh") >= 3 and languages.count("en") >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_engine_is_concordant_with_case(path: Path):
    case = _load(path)
    visit = Visit.model_validate(case["visit"])
    plan = recommend(visit, region=case["region"])
    assert concordance_errors(plan, case["expect"]) == [], case["description"]
    # every decision says why, citing its source
    assert all(m.reason and "(" in m.reason for m in plan.medications)
    assert all(lab.reason for lab in plan.labs)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_treatment_states_the_goal_in_the_visit_language(path: Path):
    case = _load(path)
    visit = Visit.model_validate(case["visit"])
    plan = recommend(visit, region=case["region"])
    if plan.hba1c_goal is not None:
        assert f"<{plan.hba1c_goal:.1f}%" in plan.treatment
    if visit.language == "zh":
        assert "HbA1c控制目标" in plan.treatment and "治疗：" in plan.treatment
    else:
        assert plan.treatment.startswith("HbA1c goal")


def test_unknown_region_is_a_config_error():
    visit = Visit.model_validate(_load(CASES[0])["visit"])
    with pytest.raises(ConfigError, match="region"):
        recommend(visit, region="nice")
