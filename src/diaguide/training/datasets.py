"""Where training data comes from: a dataset folder, or the seeded synthetic cohort built on first use."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from diaguide.cohort.generate import cohort_command
from diaguide.errors import ConfigError, InputError
from diaguide.inference.base_model import cache_dir
from diaguide.prompts.dataset import FORMAT_VERSION, dataset_command
from diaguide.training.config import DataSection

log = logging.getLogger(__name__)


def cohort_dataset_dir(data: DataSection) -> Path:
    """The cache folder of the dataset built from `data.cohort` (one per patients/seed/lang/history/guidance/notes)."""
    c = data.cohort
    name = f"cohort-p{c.patients}-s{c.seed}-{c.lang}" + ("" if c.history else "-nohistory")
    name += f"-f{FORMAT_VERSION}"  # pairs rendered by another version of the prompt code are not reused
    if c.guidance:
        name += f"-guided-{c.region}"
    if c.notes_facts:
        name += "-notes"
    return cache_dir() / "datasets" / name


def resolve_dataset(data: DataSection) -> Path:
    """A folder holding train.jsonl (and usually val.jsonl).

    `data.dir` when given; otherwise the synthetic cohort named by `data.cohort`, generated with the
    cohort and dataset builders (`diaguide cohort` + `diaguide dataset`) the first time it is needed.

    Raises:
        InputError: `data.dir` holds no train.jsonl.
        ConfigError: the dataset builder wrote no train.jsonl.
    """
    if data.dir is not None:
        folder = Path(data.dir).expanduser()
        if not (folder / "train.jsonl").is_file():
            raise InputError("no train.jsonl in the dataset folder", source=str(folder), field="data.dir")
        return folder
    folder = cohort_dataset_dir(data)
    if (folder / "train.jsonl").is_file():
        return folder
    c = data.cohort
    log.info("building the synthetic cohort (%d patients, seed %d, %s) under %s", c.patients, c.seed, c.lang, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        cohort_command(patients=c.patients, seed=c.seed, lang=c.lang, out=str(work / "cohort"))
        dataset_command(
            cohort=str(work / "cohort"),
            out=str(work / "dataset"),
            seed=c.seed,
            history=c.history,
            guidance=c.guidance,
            region=c.region,
            notes_facts=c.notes_facts,
        )
        if not (work / "dataset" / "train.jsonl").is_file():
            raise ConfigError("the dataset builder wrote no train.jsonl", source=str(work), field="data.cohort")
        try:
            (work / "dataset").rename(folder)
        except OSError:  # built meanwhile by another process
            if not (folder / "train.jsonl").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder
