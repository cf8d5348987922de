"""The evaluation runs the safety pass once per visit and candidate, and reads each visit's facts once for the
guideline reference, the complexity, every candidate and the scores (docs/design.md, "Layers"). Counted by the
`safety_counts` fixture (tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from diaguide.evaluation.data import read_examples
from diaguide.evaluation.model_candidates import ModelCandidate
from diaguide.evaluation.run import evaluate
from diaguide.inference.base import Generation
from diaguide.prompts import plan_to_text

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from eval_fakes import canned_engine  # noqa: E402

ANSWER = "GOAL: HbA1c <7.0%\nTREATMENT: Continue.\nMED: continue | metformin | metformin | 500 mg | bid\nEND\n"


class Fixed:
    """A generator that writes one fixed, usable answer."""

    kind, model_name, adapter_version = "fixed", "fixed-model", None

    def generate(self, prompts: list[str], max_new_tokens: int = 640) -> list[Generation]:
        return [Generation(ANSWER, 1, 1, True) for _ in prompts]


def test_the_evaluation_checks_each_answer_once_and_reads_each_visit_once(
    safety_counts: dict[str, int], tmp_path: Path, small_dataset: Path
) -> None:
    examples = read_examples(small_dataset)[0]
    plans = {e.visit.visit_id: e.plan for e in examples}
    writer = canned_engine("ptuning_v2", lambda v, history: plan_to_text(plans[v.visit_id], v.language))
    candidates = ["rules", ModelCandidate("lora", Fixed()), writer]  # carry_forward is added
    evaluate(tmp_path / "eval", engines=candidates, dataset=small_dataset, resamples=10, history_ablation=False)
    n = len(examples)
    assert safety_counts == {
        "safety": 4 * n,
        "derive": n,
    }  # rules, lora, ptuning_v2, carry_forward: one pass per visit each
