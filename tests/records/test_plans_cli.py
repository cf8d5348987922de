"""`diaguide ingest --plans` -> `diaguide dataset --records` -> the folder train and evaluate read."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from diaguide import cli
from diaguide.evaluation.data import read_examples
from diaguide.records.schema import CohortRecord
from diaguide.training.config import load_config
from diaguide.training.datasets import resolve_dataset

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from fhir_bundles import bundle, cc, encounter, entry, med_request, patient  # noqa: E402


def _bundle(n: int, zh: bool) -> dict:
    pat = f"urn:uuid:p{n}"
    metformin, sglt2 = ("二甲双胍 0.5g", "达格列净 10mg") if zh else ("metformin 500 MG", "dapagliflozin 10 MG")

    def order(i: int, text: str, day: str) -> dict:
        r = med_request(pat, "0", text, day, encounter={"reference": f"urn:uuid:p{n}e{i}"})
        r["medicationCodeableConcept"] = cc(None, "x", text)
        return entry(r, f"urn:uuid:p{n}m{i}{len(text)}")

    spoken = [{"language": cc("urn:ietf:bcp:47", "zh-CN" if zh else "en-US")}]
    entries = [entry(patient(communication=spoken), pat)]
    for i, day in enumerate(("2024-01-10", "2024-04-10", "2024-07-10")):
        entries.append(entry({**encounter(pat, day), "id": f"p{n}e{i}"}, f"urn:uuid:p{n}e{i}"))
    entries += [order(0, metformin, "2024-01-10"), order(1, sglt2, "2024-04-10")]  # the third visit: continue both
    return bundle(*entries)


def test_ingest_plans_then_dataset_records_feed_train_and_evaluate(tmp_path, capsys):
    src = tmp_path / "fhir"
    src.mkdir()
    for n in range(6):
        (src / f"p{n}.json").write_text(json.dumps(_bundle(n, zh=n % 2 == 1), ensure_ascii=False), encoding="utf-8")
    bad = _bundle(9, zh=False)
    bad["entry"][-1]["resource"]["encounter"] = {"reference": "urn:uuid:nowhere"}
    (src / "p9.json").write_text(json.dumps(bad), encoding="utf-8")
    lonely = bundle(entry(patient(), "urn:uuid:p8"), entry({**encounter("urn:uuid:p8", "2025-01-01"), "id": "lonely"}))
    (src / "p8.json").write_text(json.dumps(lonely), encoding="utf-8")
    records = tmp_path / "records.jsonl"

    status = cli.main(["ingest", str(src), "--format", "fhir", "--plans", "--out", str(records), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1  # a visit had no plan to derive: named, counted, the others written
    assert f"p9.json: MedicationRequest urn:uuid:p9m1{len('dapagliflozin 10 MG')}: encounter: refers to" in err
    assert "p8.json: Encounter lonely: no plan derivable" in err
    assert "21 records written" in err and "1 visit without a derivable plan (not written)" in err
    assert "2 plan problems" in err
    lines = [CohortRecord.model_validate_json(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 21 and all(r.plan.source == "record" for r in lines)
    third = next(r for r in lines if r.visit.visit_id == "p1e2")
    assert {m.drug: m.action for m in third.plan.medications} == {"metformin": "continue", "dapagliflozin": "continue"}
    assert third.visit.language == "zh"

    out = tmp_path / "ds"
    assert cli.main(["dataset", "--records", str(records), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["file"] == str(records) and manifest["source"]["records"] == 21
    assert sum(s["records"] for s in manifest["splits"].values()) == 21
    assert manifest["targets"] == {"physician": 21}
    row = json.loads((out / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert "MED:" in row["target"] and row["plan"]["source"] == "record"

    examples, errors = read_examples(out)
    assert examples and errors == []
    cfg = load_config(None, [f"data.dir={out}"])
    assert resolve_dataset(cfg.data) == out
    report = tmp_path / "eval"
    assert (
        cli.main(["evaluate", "--dataset", str(out), "--engines", "rules", "--out", str(report), "--ablation", "none"])
        == 0
    )
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["dataset"]["sha256"] == manifest["splits"]["test"]["sha256"]


def test_dataset_needs_a_cohort_or_records(tmp_path, capsys):
    assert cli.main(["dataset", "--records", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "ds")]) == 2
    assert "none.jsonl" in capsys.readouterr().err


def test_plans_are_deidentified_with_their_visits(tmp_path, capsys):
    examples = Path(__file__).resolve().parents[2] / "examples"
    text = (examples / "his_zh.csv").read_text(encoding="utf-8-sig")
    text = text.replace("继续阿卡波糖，控制饮食。", "嘱李四继续阿卡波糖，电话13812345678随访。")
    src = tmp_path / "zh.csv"
    src.write_text(text, encoding="utf-8-sig")
    out = tmp_path / "r.jsonl"
    args = ["ingest", str(src), "--format", "csv", "--plans", "--deidentify", "--salt", "k", "--out", str(out)]
    assert cli.main([*args, "--no-progress"]) == 0
    raw = out.read_text(encoding="utf-8")
    for planted in ("李四", "13812345678", "MZ0101", "P0002"):
        assert planted not in raw, planted
    plans = [CohortRecord.model_validate_json(line).plan for line in raw.splitlines()]
    assert any(p.treatment.startswith("嘱[NAME]继续阿卡波糖") for p in plans)
