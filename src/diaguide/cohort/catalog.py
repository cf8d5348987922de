"""The drugs the synthetic physicians prescribe, read once from `data/drugs.yaml`.

A drug on the order sheet is a product key (`empagliflozin`), a dose step (index into its
ladder) or, for insulin, a number of units. This module turns those into the strings a
physician writes, in English or Chinese.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import yaml

from diaguide.drugs import classes as drug_classes
from diaguide.errors import ConfigError

DATA = Path(__file__).parent / "data"


@dataclasses.dataclass(frozen=True)
class DrugSpec:
    key: str
    name: str
    zh: str
    drug_class: str
    rxnorm: str
    steps: tuple[tuple[str, str], ...]  # (dose, frequency) from the starting dose upward
    zh_steps: tuple[tuple[str, str], ...]
    insulin_frequency: str | None  # set for insulins, which are dosed in units

    @property
    def is_insulin(self) -> bool:
        return self.insulin_frequency is not None

    def dose(self, step: int, units: int | None, lang: str) -> tuple[str, str]:
        """(dose, frequency) as written on an order in `lang`."""
        if self.is_insulin:
            u = units or 10
            return (f"{u}U" if lang == "zh" else f"{u} U"), str(self.insulin_frequency)
        ladder = self.zh_steps if lang == "zh" and self.zh_steps else self.steps
        dose, freq = ladder[max(0, min(step, len(ladder) - 1))]
        return (dose.replace(" ", "") if lang == "zh" else dose), freq

    @property
    def top_step(self) -> int:
        return max(0, len(self.steps) - 1)

    def label(self, lang: str, zh_names: bool) -> str:
        return self.zh if lang == "zh" and zh_names else self.name


@functools.cache
def drugs() -> dict[str, DrugSpec]:
    """Every prescribable product, by key (file order kept, so iteration is deterministic)."""
    raw = yaml.safe_load((DATA / "drugs.yaml").read_text(encoding="utf-8"))
    out: dict[str, DrugSpec] = {}
    for key, d in raw["drugs"].items():
        # the class (drugs/classes.yaml) decides the effect of an insulin dosed in units (cohort/patients.py)
        if bool(d.get("insulin")) != bool(drug_classes.get(d["class"]).insulin):
            raise ConfigError(
                "an insulin product needs an insulin class, and only it",
                source=str(DATA / "drugs.yaml"),
                field=f"drugs.{key}",
            )
        steps = tuple((str(a), str(b)) for a, b in d.get("steps") or [])
        zh_steps = tuple((str(a), str(b)) for a, b in d.get("zh_steps") or [])
        out[key] = DrugSpec(
            key, d["name"], d["zh"], d["class"], str(d.get("rxnorm") or ""), steps, zh_steps, d.get("insulin")
        )
    return out


def spec(key: str) -> DrugSpec:
    return drugs()[key]


def class_of(key: str) -> str:
    return drugs()[key].drug_class


@functools.cache
def prevalence() -> dict:
    """The trait rates of `data/prevalence.yaml` (each entry has `rate` and `source`)."""
    return yaml.safe_load((DATA / "prevalence.yaml").read_text(encoding="utf-8"))


def rate(*path: str) -> float:
    node = prevalence()
    for part in path:
        node = node[part]
    return float(node["rate"])
