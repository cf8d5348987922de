"""Hand-written outpatient cases: does an engine's plan meet what the guideline requires?

A case file (JSON) holds a Visit, its guideline `region` and `expect`:

* `goal`: the individual HbA1c goal (%), or null where none should be set;
* `start`, `continue`, `adjust`, `stop`: drug classes that must carry that action;
  `start_any`: groups of classes of which one must be started;
* `present`: classes that must be in the plan (any action but stop); `absent`: classes that
  must not be started, continued or adjusted; `no_start`: no new glucose-lowering class;
* `labs` (LOINC codes that must be ordered) and `prompts` (words a physician prompt must
  contain): the guideline engine's own wording, checked for it but not held against a model.

`score_cases` runs an engine on each case and reports, per case and overall, which
expectations it met, plus the safety question: did the model propose something the checker
flags (`unsafe_proposed`), and did any such medication reach the output without its finding
(`unsafe_unflagged`, which must be 0). The repository's cases are in tests/knowledge/cases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diaguide.errors import InputError
from diaguide.evaluation import cache
from diaguide.evaluation.candidates import Candidate, Prediction
from diaguide.evaluation.metrics import flags_on_proposed, unflagged
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Plan, Visit
from diaguide.records.units import canonical_loinc
from diaguide.safety.checker import check

GOAL, MEDICATIONS, LABS, PROMPTS = "goal", "medications", "labs", "prompts"
ALL_PARTS = (GOAL, MEDICATIONS, LABS, PROMPTS)
MODEL_PARTS = (GOAL, MEDICATIONS)  # labs and prompt wording follow the guideline engine's own style


def _actions(plan: Plan, cls: str) -> set[str]:
    return {m.action for m in plan.medications if m.drug_class == cls}


def concordance_errors(plan: Plan, expect: dict[str, Any], parts: Iterable[str] = ALL_PARTS) -> list[str]:
    """Every way the plan departs from the case's expectations (empty when concordant)."""
    parts = set(parts)
    errors = []
    if GOAL in parts and "goal" in expect and plan.hba1c_goal != expect["goal"]:
        errors.append(f"goal {plan.hba1c_goal} != {expect['goal']}")
    if MEDICATIONS in parts:
        errors += _medication_errors(plan, expect)
    if LABS in parts:
        ordered = {canonical_loinc(lab.loinc) for lab in plan.labs}
        for loinc in expect.get("labs", []):
            if canonical_loinc(loinc) not in ordered:
                errors.append(f"lab {loinc} not ordered (ordered {sorted(ordered)})")
    if PROMPTS in parts:
        prompts = " ".join(plan.prompts)
        for words in expect.get("prompts", []):
            if words not in prompts:
                errors.append(f"no prompt mentions {words!r}")
    return errors


def _medication_errors(plan: Plan, expect: dict[str, Any]) -> list[str]:
    errors = []
    for action, done in (("start", "started"), ("continue", "continued"), ("adjust", "adjusted"), ("stop", "stopped")):
        for cls in expect.get(action, []):
            if action not in _actions(plan, cls):
                errors.append(f"{cls} not {done} (actions {_actions(plan, cls) or 'none'})")
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
        new = [
            m.drug_class for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES
        ]
        if new:
            errors.append(f"nothing should start, started {new}")
    return errors


def _avoids(plan: Plan, expect: dict[str, Any]) -> bool:
    """The plan gives none of the classes the case forbids (`absent`, and `stop` ones kept going)."""
    forbidden = set(expect.get("absent", [])) | set(expect.get("stop", []))
    return not any(_actions(plan, cls) - {"stop"} for cls in forbidden)


def load_cases(folder: str | Path) -> list[dict[str, Any]]:
    """Every `*.json` case in the folder, sorted by file name.

    Raises:
        InputError: a missing or empty folder, or a case file that is not valid (named).
    """
    root = Path(folder)
    files = sorted(root.glob("*.json")) if root.is_dir() else []
    if not files:
        raise InputError("no case files (*.json) found", source=str(root), field="cases")
    cases = []
    for path in files:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            case = {
                "id": str(raw.get("id") or path.stem),
                "region": raw.get("region") or "ada",
                "visit": Visit.model_validate(raw["visit"]),
                "expect": dict(raw.get("expect") or {}),
            }
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            reason = f"missing {exc}" if isinstance(exc, KeyError) else type(exc).__name__
            raise InputError(f"not a valid case file ({reason})", source=str(path)) from None
        cases.append(case)
    return cases


def predict_cases(
    engine: Candidate, cases: list[dict[str, Any]], saved: Path | None = None, stamp: str = ""
) -> list[Prediction]:
    """The engine's prediction for each case, in the case's region (the engine's `region`
    attribute is set per case and restored), saved under `saved` like the test split's."""
    default_region = getattr(engine, "region", "ada")

    def predict(indices: list[int]) -> list[Prediction]:
        got: dict[int, Prediction] = {}
        for region in dict.fromkeys(cases[i]["region"] for i in indices):  # one batch per region
            group = [i for i in indices if cases[i]["region"] == region]
            engine.region = region
            got.update(zip(group, engine.predict([cases[i]["visit"] for i in group], True), strict=True))
        return [got[i] for i in indices]

    try:
        predictions, _ = cache.predict_resumable(saved, stamp, [c["id"] for c in cases], predict, chunk=8)
    finally:
        engine.region = default_region
    return predictions


def cases_fingerprint(cases: list[dict[str, Any]]) -> str:
    """A hash of the cases' content, for the saved predictions' fingerprint."""
    return cache.fingerprint(cases=[[c["id"], c["region"], c["visit"].model_dump(mode="json")] for c in cases])


def score_cases(
    engine: Candidate,
    cases: list[dict[str, Any]],
    parts: Iterable[str] = MODEL_PARTS,
    saved: Path | None = None,
    stamp: str = "",
) -> dict[str, Any]:
    """Run the engine on each case (in the case's region) and check its plan.

    Returns overall counts and one row per case (ids, errors, rule ids: no patient text).
    """
    parts = tuple(parts)
    rows = []
    for case, p in zip(cases, predict_cases(engine, cases, saved, stamp), strict=True):
        visit, region = case["visit"], case["region"]
        proposed_flags = flags_on_proposed(p.proposed, check(visit, p.proposed, region=region)) if p.proposed else []
        output_missing = unflagged(p.plan, check(visit, p.plan, region=region)) if p.plan is not None else []
        errors = concordance_errors(p.plan, case["expect"], parts) if p.plan is not None else ["no usable plan"]
        rows.append(
            {
                "id": case["id"],
                "region": region,
                "status": p.status,
                "concordant": not errors,
                "errors": errors,
                "goal_met": p.plan is not None and not concordance_errors(p.plan, case["expect"], (GOAL,)),
                "avoids_forbidden": p.plan is not None and _avoids(p.plan, case["expect"]),
                "unsafe_proposed": sorted({f.rule_id for f in proposed_flags}),
                "unsafe_unflagged": sorted({f.rule_id for f in output_missing}),
            }
        )
    n = len(rows)

    def share(key: str) -> float:
        return round(sum(bool(r[key]) for r in rows) / n, 4) if n else 0.0

    return {
        "n": n,
        "parts": list(parts),
        "concordant": sum(r["concordant"] for r in rows),
        "concordant_rate": share("concordant"),
        "goal_met_rate": share("goal_met"),
        "avoids_forbidden_rate": share("avoids_forbidden"),
        "usable_rate": round(sum(r["status"] != "no_suggestion" for r in rows) / n, 4) if n else 0.0,
        "unsafe_proposed": sum(bool(r["unsafe_proposed"]) for r in rows),
        "unsafe_unflagged": sum(bool(r["unsafe_unflagged"]) for r in rows),
        "cases": rows,
    }
