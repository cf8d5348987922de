"""Saved predictions: an evaluation that stops part-way resumes where it stopped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from diaguide.errors import InputError, ModelError
from diaguide.evaluation import cache
from diaguide.evaluation.candidates import Prediction
from diaguide.evaluation.data import read_examples
from diaguide.evaluation.run import evaluate, evaluate_command

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from eval_fakes import METFORMIN_TEXT, canned_engine, copy_physician, renal_visit  # noqa: E402


def prediction(tag: str) -> Prediction:
    return Prediction(tag, None, None, "no_suggestion", [f"error {tag}"])


def test_only_the_missing_visits_are_generated_again(tmp_path: Path):
    path = tmp_path / "predictions" / "m.jsonl"
    keys = [f"k{i}" for i in range(5)]
    calls: list[list[int]] = []

    def predict(indices: list[int]) -> list[Prediction]:
        calls.append(indices)
        if len(calls) == 2:
            raise ModelError("the model stopped")
        return [prediction(keys[i]) for i in indices]

    with pytest.raises(ModelError):
        cache.predict_resumable(path, "stamp", keys, predict, chunk=2)
    assert calls == [[0, 1], [2, 3]]  # the first chunk was saved before the second failed
    calls.clear()
    got, reused = cache.predict_resumable(
        path, "stamp", keys, lambda ix: calls.append(ix) or [prediction(keys[i]) for i in ix], chunk=2
    )
    assert reused == 2
    assert calls == [[2, 3], [4]]
    assert [p.text for p in got] == keys
    assert [p.errors for p in got] == [[f"error {k}"] for k in keys]
    # a third run generates nothing
    got, reused = cache.predict_resumable(path, "stamp", keys, lambda ix: pytest.fail("generated again"))
    assert reused == 5


def test_another_fingerprint_starts_afresh_and_a_torn_line_is_dropped(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    keys = ["a", "b", "c"]
    cache.predict_resumable(path, "one", keys, lambda ix: [prediction(keys[i]) for i in ix])
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "d", "text": "half')  # a run killed mid-write
    assert set(cache.read(path, "one")) == {"a", "b", "c"}
    assert cache.read(path, "two") == {}
    seen: list[int] = []
    cache.predict_resumable(path, "two", keys, lambda ix: seen.extend(ix) or [prediction("new") for _ in ix])
    assert seen == [0, 1, 2]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"fingerprint": "two"}
    assert len(lines) == 4


def test_plans_and_findings_survive_the_round_trip(tmp_path: Path):
    visit = renal_visit()
    [p] = canned_engine("m", lambda v, h: METFORMIN_TEXT).predict([visit], True)
    assert p.plan is not None and p.plan.findings  # metformin at eGFR 22 is flagged
    path = tmp_path / "m.jsonl"
    cache.predict_resumable(path, "s", ["v1"], lambda ix: [p])
    [back], reused = cache.predict_resumable(path, "s", ["v1"], lambda ix: pytest.fail("generated again"))
    assert reused == 1
    assert back.plan == p.plan and back.proposed == p.proposed and back.status == p.status


def test_a_stopped_evaluation_resumes_with_the_same_figures(
    tmp_path: Path, small_dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    import diaguide.evaluation.model_candidates as model_candidates

    monkeypatch.setattr("diaguide.evaluation.run.CHUNK", 3)
    plans = {e.visit.visit_id: e.plan for e in read_examples(small_dataset)[0]}
    n = len(plans)
    assert n > 3, "the dataset must span more than one chunk"
    generated: list[int] = []
    state = {"fail": True}

    def texts(visit, include_history):
        generated.append(1)
        if state["fail"] and len(generated) > 3:
            raise ModelError("the model stopped")
        return copy_physician(plans)(visit, include_history)

    monkeypatch.setattr(
        model_candidates, "model_candidate", lambda name, region="ada": canned_engine(name, texts, region)
    )
    out = tmp_path / "eval"
    first = evaluate(out, engines=["lora"], dataset=small_dataset, history_ablation=False, resamples=200)
    assert "lora" in first["skipped"]  # stopped after the first chunk
    state["fail"] = False
    generated.clear()
    second = evaluate(out, engines=["lora"], dataset=small_dataset, history_ablation=False, resamples=200)
    assert len(generated) == n - 3  # only the visits not saved
    assert second["engines"]["lora"]["reused_predictions"] == 3
    fresh = evaluate(tmp_path / "fresh", engines=["lora"], dataset=small_dataset, history_ablation=False, resamples=200)
    assert second["engines"]["lora"]["overall"]["metrics"] == fresh["engines"]["lora"]["overall"]["metrics"]
    assert "reused 3 saved predictions" in capsys.readouterr().err


def test_the_ablation_option_picks_the_engines(tmp_path: Path, small_dataset: Path, monkeypatch: pytest.MonkeyPatch):
    import diaguide.evaluation.model_candidates as model_candidates

    plans = {e.visit.visit_id: e.plan for e in read_examples(small_dataset)[0]}
    monkeypatch.setattr(
        model_candidates,
        "model_candidate",
        lambda name, region="ada": canned_engine(name, copy_physician(plans), region),
    )
    out = tmp_path / "eval"
    args = {"out": str(out), "engines": "lora,base,rules", "limit": 3, "lang": None, "dataset": str(small_dataset)}
    assert evaluate_command(**args, ablation="lora") == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["engines"]) == {"lora", "lora@no_history", "base", "rules", "carry_forward"}
    assert evaluate_command(**args, ablation="none") == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["engines"]) == {"lora", "base", "rules", "carry_forward"}
    with pytest.raises(InputError, match="unknown engine rules"):
        evaluate_command(**args, ablation="rules")
