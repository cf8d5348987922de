"""`diaguide dataset`: pairs split by patient, deterministic, with a manifest that checks out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from diaguide.cli import main
from diaguide.errors import InputError
from diaguide.prompts.dataset import assign_splits, build_dataset, dataset_command

SPLITS = ("train", "val", "test")
KEYS = ["id", "patient_id", "visit_id", "language", "prompt", "target", "target_source", "visit", "plan"]


@pytest.fixture
def cohort(tmp_path: Path, write_cohort, make_plan) -> Path:
    """20 patients x 2 visits, half English, half Chinese."""
    return write_cohort(tmp_path / "cohort", 20, lambda visit, lang, v: make_plan(lang))


def _rows(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_pairs_are_split_by_patient_with_every_field(cohort, tmp_path):
    out = tmp_path / "ds"
    manifest = build_dataset(cohort, out, seed=0)
    patients = {s: {r["patient_id"] for r in _rows(out, s)} for s in SPLITS}
    assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    assert set().union(*patients.values()) == {f"P{p}" for p in range(20)}
    assert [manifest["splits"][s]["patients"] for s in SPLITS] == [16, 2, 2]
    # stratified by language: each split holds both (1 en + 1 zh patient in val and test)
    assert all(manifest["splits"][s]["languages"].keys() == {"en", "zh"} for s in SPLITS)
    assert sum(manifest["splits"][s]["records"] for s in SPLITS) == 40
    row = _rows(out, "train")[0]
    assert list(row) == KEYS
    assert row["target"].endswith("END") and row["prompt"].endswith("END")
    assert row["language"] == row["visit"]["language"]
    assert row["plan"]["medications"]


def test_manifest_hashes_counts_and_options_match_the_files(cohort, tmp_path):
    out = tmp_path / "ds"
    build_dataset(cohort, out, seed=3, history=False)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for split in SPLITS:
        entry = manifest["splits"][split]
        data = (out / f"{split}.jsonl").read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        rows = _rows(out, split)
        assert entry["records"] == len(rows)
        languages = {lang: sum(r["language"] == lang for r in rows) for lang in ("en", "zh")}
        assert entry["languages"] == {k: v for k, v in languages.items() if v}
        assert 0 < entry["prompt_chars"]["p50"] <= entry["prompt_chars"]["max"]
    assert manifest["source"]["sha256"] == hashlib.sha256((cohort / "visits.jsonl").read_bytes()).hexdigest()
    assert manifest["seed"] == 3 and manifest["options"]["history"] is False
    assert all("Trend" not in r["prompt"] and "趋势" not in r["prompt"] for r in _rows(out, "train"))


def test_same_seed_same_bytes_other_seed_other_split(cohort, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build_dataset(cohort, a, seed=7)
    build_dataset(cohort, b, seed=7)
    for name in [*(f"{s}.jsonl" for s in SPLITS)]:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    build_dataset(cohort, c, seed=8)
    test_a = {r["patient_id"] for r in _rows(a, "test")}
    test_c = {r["patient_id"] for r in _rows(c, "test")}
    assert test_a != test_c


def test_split_assignment_is_stable_and_exact():
    ids = [f"P{i}" for i in range(100)]
    first = assign_splits(ids, seed=1, val_frac=0.1, test_frac=0.2)
    assert first == assign_splits(list(reversed(ids)), seed=1, val_frac=0.1, test_frac=0.2)
    assert sorted(first.values()).count("test") == 20 and sorted(first.values()).count("val") == 10
    with pytest.raises(InputError):
        assign_splits(ids, seed=1, val_frac=0.6, test_frac=0.5)


def test_bad_lines_are_named_and_the_rest_used(cohort, tmp_path, capsys):
    source = cohort / "visits.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "{not json")
    lines.insert(5, json.dumps({"visit": {"visit_id": "x"}, "plan": {}}))
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status = dataset_command(cohort=str(cohort), out=str(tmp_path / "ds"), seed=0, history=True)
    err = capsys.readouterr()
    assert status == 1
    bad = [line for line in err.err.splitlines() if "error" in line]
    assert len(bad) == 2
    assert "visits.jsonl:3: not JSON" in bad[0]
    assert "visits.jsonl:6: visit.patient_id" in bad[1]
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["records"] == 40 and manifest["source"]["bad_lines"] == 2
    assert "make_visit" not in err.out and "Thirst" not in err.out  # no patient text on the console


def test_cli_builds_the_dataset(cohort, tmp_path, capsys):
    assert main(["dataset", "--cohort", str(cohort), "--out", str(tmp_path / "ds"), "--seed", "1", "--no-history"]) == 0
    assert "train" in capsys.readouterr().out
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["options"]["history"] is False


def test_missing_cohort_is_one_line_error(tmp_path, capsys):
    assert main(["dataset", "--cohort", str(tmp_path / "nope"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "visits.jsonl" in err and "Traceback" not in err
    with pytest.raises(InputError):
        build_dataset(tmp_path / "nope", tmp_path / "ds")
