"""With no dataset given, training builds the config's seeded synthetic cohort once and reuses it."""

import json

from diaguide.training.config import load_config
from diaguide.training.datasets import cohort_dataset_dir, resolve_dataset


def test_no_data_dir_builds_the_seeded_cohort_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DIAGUIDE_CACHE", str(tmp_path))
    data = load_config(None, ["data.cohort.patients=4", "data.cohort.seed=3"]).data
    folder = resolve_dataset(data)
    assert folder == cohort_dataset_dir(data) and folder.parent == tmp_path / "datasets"
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    assert rows and all(r["prompt"].strip() and r["target"].strip() for r in rows)
    stamp = (folder / "train.jsonl").stat().st_mtime_ns
    assert resolve_dataset(data) == folder and (folder / "train.jsonl").stat().st_mtime_ns == stamp
