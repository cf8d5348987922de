"""The held-out pairs an evaluation reads: a dataset folder's `test.jsonl`, or the default
seeded synthetic cohort built under `var/` the first time it is needed."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from diaguide.errors import InputError
from diaguide.prompts.dataset import sha256_of as sha256_of  # the same hash as the manifest; re-exported for run.py
from diaguide.records.jsonl import json_lines
from diaguide.records.schema import Plan, Visit

# The default held-out set is the test split of the very cohort the default adapters were
# trained on (same patients, seed and language mode, so the same patient-level split): a
# different cohort could put a training patient in the test set. Read from the LoRA adapter's
# `config.resolved.yaml` when it has one, else the defaults of configs/smollm2-135m/lora.yaml.
DEFAULT_COHORT: dict[str, Any] = {"patients": 200, "seed": 0, "lang": "en"}
DEFAULT_ROOT = Path("var") / "eval"
TRAINED_CONFIG = "config.resolved.yaml"


def training_cohort(adapters: list[Path]) -> tuple[dict[str, Any], str]:
    """(cohort settings, where they came from): the first adapter's recorded training cohort."""
    for folder in adapters:
        path = folder / TRAINED_CONFIG
        if not path.is_file():
            continue
        try:
            cohort = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("data", {}).get("cohort") or {}
        except (yaml.YAMLError, AttributeError):
            continue
        picked = {k: cohort[k] for k in DEFAULT_COHORT if k in cohort}
        return {**DEFAULT_COHORT, **picked}, str(path)
    return dict(DEFAULT_COHORT), "configs/smollm2-135m/lora.yaml defaults"


@dataclasses.dataclass
class Example:
    id: str
    patient_id: str
    language: str
    visit: Visit
    plan: Plan


def default_dataset(root: Path = DEFAULT_ROOT, cohort: dict[str, Any] | None = None) -> Path:
    """The default dataset folder, built (cohort, then dataset) when it is not there yet."""
    c = {**DEFAULT_COHORT, **(cohort or {})}
    folder = root / f"dataset-p{c['patients']}-s{c['seed']}-{c['lang']}"
    if (folder / "test.jsonl").is_file():
        return folder
    from diaguide.cohort.generate import cohort_command
    from diaguide.prompts.dataset import build_dataset

    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        cohort_command(
            patients=c["patients"], seed=c["seed"], lang=c["lang"], out=str(work / "cohort"), agreement=False
        )
        build_dataset(work / "cohort", work / "dataset", seed=c["seed"])
        try:
            (work / "dataset").rename(folder)
        except OSError:  # another run built it meanwhile
            if not (folder / "test.jsonl").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def read_examples(dataset: Path, split: str = "test") -> tuple[list[Example], list[str]]:
    """The examples of a split and one line per bad row (file, line, field); good rows still read.

    Raises:
        InputError: the folder has no `<split>.jsonl`.
    """
    path = Path(dataset) / f"{split}.jsonl"
    if not path.is_file():
        raise InputError(f"no {split}.jsonl here (expected a dataset folder)", source=str(dataset), field="dataset")
    examples, errors = [], []
    with path.open(encoding="utf-8") as fh:
        for n, row in json_lines(fh):
            if isinstance(row, json.JSONDecodeError):
                errors.append(f"{path}:{n}: not JSON ({row.msg})")
                continue
            if not isinstance(row, dict):
                errors.append(f"{path}:{n}: not a JSON object")
                continue
            try:
                visit = Visit.model_validate(row.get("visit"))
                plan = Plan.model_validate(row.get("plan"))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "record"
                part = "plan" if "plan" in str(exc.title).lower() else "visit"
                errors.append(f"{path}:{n}: {part}.{where}: {first['msg']}")
                continue
            language = str(row.get("language") or visit.language)
            ident = str(row.get("id") or f"{visit.patient_id}/{visit.visit_id}")
            examples.append(Example(ident, str(row.get("patient_id") or visit.patient_id), language, visit, plan))
    return examples, errors
