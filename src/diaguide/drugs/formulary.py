"""The formulary: find a drug from whatever a record or a model calls it.

`lookup("Glucophage")`, `lookup("二甲双胍缓释片 0.5g bid")`, `lookup("860975")` and
`lookup("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet")` all return the
metformin entry of `formulary.yaml`. Names are matched case-insensitively inside longer text;
the longest name wins ("insulin glargine" beats "insulin"), except that premixed insulins carry
a priority so "Humulin 70/30" is not read as its NPH part.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from typing import Any

from diaguide import clinical_data
from diaguide.drugs.classes import CLASS_IDS
from diaguide.errors import ConfigError

FORMULARY_PATH = clinical_data.path("drugs/formulary.yaml")

_ATC_RE = re.compile(r"^[A-Z]\d\d[A-Z]{2}\d\d$")
# "860975", "rxnorm:860975", "http://www.nlm.nih.gov/research/umls/rxnorm|860975"
_RXNORM_RE = re.compile(r"^(?:.*rxnorm\s*[:|#]\s*)?(\d{3,9})$")


@dataclasses.dataclass(frozen=True)
class Drug:
    """One formulary entry. Doses are adult doses in `dose_unit`; None means no fixed maximum."""

    name: str
    drug_class: str
    names_zh: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    rxnorm: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()
    usual_dose: str = ""
    max_daily_dose: float | None = None
    max_daily_dose_cn: float | None = None
    max_weekly_dose: float | None = None
    dose_unit: str = "mg"
    renal: str = ""
    hepatic: str = ""
    tags: tuple[str, ...] = ()
    priority: int = 0
    source: str = ""

    def max_daily(self, region: str = "ada") -> float | None:
        """The maximum daily dose under a region's label (China may be lower, e.g. metformin 2000 mg)."""
        if region == "cds" and self.max_daily_dose_cn is not None:
            return self.max_daily_dose_cn
        return self.max_daily_dose

    def names(self) -> tuple[str, ...]:
        """Every name this drug is known by (generic, synonyms, Chinese, brands)."""
        return (self.name, *self.synonyms, *self.names_zh, *self.brands)


def normalise_text(text: str) -> str:
    """Lower case, full-width characters folded (NFKC), whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int, float)):
        return (str(value),)
    return tuple(str(v) for v in value)


def _drug_from_entry(entry: dict[str, Any], index: int) -> Drug:
    where = f"drugs[{index}]"
    for key in ("name", "class", "source"):
        if not entry.get(key):
            raise ConfigError(f"missing {key!r}", source=str(FORMULARY_PATH), field=where)
    if entry["class"] not in CLASS_IDS:
        raise ConfigError(f"unknown class {entry['class']!r}", source=str(FORMULARY_PATH), field=f"{where}.class")

    def num(key: str) -> float | None:
        value = entry.get(key)
        return None if value is None else float(value)

    return Drug(
        name=str(entry["name"]).lower(),
        drug_class=entry["class"],
        names_zh=_tuple(entry.get("names_zh")),
        brands=_tuple(entry.get("brands")),
        synonyms=_tuple(entry.get("synonyms")),
        rxnorm=_tuple(entry.get("rxnorm")),
        atc=tuple(a.upper() for a in _tuple(entry.get("atc"))),
        usual_dose=str(entry.get("usual_dose") or ""),
        max_daily_dose=num("max_daily_dose"),
        max_daily_dose_cn=num("max_daily_dose_cn"),
        max_weekly_dose=num("max_weekly_dose"),
        dose_unit=str(entry.get("dose_unit") or "mg"),
        renal=str(entry.get("renal") or ""),
        hepatic=str(entry.get("hepatic") or ""),
        tags=_tuple(entry.get("tags")),
        priority=int(entry.get("priority") or 0),
        source=str(entry["source"]),
    )


@dataclasses.dataclass(frozen=True)
class _Index:
    drugs: dict[str, Drug]
    terms: tuple[tuple[str, tuple[Drug, ...], int], ...]  # (normalised term, drugs, priority), best first
    codes: dict[str, Drug]  # RxNorm and ATC codes


@functools.lru_cache(maxsize=1)
def _index() -> _Index:
    data = clinical_data.read(FORMULARY_PATH)
    drugs: dict[str, Drug] = {}
    for i, entry in enumerate(data.get("drugs") or []):
        drug = _drug_from_entry(entry, i)
        drugs[drug.name] = drug

    by_term: dict[str, tuple[tuple[Drug, ...], int]] = {}
    codes: dict[str, Drug] = {}
    for drug in drugs.values():
        for term in drug.names():
            by_term.setdefault(normalise_text(term), ((drug,), drug.priority))
        for code in (*drug.rxnorm, *drug.atc):
            codes.setdefault(code, drug)
    for i, combo in enumerate(data.get("combinations") or []):
        try:
            parts = tuple(drugs[normalise_text(c)] for c in combo["components"])
        except KeyError as exc:
            raise ConfigError(
                f"unknown component {exc}", source=str(FORMULARY_PATH), field=f"combinations[{i}]"
            ) from exc
        for brand in _tuple(combo.get("brands")):
            # a combination brand outranks its parts' names inside the same text
            by_term[normalise_text(brand)] = (parts, 2)
    terms = sorted(((t, d, p) for t, (d, p) in by_term.items() if t), key=lambda x: (-x[2], -len(x[0])))
    return _Index(drugs=drugs, terms=tuple(terms), codes=codes)


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _find(term: str, text: str, taken: list[tuple[int, int]]) -> tuple[int, int] | None:
    """First occurrence of `term` in `text` that is a whole word (at ASCII edges) and not already taken."""
    start = text.find(term)
    while start >= 0:
        end = start + len(term)
        before_ok = start == 0 or not (_is_word_char(term[0]) and _is_word_char(text[start - 1]))
        after_ok = end == len(text) or not (_is_word_char(term[-1]) and _is_word_char(text[end]))
        free = all(end <= a or start >= b for a, b in taken)
        if before_ok and after_ok and free:
            return start, end
        start = text.find(term, start + 1)
    return None


def _code_match(text: str) -> Drug | None:
    raw = unicodedata.normalize("NFKC", text).strip()
    if _ATC_RE.match(raw.upper()):
        return _index().codes.get(raw.upper())
    m = _RXNORM_RE.match(raw.lower())
    return _index().codes.get(m.group(1)) if m else None


def ingredients(text: str | None) -> list[Drug]:
    """Every formulary drug named in `text`, in order of match strength (combination brands give all parts)."""
    if not text or not isinstance(text, str):
        return []
    return list(_ingredients(text))


@functools.lru_cache(maxsize=4096)
def _ingredients(text: str) -> tuple[Drug, ...]:
    coded = _code_match(text)
    if coded is not None:
        return (coded,)
    norm = normalise_text(text)
    found: list[Drug] = []
    taken: list[tuple[int, int]] = []
    for term, drugs, _priority in _index().terms:
        if len(term) > len(norm):
            continue
        span = _find(term, norm, taken)
        if span is None:
            continue
        taken.append(span)
        found.extend(d for d in drugs if d not in found)
    return tuple(found)


def lookup(text: str | None) -> Drug | None:
    """The drug a name, brand, Chinese name, RxNorm/ATC code or longer drug text refers to, or None."""
    found = ingredients(text)
    return found[0] if found else None


def drug_class_of(text: str | None) -> str:
    """The drug class (drugs/classes.yaml) of a drug text; `other` when the drug is unknown."""
    drug = lookup(text)
    return drug.drug_class if drug else "other"


def get(name: str) -> Drug | None:
    """A formulary entry by its exact English generic name."""
    return _index().drugs.get(normalise_text(name))


def all_drugs() -> list[Drug]:
    """Every formulary entry, in file order."""
    return list(_index().drugs.values())
