"""The held-out pairs an evaluation reads: a dataset folder's `test.jsonl`, or the default
seeded synthetic cohort built under `var/` the first time it is needed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from pydantic import ValidationError

from diaguide.errors import InputError
from diaguide.records.schema import Plan, Visit

# The default held-out set: the same seeded cohort the default adapters are trained on
# (training.config.CohortSection defaults: 200 patients, seed 0), both languages so the
# by-language figures exist; the dataset builder splits by patient, so no test patient was
# seen in training.
DEFAULT_COHORT = {"patients": 200, "seed": 0, "lang": "mixed"}
DEFAULT_ROOT = Path("var") / "eval"


@dataclasses.dataclass
class Example:
    id: str
    patient_id: str
    language: str
    visit: Visit
    plan: Plan


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_dataset(root: Path = DEFAULT_ROOT) -> Path:
    """The default dataset folder, built (cohort, then dataset) when it is not there yet."""
    c = DEFAULT_COHORT
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
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise TypeError("not a JSON object")
                visit = Visit.model_validate(row.get("visit"))
                plan = Plan.model_validate(row.get("plan"))
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{n}: not JSON ({exc.msg})")
                continue
            except TypeError as exc:
                errors.append(f"{path}:{n}: {exc}")
                continue
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
