"""The clinical data files: one registry, one reader, one version.

Every drug, rule, threshold, interaction, lab interval, notes cue and code table DiaGuide decides with lives in
one of the YAML files below, each entry with its source (docs/clinical.md). `version()` hashes all of them: it is
the `rule_version` stamped on every card and audit row, so an edit to any of them shows in which rules produced a
recommendation. A new clinical data file is added here; `tests/test_clinical_data.py` fails on a package YAML
that is in neither this registry nor `NOT_CLINICAL`.

This module sits at the bottom of the import graph: it imports nothing of DiaGuide but `errors`.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import yaml

from diaguide.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent

FILES: tuple[str, ...] = (
    "drugs/classes.yaml",  # drug classes: names, glucose-lowering or not, insulin kind, spellings, class words
    "drugs/formulary.yaml",  # drugs: class, codes, doses, renal/hepatic limits
    "knowledge/guideline.yaml",  # goals, treatment rules, conditions read from codes and notes
    "knowledge/interactions.yaml",  # drug-drug interactions
    "knowledge/monitoring.yaml",  # which labs are due, and when
    "safety/rules.yaml",  # contraindications, cautions, allergy and duplicate checks
    "safety/complexity.yaml",  # the record-complexity score
    "notes/context.yaml",  # assertion cues (negated, family, historical ...) in English and Chinese
    "notes/values.yaml",  # lab values written in the notes
    "prompts/vocab.yaml",  # how model output names keys, actions and labs
    "records/terminology.yaml",  # SNOMED and diagnosis text -> ICD-10
)

# Package YAML that shapes no clinical decision: the synthetic cohort's own generator data, prompt wording, and
# the example column mappings a hospital replaces with its own.
NOT_CLINICAL: tuple[str, ...] = ("cohort/data/", "prompts/templates/", "records/mappings/")

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the formulary ~10x faster


def path(name: str) -> Path:
    """The file of a registered name (`safety/rules.yaml`)."""
    if name not in FILES:
        raise ConfigError(f"not a registered clinical data file; known: {', '.join(FILES)}", source=name)
    return PACKAGE / name


def read(file: Path) -> dict[str, Any]:
    """A clinical YAML file parsed to its top-level mapping; a `ConfigError` naming the file otherwise. Not cached:
    each module caches what it builds from the data."""
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(file)) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", source=str(file))
    return data


def load(name: str) -> dict[str, Any]:
    """A registered file, parsed (`load("knowledge/guideline.yaml")`)."""
    return read(path(name))


@functools.cache
def version() -> str:
    """A hash of every registered file, names included (16 hex). Computed once per process, like the rules the
    process loaded once."""
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(name.encode())
        digest.update(path(name).read_bytes())
    return digest.hexdigest()[:16]
