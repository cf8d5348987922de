"""Saved predictions, so an evaluation that stops part-way (or gains an engine) resumes.

A model engine on a CPU takes seconds to minutes per visit; an evaluation of several engines
can run for hours. Each engine's predictions are appended to `OUT/predictions/<label>.jsonl`
a chunk at a time. The file's first line is a fingerprint of what produced them (engine,
model, adapter version, history on/off, region, test split hash); a later run with the same
fingerprint reads the visits already done and generates only the rest, and a run with a
different fingerprint starts the file afresh. The rules engine is quick and is not saved.

The file holds the model's own output text (the plan it wrote), which is what an auditor of
the figures needs; it is an evaluation artefact next to metrics.json, never a log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diaguide.evaluation.candidates import Prediction
from diaguide.records.schema import Plan

# 2: plans read against the visit (continued drugs' doses, one order per drug: target.against_visit); 3: the same
# drug found by the formulary there (a Chinese name continues an English-listed drug); 4: cautions where the plan
# contradicts the visit (target.consistency_cautions); 5: an answer with a line that could not be read is not whole
# (retried, else partial) and a MED line naming an action as its drug is such a line; 6: so is one naming a dose, a
# LOINC code or a laboratory test as its drug (parse._not_a_drug), and a drug the formulary knows has its class; 7: so
# is one whose drug is no plausible drug name, a class name is shown as a class (parse._implausible, class_label), and
# the guideline line and the checker read the notes (docs/notes.md); 8: lines the model copied from its prompt are
# not read as its answer (parse.without_echo)
FORMAT = 8


def fingerprint(**parts: Any) -> str:
    """A short stable hash of what produced the predictions."""
    blob = json.dumps({"format": FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _dump(key: str, p: Prediction) -> str:
    row = {
        "id": key,
        "text": p.text,
        "proposed": p.proposed.model_dump(mode="json") if p.proposed is not None else None,
        "plan": p.plan.model_dump(mode="json") if p.plan is not None else None,
        "status": p.status,
        "errors": p.errors,
    }
    return json.dumps(row, ensure_ascii=False)


def _load(row: dict[str, Any]) -> Prediction:
    proposed = Plan.model_validate(row["proposed"]) if row.get("proposed") is not None else None
    plan = Plan.model_validate(row["plan"]) if row.get("plan") is not None else None
    return Prediction(row.get("text"), proposed, plan, row["status"], list(row.get("errors") or []))


def read(path: Path, stamp: str) -> dict[str, Prediction]:
    """The saved predictions by visit id, or {} when the file is missing, from another run
    (fingerprint differs) or unreadable. A torn last line (a run killed mid-write) is dropped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    if not lines:
        return {}
    try:
        if json.loads(lines[0]).get("fingerprint") != stamp:
            return {}
    except (json.JSONDecodeError, AttributeError):
        return {}
    done: dict[str, Prediction] = {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
            done[row["id"]] = _load(row)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a torn or foreign line: that visit is generated again
    return done


def predict_resumable(
    path: Path | None,
    stamp: str,
    keys: list[str],
    predict: Callable[[list[int]], list[Prediction]],
    chunk: int = 8,
) -> tuple[list[Prediction], int]:
    """Predictions for every key, reusing those saved under `path` with the same fingerprint.

    `predict(indices)` produces the predictions of those positions; it is called a chunk at a
    time and each chunk is appended to the file before the next starts. With `path` None
    nothing is saved (one call for everything). Returns (predictions in key order, how many
    were reused).
    """
    if path is None:
        return predict(list(range(len(keys)))), 0
    saved = read(path, stamp)
    missing = [i for i, k in enumerate(keys) if k not in saved]
    path.parent.mkdir(parents=True, exist_ok=True)
    # rewritten whole: a stale file starts afresh, a torn last line is not appended to
    lines = [json.dumps({"fingerprint": stamp})] + [_dump(k, p) for k, p in saved.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        got = predict(part)
        if len(got) != len(part):
            raise RuntimeError(f"engine returned {len(got)} predictions for {len(part)} visits")
        with path.open("a", encoding="utf-8") as fh:
            for i, p in zip(part, got, strict=True):
                saved[keys[i]] = p
                fh.write(_dump(keys[i], p) + "\n")
    return [saved[k] for k in keys], len(keys) - len(missing)
