"""The safety pass runs exactly once per path, and a visit's facts are read once (docs/design.md, "Layers"): the
guideline engine's path (`diaguide recommend --engine rules`) and the model's path through the recommend pipeline
(the evaluation's: tests/evaluation/test_safety_once.py). Counted by the `safety_counts` fixture (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diaguide import recommend as recommend_module
from diaguide.inference import pipeline
from diaguide.inference.base import Generation
from diaguide.prompts.guidance import PromptStyle
from diaguide.records.schema import Visit

CASES = Path(__file__).parent / "knowledge" / "cases"
# continue what the visit takes, at a goal: a usable answer for any visit
ANSWER = "GOAL: HbA1c <7.0%\nTREATMENT: Continue.\nMED: continue | metformin | metformin | 500 mg | bid\nEND\n"


class Fixed:
    """A generator that writes one fixed answer."""

    kind, model_name, adapter_version = "fixed", "fixed-model", None

    def __init__(self, text: str = ANSWER, style: PromptStyle | None = None):
        self.text, self.calls = text, 0
        if style is not None:
            self.prompt_style = style

    def generate(self, prompts: list[str], max_new_tokens: int = 640) -> list[Generation]:
        self.calls += 1
        return [Generation(self.text, 1, 1, True) for _ in prompts]


def case(name: str) -> Visit:
    return Visit.model_validate(json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))["visit"])


@pytest.mark.parametrize("name", ["05_egfr25_on_metformin", "09_pregnancy_t2dm", "01_new_t2dm_normal_kidneys"])
def test_the_rules_path_checks_once_and_reads_the_visit_once(safety_counts: dict[str, int], name: str) -> None:
    plan = recommend_module.plan_for(case(name), engine="rules")
    assert safety_counts == {"safety": 1, "derive": 1}
    assert plan.hba1c_goal is not None or plan.findings or plan.medications  # a real plan came out


@pytest.mark.parametrize(
    "style", [None, PromptStyle(guidance=True), PromptStyle(guidance=True, notes_facts=True)], ids=str
)
def test_the_model_path_checks_once_and_reads_the_visit_once(
    safety_counts: dict[str, int], monkeypatch: pytest.MonkeyPatch, style: PromptStyle | None
) -> None:
    generator = Fixed(style=style)
    monkeypatch.setattr(pipeline, "generator_for", lambda **kwargs: generator)
    plan = recommend_module.plan_for(case("05_egfr25_on_metformin"), engine="model")
    assert generator.calls == 1
    assert safety_counts == {"safety": 1, "derive": 1}
    # the one pass still found what matters: metformin at eGFR 25 (a second pass would have repeated nothing new)
    assert any(f.severity == "critical" and "metformin" in f.drugs for f in plan.findings)
