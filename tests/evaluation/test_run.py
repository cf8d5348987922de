"""`diaguide evaluate` end to end: rules + a fake model engine on a small seeded dataset."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

import diaguide.evaluation.model_candidates as model_candidates
from diaguide.cli import main
from diaguide.errors import ModelError
from diaguide.evaluation.candidates import CandidateUnavailable
from diaguide.evaluation.data import read_examples, sha256_of
from diaguide.evaluation.report import render_report
from diaguide.evaluation.run import evaluate, evaluate_command

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from eval_fakes import canned_engine, copy_physician  # noqa: E402


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch, small_dataset: Path) -> None:
    """`lora` writes the physician's plan when it sees the history; `base` and `ptuning_v2` are missing."""
    plans = {e.visit.visit_id: e.plan for e in read_examples(small_dataset)[0]}

    def fake(name: str, region: str = "ada"):
        if name == "lora":
            return canned_engine("lora", copy_physician(plans), region=region)
        raise CandidateUnavailable(name, "no adapter in models/ (test)")

    monkeypatch.setattr(model_candidates, "model_candidate", fake)


def load(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def test_rules_and_a_model_engine_end_to_end(tmp_path: Path, small_dataset: Path, fake_models: None, capsys):
    out = tmp_path / "eval"
    status = evaluate_command(out=str(out), engines="rules,lora", limit=None, lang=None, dataset=str(small_dataset))
    assert status == 0
    metrics = load(out)
    n = len(read_examples(small_dataset)[0])
    # carry_forward was not asked for: no evaluation leaves it out, and the run says it was added
    assert set(metrics["engines"]) == {"rules", "lora", "lora@no_history", "carry_forward"}
    assert metrics["config"]["baselines_added"] == ["carry_forward"]
    assert metrics["dataset"]["n"] == n
    assert metrics["dataset"]["sha256"] == sha256_of(small_dataset / "test.jsonl")
    lora = metrics["engines"]["lora"]["overall"]["metrics"]
    # the fake model writes the physician's own plan: every class found, nothing unsafe left unflagged
    assert lora["med_class_f1"]["value"] == pytest.approx(1.0)
    assert lora["med_action_accuracy"]["value"] == pytest.approx(1.0)
    assert lora["parse_rate"]["value"] == 1.0
    assert lora["unsafe_unflagged_rate"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert lora["bleu4"]["value"] == pytest.approx(100.0)
    # without the history it writes nothing usable: the ablation shows it
    ablated = metrics["engines"]["lora@no_history"]
    assert ablated["include_history"] is False
    assert ablated["overall"]["metrics"]["parse_rate"]["value"] == 0.0
    assert ablated["status"]["no_suggestion"] == n
    rules = metrics["engines"]["rules"]["overall"]["metrics"]
    assert rules["guideline_concordance"]["value"] == 1.0
    # neither the guideline's plans nor the physicians' say what their visits contradict
    assert rules["contradiction_rate"]["value"] == 0.0 and lora["contradiction_rate"]["value"] == 0.0
    # the physicians (the fake lora copies them) agree with the guideline exactly as often as lora does
    physician = metrics["reference"]["physician_guideline_concordance"]["value"]
    assert physician == pytest.approx(lora["guideline_concordance"]["value"])
    for name in ("rules", "lora"):
        for cell in metrics["engines"][name]["overall"]["metrics"].values():
            if cell["value"] is not None:
                assert cell["low"] <= cell["value"] + 1e-9 and cell["value"] <= cell["high"] + 1e-9
    by_lang = metrics["engines"]["rules"]["by_language"]
    assert by_lang["en"]["n"] + by_lang["zh"]["n"] == n
    by_level = metrics["engines"]["rules"]["by_complexity"]
    assert sum(by_level[k]["n"] for k in ("low", "moderate", "high")) == n
    assert {"machine", "config"} <= metrics.keys() and metrics["config"]["bootstrap"]["resamples"] == 1000

    page = (out / "report.html").read_text(encoding="utf-8")
    assert "lora@no_history" in page and "rules" in page
    assert "carry_forward: added to the engines asked for" in page
    assert "<h2>F1 by action</h2>" in page
    table = (out / "report.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| lora |"))
    assert "drug_jaccard" in table and row.count("1.000 [1.000, 1.000]") >= 3  # physician's plan: drugs all right
    assert lora["drug_f1"]["value"] == pytest.approx(1.0) and lora["drug_jaccard"]["value"] == pytest.approx(1.0)
    carried = metrics["engines"]["carry_forward"]["overall"]["metrics"]
    assert carried["action_f1.change"]["value"] in (0.0, None) and carried["lab_f1"]["value"] > 0
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)) >= 5
    assert "Worst misses" in page
    # the fake engine runs plain prompts; an engine trained with the guideline line is named as such
    assert metrics["engines"]["lora"]["guideline_line"] is False and "as one line of the prompt" not in page
    metrics["engines"]["lora"]["guideline_line"] = True
    assert "lora: trained and run with the guideline engine's decisions as one line of the prompt" in (
        render_report(metrics, {})
    )
    assert (out / "visits" / "lora.jsonl").is_file()
    printed = capsys.readouterr().out
    assert "lora" in printed and "metrics.json" in printed


def test_limit_and_language_are_honoured(tmp_path: Path, small_dataset: Path, fake_models: None):
    result = evaluate(tmp_path / "a", engines=["rules"], limit=3, dataset=small_dataset, resamples=50)
    assert result["dataset"]["n"] == 3 and result["engines"]["rules"]["n"] == 3
    # spread over the split, not the first three (which would be one or two patients)
    every = read_examples(small_dataset)[0]
    rows = (tmp_path / "a" / "visits" / "rules.jsonl").read_text(encoding="utf-8").splitlines()
    picked = [json.loads(r)["id"] for r in rows]
    assert picked == [every[i * len(every) // 3].id for i in range(3)]
    assert len({e.patient_id for e in every if e.id in picked}) > 1
    result = evaluate(tmp_path / "b", engines=["rules"], lang="zh", dataset=small_dataset, resamples=50)
    assert result["config"]["lang"] == "zh" and result["dataset"]["n"] == result["engines"]["rules"]["n"]
    zh = [e for e in read_examples(small_dataset)[0] if e.language == "zh"]
    assert result["engines"]["rules"]["n"] == len(zh) > 0
    assert result["engines"]["rules"]["by_language"]["en"]["n"] == 0
    rows = (tmp_path / "b" / "visits" / "rules.jsonl").read_text(encoding="utf-8").splitlines()
    assert {json.loads(r)["language"] for r in rows} == {"zh"}


def test_a_missing_engine_is_named_and_the_others_still_run(tmp_path: Path, small_dataset: Path, fake_models, capsys):
    status = main(
        ["evaluate", "--out", str(tmp_path), "--engines", "base,rules", "--limit", "2", "--dataset", str(small_dataset)]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "skipped engine base: no adapter in models/ (test)" in err
    assert "added engine carry_forward" in err
    metrics = load(tmp_path)
    assert set(metrics["engines"]) == {"rules", "carry_forward"}
    assert metrics["skipped"] == {"base": "no adapter in models/ (test)"}
    assert "no adapter in models/ (test)" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_bad_dataset_lines_are_named_and_good_ones_scored(tmp_path: Path, small_dataset: Path, capsys):
    broken = tmp_path / "data"
    shutil.copytree(small_dataset, broken)
    lines = (broken / "test.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[1])
    bad["visit"]["date"] = "not a date"
    (broken / "test.jsonl").write_text(
        "\n".join([lines[0], json.dumps(bad), "{oops", *lines[2:]]) + "\n", encoding="utf-8"
    )
    status = evaluate_command(out=str(tmp_path / "out"), engines="rules", dataset=str(broken))
    err = capsys.readouterr().err
    assert status == 1
    assert "test.jsonl:2: visit.date" in err and "test.jsonl:3: not JSON" in err
    assert load(tmp_path / "out")["dataset"]["n"] == len(lines) - 1


def test_user_errors_are_one_line(tmp_path: Path, small_dataset: Path, capsys):
    assert main(["evaluate", "--out", str(tmp_path), "--dataset", str(tmp_path / "nowhere"), "--engines", "rules"]) == 2
    assert "no test.jsonl here" in capsys.readouterr().err
    assert main(["evaluate", "--out", str(tmp_path), "--dataset", str(small_dataset), "--limit", "0"]) == 2
    assert "limit: must be at least 1" in capsys.readouterr().err
    assert main(["evaluate", "--out", str(tmp_path), "--dataset", str(small_dataset), "--engines", "rules,gpt4"]) == 2
    assert "engines: unknown engine gpt4" in capsys.readouterr().err


def test_an_engine_that_fails_while_generating_is_skipped(tmp_path: Path, small_dataset: Path, capsys):
    class Failing:
        name = "lora"

        def predict(self, visits, include_history):
            raise ModelError("out of memory", source="smollm2-135m")

    result = evaluate(tmp_path, engines=[Failing(), "rules"], limit=2, dataset=small_dataset, resamples=20)
    assert set(result["engines"]) == {"rules", "carry_forward"}
    assert "out of memory" in result["skipped"]["lora"]
    assert "skipped engine lora: failed while generating: smollm2-135m: out of memory" in capsys.readouterr().err


def test_without_a_dataset_the_default_cohort_is_built_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import diaguide.evaluation.data as data
    import diaguide.evaluation.model_candidates as model_candidates
    import diaguide.evaluation.run as run

    # no shipped adapter in sight: the cohort comes from configs/smollm2-135m/lora.yaml's defaults
    monkeypatch.setattr(model_candidates, "MODELS_DIR", tmp_path / "models")
    real = data.default_dataset
    monkeypatch.setattr(run, "default_dataset", lambda cohort: real(tmp_path / "var", cohort={**cohort, "patients": 6}))
    first = evaluate(tmp_path / "out", engines=["rules"], limit=2, resamples=20)
    folder = Path(first["dataset"]["path"])
    assert folder == tmp_path / "var" / "dataset-p6-s0-en" and (folder / "test.jsonl").is_file()
    built = (folder / "test.jsonl").stat().st_mtime_ns
    evaluate(tmp_path / "out2", engines=["rules"], limit=2, resamples=20)
    assert (folder / "test.jsonl").stat().st_mtime_ns == built


def test_the_default_cohort_is_the_one_the_adapter_was_trained_on(tmp_path: Path):
    from diaguide.evaluation.data import DEFAULT_COHORT, training_cohort

    adapter = tmp_path / "smollm2-135m-lora"
    adapter.mkdir()
    assert training_cohort([adapter]) == (DEFAULT_COHORT, "configs/smollm2-135m/lora.yaml defaults")
    (adapter / "config.resolved.yaml").write_text(
        "data:\n  cohort: {patients: 400, seed: 7, lang: mixed, history: true}\n", encoding="utf-8"
    )
    cohort, source = training_cohort([tmp_path / "missing", adapter])
    assert cohort == {"patients": 400, "seed": 7, "lang": "mixed"}
    assert source.endswith("config.resolved.yaml")


def test_patient_bootstrap_gives_wider_or_equal_intervals(tmp_path: Path, small_dataset: Path):
    by_visit = evaluate(tmp_path / "v", engines=["rules"], dataset=small_dataset, resamples=300)
    by_patient = evaluate(
        tmp_path / "p", engines=["rules"], dataset=small_dataset, resamples=300, bootstrap_unit="patient"
    )
    assert by_patient["config"]["bootstrap"]["unit"] == "patient"
    v = by_visit["engines"]["rules"]["overall"]["metrics"]["med_class_f1"]
    p = by_patient["engines"]["rules"]["overall"]["metrics"]["med_class_f1"]
    assert v["value"] == p["value"]
    # visits of one patient are alike: resampling patients widens the interval
    assert (p["high"] - p["low"]) > (v["high"] - v["low"])


def test_asking_for_carry_forward_adds_nothing(tmp_path: Path, small_dataset: Path, capsys):
    result = evaluate(tmp_path, engines=["carry_forward", "rules"], limit=3, dataset=small_dataset, resamples=20)
    assert list(result["engines"]) == ["carry_forward", "rules"] and result["config"]["baselines_added"] == []
    assert "added engine" not in capsys.readouterr().err
    assert "added to the engines asked for" not in (tmp_path / "report.html").read_text(encoding="utf-8")
