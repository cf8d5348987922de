"""The extractor against the hand-labelled notes (labelled_notes.yaml): precision and recall per fact kind of "the
patient has it", the assertion of every labelled mention, and the values written in text. The figures are the
ones docs/notes.md reports; the floors below fail the suite when a change makes the extractor worse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from diaguide.knowledge.conditions import counts_for_patient, note_facts
from diaguide.records.schema import Visit


def _load(name: str) -> list[dict]:
    return yaml.safe_load((Path(__file__).with_name(name)).read_text(encoding="utf-8"))["notes"]


NOTES = _load("labelled_notes.yaml")
HELD_OUT = _load("heldout_notes.yaml")  # written after the cues were frozen (docs/notes.md)


def _visit(note: dict) -> Visit:
    return Visit(
        visit_id=note["id"],
        patient_id=note["id"],
        date=dt.date(2025, 6, 1),
        language=note["lang"],
        patient={"age": 40, "sex": "female"},
        **{note["field"]: note["text"]},
    )


def score(notes: list[dict] | None = None) -> dict:
    """Per kind: true/false positives and false negatives of 'the patient has it'; assertion hits; value hits."""
    notes = NOTES if notes is None else notes
    labelled_kinds = {k for n in notes for k in (n.get("expect") or {})}
    kinds: dict[str, dict[str, int]] = {}
    assertions = {"right": 0, "wrong": [], "missed": []}
    values = {"found": 0, "missed": []}
    for note in notes:
        facts = note_facts(_visit(note))
        expect = note.get("expect") or {}
        labelled = set(expect)
        found_kinds = {e.kind for e in facts.evidence if e.value is None}
        for kind in labelled | (found_kinds & labelled_kinds):
            gold = kind in expect and counts_for_patient(kind, expect[kind])
            predicted = bool([e for e in facts.of(kind) if e.value is None and counts_for_patient(kind, e.assertion)])
            outcome = "tp" if gold and predicted else "fp" if predicted else "fn" if gold else "tn"
            row = kinds.setdefault(kind, {"tp": 0, "fp": 0, "fn": 0, "tn": 0})
            row[outcome] += 1
        for kind, want in expect.items():
            got = [e.assertion for e in facts.of(kind) if e.value is None]
            if not got:
                assertions["missed"].append((note["id"], kind, want))
            elif want in got:
                assertions["right"] += 1
            else:
                assertions["wrong"].append((note["id"], kind, want, got))
        for v in note.get("values") or []:
            got = [e.value for e in facts.values(v["kind"])]
            if any(abs(g - v["value"]) <= 0.05 * v["value"] + 0.05 for g in got):
                values["found"] += 1
            else:
                values["missed"].append((note["id"], v, got))
    return {"kinds": kinds, "assertions": assertions, "values": values}


def test_the_labelled_set_is_big_enough_and_half_chinese() -> None:
    assert len(NOTES) >= 60
    assert sum(n["lang"] == "zh" for n in NOTES) >= len(NOTES) / 2
    assert len({n["id"] for n in NOTES}) == len(NOTES)


@pytest.fixture(scope="module")
def scored() -> dict:
    return score()


def precision_recall(scored: dict) -> tuple[float, float]:
    total = {"tp": 0, "fp": 0, "fn": 0}
    for row in scored["kinds"].values():
        for key in total:
            total[key] += row.get(key, 0)
    return total["tp"] / max(1, total["tp"] + total["fp"]), total["tp"] / max(1, total["tp"] + total["fn"])


def test_precision_and_recall_per_kind(scored) -> None:
    precision, recall = precision_recall(scored)
    false_alarms = {k: r["fp"] for k, r in scored["kinds"].items() if r.get("fp")}
    misses = {k: r["fn"] for k, r in scored["kinds"].items() if r.get("fn")}
    assert precision >= 0.95, false_alarms
    assert recall >= 0.95, misses


def test_the_held_out_notes() -> None:
    """First scored before any change (precision 0.85, recall 0.85); the fixes that followed are in docs/notes.md."""
    scored = score(HELD_OUT)
    precision, recall = precision_recall(scored)
    assert precision >= 0.9 and recall >= 0.9, scored["kinds"]
    assert not scored["values"]["missed"]


def test_assertions_of_labelled_mentions(scored) -> None:
    a = scored["assertions"]
    labelled = a["right"] + len(a["wrong"]) + len(a["missed"])
    assert a["right"] / labelled >= 0.9, (a["wrong"], a["missed"])


def test_values_in_text(scored) -> None:
    v = scored["values"]
    assert not v["missed"], v["missed"]
