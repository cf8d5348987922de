"""Clinical facts from a visit's free text, each with its provenance: the field, the words, the assertion.

The vocabulary (which fact kinds exist and the patterns that name them, English and Chinese) is the caller's
data: the knowledge package passes the conditions of guideline.yaml and rules.yaml. This module finds every
mention, asks `assertion.py` how it is asserted, and reads laboratory values with their dates (`values.py`).
Nothing here decides what a fact means for treatment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re

from diaguide.notes.assertion import assertion_of, compile_patterns, quote, sentences
from diaguide.notes.values import date_near, find_values
from diaguide.records.schema import Evidence, Visit

FIELDS = ("chief_complaint", "present_illness", "past_history")
# where the present illness or chief complaint gives a value without a date, it is this visit's
CURRENT_FIELDS = ("chief_complaint", "present_illness")


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
    """The fact kinds and the patterns that name them: ((kind, (pattern, ...)), ...).

    Hashed and compared by identity: the caches below and the callers' are keyed by it on every question the
    engines ask of a visit, and hashing ~40 kinds of patterns each time cost more than the cached answer. Build one
    per conditions table and keep it (the knowledge package caches its two).
    """

    kinds: tuple[tuple[str, tuple[str, ...]], ...]


@dataclasses.dataclass(frozen=True)
class NoteFacts:
    """Every fact mention in a visit's text; queries by kind and assertion."""

    evidence: tuple[Evidence, ...]

    def of(self, kind: str, *assertions: str) -> list[Evidence]:
        """Mentions of a kind, all or only those with the given assertions."""
        return [e for e in self.evidence if e.kind == kind and (not assertions or e.assertion in assertions)]

    def values(self, analyte: str) -> list[Evidence]:
        """Values of an analyte that are not negated or hypothetical, newest first (undated last)."""
        found = [
            e
            for e in self.evidence
            if e.kind == analyte and e.value is not None and e.assertion in ("present", "historical")
        ]
        return sorted(found, key=lambda e: e.date or dt.date.min, reverse=True)


@functools.lru_cache(maxsize=64)
def _compiled(vocabulary: Vocabulary) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((kind, compile_patterns(patterns)) for kind, patterns in vocabulary.kinds)


@functools.lru_cache(maxsize=8192)
def _field_facts(field: str, text: str, vocabulary: Vocabulary, visit_date: dt.date | None) -> tuple[Evidence, ...]:
    kinds = _compiled(vocabulary)
    out: list[Evidence] = []
    for sentence in sentences(text):
        for kind, rx in kinds:
            if not rx.search(sentence.text):
                continue
            for m in rx.finditer(sentence.text):
                out.append(
                    Evidence(
                        kind=kind,
                        field=field,
                        text=quote(sentence, m.start(), m.end()),
                        term=m.group(0),
                        start=sentence.start + m.start(),
                        assertion=assertion_of(sentence, m.start(), m.end()),
                    )
                )
        for analyte, value, unit, start, end in find_values(sentence.text):
            assertion = assertion_of(sentence, start, end)
            clause = next((sentence.text[a:b] for a, b in sentence.clauses if a <= start < b), sentence.text)
            date = date_near(clause, visit_date) or (visit_date if field in CURRENT_FIELDS else None)
            out.append(
                Evidence(
                    kind=analyte,
                    field=field,
                    text=quote(sentence, start, end),
                    term=sentence.text[start:end],
                    start=sentence.start + start,
                    assertion=assertion,
                    value=value,
                    unit=unit,
                    date=date,
                )
            )
    return tuple(out)


def extract(visit: Visit, vocabulary: Vocabulary) -> NoteFacts:
    """Every fact of `vocabulary` and every laboratory value written in the visit's chief complaint, present
    illness, past history and diagnosis texts."""
    evidence: list[Evidence] = []
    for field in FIELDS:
        text = getattr(visit, field)
        if text:
            evidence += _field_facts(field, text, vocabulary, visit.date)
    for d in visit.diagnoses:  # a diagnosis written as text (HIS exports) is read like the notes
        text = f"{d.display} {d.code if d.system.lower() == 'text' else ''}".strip()
        if text:
            evidence += _field_facts("diagnosis", text, vocabulary, visit.date)
    return NoteFacts(tuple(evidence))
