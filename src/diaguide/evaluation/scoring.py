"""Per-visit scoring of an engine's predictions: the safety re-checks, the text scores, and the
row each visit contributes to metrics.json, the bootstrap and the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diaguide.evaluation.candidates import Prediction
from diaguide.evaluation.data import Example
from diaguide.evaluation.metrics import class_actions, flags_on_proposed, med_classes, unflagged, visit_columns
from diaguide.evaluation.text_metrics import text_scores
from diaguide.prompts import plan_to_text
from diaguide.prompts.target import consistency_cautions
from diaguide.records.schema import Plan
from diaguide.safety.checker import check

ACTION_LABELS: tuple[str, ...] = ("start", "continue", "adjust", "stop", "none")
# one label per class when a plan gives a class several actions (stop one sulfonylurea, start
# another): the change a physician would notice first
_PRECEDENCE = ("start", "stop", "adjust", "continue")


def primary_action(actions: frozenset[str] | None) -> str:
    """The one action that stands for a class in the confusion view ("none": not in the plan)."""
    if not actions:
        return "none"
    return next(a for a in _PRECEDENCE if a in actions)


def _actions(plan: Plan | None) -> dict[str, list[str]]:
    return {c: sorted(a) for c, a in sorted(class_actions(plan).items())}


def score_one(example: Example, prediction: Prediction, guideline_plan: Plan | None, region: str) -> dict[str, Any]:
    """The columns of `metrics.visit_columns` plus what the report shows of this visit."""
    visit, truth = example.visit, example.plan
    proposed, output = prediction.proposed, prediction.plan
    proposed_findings = check(visit, proposed, region=region) if proposed is not None else []
    output_findings = check(visit, output, region=region) if output is not None and output.medications else []
    reference = plan_to_text(truth, example.language)
    # the rules engine writes no text: its plan in the target format is what it "says"
    said = (
        prediction.text
        if prediction.text is not None
        else (plan_to_text(proposed, example.language) if proposed is not None else None)
    )
    parsed = prediction.usable
    contradictions = consistency_cautions(proposed, visit, region) if parsed and proposed is not None else []
    columns = visit_columns(
        truth=truth,
        proposed=proposed,
        output=output,
        parsed=parsed,
        proposed_findings=proposed_findings,
        output_findings=output_findings,
        guideline=guideline_plan,
        text=text_scores(said, reference),
        contradictions=len(contradictions),
    )
    scored = (output if output is not None else proposed) if parsed else None
    predicted, physician = _actions(scored), _actions(truth)
    pairs = [
        [primary_action(frozenset(physician.get(c, ()))), primary_action(frozenset(predicted.get(c, ())))]
        for c in sorted(predicted.keys() | physician.keys())
    ]
    pred_classes, true_classes = med_classes(scored), med_classes(truth)
    return {
        "id": example.id,
        "language": example.language,
        "status": prediction.status,
        "columns": columns,
        "physician": physician,
        "predicted": predicted,
        "guideline": _actions(guideline_plan),
        "action_pairs": pairs,
        "missed": sorted(true_classes - pred_classes),
        "extra": sorted(pred_classes - true_classes),
        "flags_proposed": [f"{f.rule_id} ({f.severity})" for f in flags_on_proposed(proposed, proposed_findings)],
        "unflagged": [f"{f.rule_id} ({f.severity})" for f in unflagged(output, output_findings)],
        "findings": [f"{f.rule_id} ({f.severity})" for f in (output.findings if output else [])],
        "contradictions": contradictions,
    }


def score_predictions(
    examples: Sequence[Example],
    predictions: Sequence[Prediction],
    guideline_plans: Sequence[Plan | None],
    levels: Sequence[str],
    region: str,
) -> list[dict[str, Any]]:
    """One row per visit, in the examples' order, each tagged with its complexity level."""
    rows = []
    for example, prediction, reference, level in zip(examples, predictions, guideline_plans, levels, strict=True):
        row = score_one(example, prediction, reference, region)
        row["complexity"] = level
        rows.append(row)
    return rows


def action_confusion(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Physician action (rows) x predicted action (columns) over (visit, class) pairs in either plan."""
    index = {a: i for i, a in enumerate(ACTION_LABELS)}
    counts = [[0] * len(ACTION_LABELS) for _ in ACTION_LABELS]
    for row in rows:
        for physician, predicted in row["action_pairs"]:
            counts[index[physician]][index[predicted]] += 1
    return {"labels": list(ACTION_LABELS), "rows": "physician", "columns": "predicted", "counts": counts}
