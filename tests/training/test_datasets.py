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


def test_cached_dataset_is_named_by_its_options_and_the_prompt_format(tmp_path, monkeypatch):
    from diaguide.prompts.dataset import FORMAT_VERSION

    monkeypatch.setenv("DIAGUIDE_CACHE", str(tmp_path))
    plain = load_config(None, ["data.cohort.patients=4"]).data
    guided = load_config(None, ["data.cohort.patients=4", "data.cohort.guidance=true"]).data
    cds = load_config(None, ["data.cohort.patients=4", "data.cohort.guidance=true", "data.cohort.region=cds"]).data
    names = {cohort_dataset_dir(d).name for d in (plain, guided, cds)}
    assert len(names) == 3 and all(
        name.endswith(f"-f{FORMAT_VERSION}") or f"-f{FORMAT_VERSION}-" in name for name in names
    )
    folder = resolve_dataset(guided)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["options"]["guidance"] is True and manifest["format_version"] == FORMAT_VERSION
    assert any(
        "Guideline: " in json.loads(line)["prompt"] for line in (folder / "train.jsonl").read_text().splitlines()
    )
