"""The drug classes of `classes.yaml`, read once at import: what every layer asks about a class.

One file says, per class, its display names, whether it lowers glucose, which insulin it is, how model output and
plan lines spell it and which allergy words name it (docs/design.md, "Drug classes"). The schema's `DrugClass`
vocabulary, the parser's class spellings, the checker's class words and allergy terms, the insulin sets of the
guideline and the checker, and the cohort's drug effects are all built from it; none lists classes of its own.

This module sits at the bottom of the import graph with `clinical_data`: it imports nothing else of DiaGuide but
`errors`, so `records/` can build its schema from it.
"""

from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType
from typing import Any

from diaguide import clinical_data
from diaguide.errors import ConfigError

CLASSES_PATH = clinical_data.path("drugs/classes.yaml")
INSULIN_KINDS = ("basal", "prandial", "premixed")
OTHER = "other"  # a drug no class covers, or one the formulary does not know (the schema default)


@dataclasses.dataclass(frozen=True)
class DrugClassInfo:
    """One class of `classes.yaml`; the cohort fields are None (weight 0) for a class that lowers no glucose."""

    id: str
    name_en: str
    name_zh: str
    label: str  # short English label of tables and charts
    glucose_lowering: bool
    insulin: str | None  # basal | prandial | premixed, None for a non-insulin class
    spellings: tuple[str, ...]
    class_words: tuple[str, ...]
    allergy_terms: tuple[str, ...]
    hba1c_lowering: float | None  # % points at full dose, monotherapy (synthetic cohort)
    weight_kg: float  # weight change while on the class (synthetic cohort)
    full_effect_u_per_kg: float | None  # insulin: the daily dose of full effect (synthetic cohort)
    source: str

    def name(self, language: str) -> str:
        """The class's name in a visit's language (`zh`, else English)."""
        return self.name_zh if language == "zh" else self.name_en


def _fail(message: str, field: str) -> ConfigError:
    return ConfigError(message, source=str(CLASSES_PATH), field=field)


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail("expected a list of non-empty strings", f"{where}.{key}")
    return tuple(value)


def _number(block: dict[str, Any], key: str, where: str) -> float:
    value = block.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail("expected a number", f"{where}.{key}")
    return float(value)


def _cohort(entry: dict[str, Any], glucose_lowering: bool, insulin: str | None, where: str) -> tuple[Any, ...]:
    block = entry.get("cohort")
    if not glucose_lowering:
        if block is not None:
            raise _fail("only a glucose-lowering class has cohort effects", f"{where}.cohort")
        return None, 0.0, None
    if not isinstance(block, dict):
        raise _fail("a glucose-lowering class needs {hba1c_lowering, weight_kg}", f"{where}.cohort")
    per_kg = _number(block, "full_effect_u_per_kg", f"{where}.cohort") if insulin else None
    if not insulin and "full_effect_u_per_kg" in block:
        raise _fail("only an insulin class has full_effect_u_per_kg", f"{where}.cohort")
    return _number(block, "hba1c_lowering", f"{where}.cohort"), _number(block, "weight_kg", f"{where}.cohort"), per_kg


def _class(class_id: str, entry: Any) -> DrugClassInfo:
    where = f"classes.{class_id}"
    if not isinstance(entry, dict):
        raise _fail("expected a mapping", where)
    name = entry.get("name")
    if not isinstance(name, dict) or not all(isinstance(name.get(k), str) and name[k] for k in ("en", "zh")):
        raise _fail("name needs en and zh", f"{where}.name")
    if not isinstance(entry.get("source"), str) or not entry["source"]:
        raise _fail("missing 'source'", where)
    glucose_lowering = entry.get("glucose_lowering")
    if not isinstance(glucose_lowering, bool):  # never inferred: a class that is left out would count as one
        raise _fail("write glucose_lowering: true or false", f"{where}.glucose_lowering")
    insulin = entry.get("insulin")
    if insulin is not None and insulin not in INSULIN_KINDS:
        raise _fail(f"insulin is one of {', '.join(INSULIN_KINDS)}", f"{where}.insulin")
    if insulin and not glucose_lowering:
        raise _fail("an insulin class lowers glucose", f"{where}.glucose_lowering")
    words = _strings(entry, "class_words", where)
    for i, pattern in enumerate(words):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(f"not a regular expression: {exc}", f"{where}.class_words[{i}]") from exc
    hba1c, weight, per_kg = _cohort(entry, glucose_lowering, insulin, where)
    return DrugClassInfo(
        id=class_id,
        name_en=name["en"],
        name_zh=name["zh"],
        label=str(entry.get("label") or name["en"]),
        glucose_lowering=glucose_lowering,
        insulin=insulin,
        spellings=_strings(entry, "spellings", where),
        class_words=words,
        allergy_terms=_strings(entry, "allergy_terms", where),
        hba1c_lowering=hba1c,
        weight_kg=weight,
        full_effect_u_per_kg=per_kg,
        source=entry["source"],
    )


def read_classes(data: dict[str, Any]) -> tuple[dict[str, DrugClassInfo], tuple[str, ...]]:
    """The classes of a parsed classes.yaml, by id in file order, and the order class words are tried in; a
    `ConfigError` naming the field that is wrong."""
    raw = data.get("classes")
    if not isinstance(raw, dict) or not raw:
        raise _fail("expected a mapping of class ids", "classes")
    classes = {str(class_id): _class(str(class_id), entry) for class_id, entry in raw.items()}
    if OTHER not in classes:
        raise _fail(f"the class {OTHER!r} (a drug the formulary does not know) is missing", "classes")
    order = data.get("class_word_order")
    with_words = {c for c, info in classes.items() if info.class_words}
    if not isinstance(order, list) or len(order) != len(set(order)) or set(order) != with_words:
        raise _fail("list every class that has class_words, each once", "class_word_order")
    return classes, tuple(order)


_CLASSES, _WORD_ORDER = read_classes(clinical_data.read(CLASSES_PATH))

CLASS_IDS: tuple[str, ...] = tuple(_CLASSES)  # file order: the schema's vocabulary and the evaluation's columns
GLUCOSE_LOWERING_CLASSES: frozenset[str] = frozenset(c for c, info in _CLASSES.items() if info.glucose_lowering)
INSULIN_CLASSES: tuple[str, ...] = tuple(c for c, info in _CLASSES.items() if info.insulin)
NON_INSULIN_CLASSES: tuple[str, ...] = tuple(
    c for c, info in _CLASSES.items() if info.glucose_lowering and not info.insulin
)  # the glucose-lowering classes that are not insulin


# what a rule's `class_groups` may name (safety/rules.yaml, knowledge/interactions.yaml, safety/complexity.yaml), so a
# rule meant for every glucose-lowering class also covers the next one added to classes.yaml
CLASS_GROUPS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "all": frozenset(CLASS_IDS) - {OTHER},
        "glucose_lowering": GLUCOSE_LOWERING_CLASSES,
        "insulin": frozenset(INSULIN_CLASSES),
        "non_insulin": frozenset(NON_INSULIN_CLASSES),
    }
)


def in_groups(class_id: str, groups: list[str] | tuple[str, ...]) -> bool:
    """Whether a class belongs to one of the named `CLASS_GROUPS`; a `ConfigError` for a group that does not exist."""
    for group in groups:
        if group not in CLASS_GROUPS:
            raise ConfigError(f"unknown class group {group!r}; known: {', '.join(CLASS_GROUPS)}", field="class_groups")
        if class_id in CLASS_GROUPS[group]:
            return True
    return False


def get(class_id: str) -> DrugClassInfo:
    """A class by id; a `ConfigError` naming the file for an id it does not list."""
    try:
        return _CLASSES[class_id]
    except KeyError:
        raise _fail(f"unknown drug class {class_id!r}; known: {', '.join(CLASS_IDS)}", "classes") from None


def all_classes() -> MappingProxyType[str, DrugClassInfo]:
    """Every class by id, in file order."""
    return MappingProxyType(_CLASSES)


def name(class_id: str, language: str) -> str:
    """What a plan or caution writes for the class, in the visit's language (`SGLT2 inhibitor`, `SGLT2抑制剂`)."""
    return get(class_id).name(language)


def labels() -> dict[str, str]:
    """The short English label of every class, for tables and charts (`metformin`, `SGLT2 inhibitor`)."""
    return {c: info.label for c, info in _CLASSES.items()}


def class_words() -> dict[str, tuple[str, ...]]:
    """Per class, the patterns of a plan line that names the class, in the order they are tried."""
    return {c: _CLASSES[c].class_words for c in _WORD_ORDER}


def allergy_terms() -> dict[str, tuple[str, ...]]:
    """Per class, the words that name the whole class in an allergy entry."""
    return {c: info.allergy_terms for c, info in _CLASSES.items() if info.allergy_terms}


def spellings() -> dict[str, tuple[str, ...]]:
    """Per class, the spellings of its id that model output uses (`sglt2`, `磺脲类`), besides the id itself."""
    return {c: info.spellings for c, info in _CLASSES.items() if info.spellings}
