"""The notes, read for the guideline engine and the safety checker: which facts written in free text count for
the patient, the values written there, and how a decision quotes the words it rests on (docs/notes.md).

The vocabulary is guideline.yaml's `conditions` (each with codes, patterns and a source); `notes/` finds the
mentions and their assertions. A mention counts for the patient when it is asserted present, or historical for a
condition that is not `current_only` (a past pancreatitis still counts, a past pregnancy does not), or a relative's
for a condition marked `family` (MTC/MEN2). A "possible" mention of a condition marked `ask` is put to the
physician as a question, never acted on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from diaguide.notes import NoteFacts, extract
from diaguide.notes.extract import Vocabulary

__all__ = ["Vocabulary", "cite", "cite_all", "counted", "counts", "evidence_for", "newest", "read", "vocabulary"]
from diaguide.records.schema import Evidence, Visit

FIELD_NAMES = {
    "en": {"chief_complaint": "chief complaint", "present_illness": "present illness", "past_history": "past history",
           "diagnosis": "diagnosis"},
    "zh": {"chief_complaint": "主诉", "present_illness": "现病史", "past_history": "既往史", "diagnosis": "诊断"},
}  # fmt: skip
QUOTE_MAX = 60  # characters of the notes quoted in a reason or finding


def vocabulary(conditions: dict[str, Any]) -> Vocabulary:
    """The text patterns of a conditions table (guideline.yaml or rules.yaml), as notes.extract takes them."""
    return Vocabulary(tuple((n, tuple(spec["patterns"])) for n, spec in conditions.items() if spec.get("patterns")))


def counts(spec: dict[str, Any], assertion: str) -> bool:
    """Whether a mention so asserted means the patient has the condition."""
    if assertion == "present":
        return True
    if assertion == "historical":
        return not spec.get("current_only", False)
    if assertion == "family":
        return bool(spec.get("family", False))
    return False


_READ: dict[tuple, NoteFacts] = {}
_READ_MAX = 4096  # distinct visits' texts kept; the engines ask of one visit a few times, then move on


def read(visit: Visit, vocab: Vocabulary) -> NoteFacts:
    """Every mention of `vocab` in the visit's text, read once per distinct text (the guideline engine, the checker
    and the complexity score all ask of the same visit)."""
    texts = (visit.chief_complaint, visit.present_illness, visit.past_history)
    key = (texts, tuple((d.system, d.code, d.display) for d in visit.diagnoses), visit.date, vocab)
    found = _READ.get(key)
    if found is None:
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        found = _READ[key] = extract(visit, vocab)
    return found


def counted(notes: NoteFacts, name: str, spec: dict[str, Any]) -> list[Evidence]:
    """The mentions of a condition that count for the patient."""
    return [e for e in notes.of(name) if e.value is None and counts(spec, e.assertion)]


def evidence_for(evidence: dict[str, list[Evidence]], names: list[str]) -> list[Evidence]:
    """The words from the notes recorded for these facts (`Facts.evidence`), each mention once, in order."""
    found: list[Evidence] = []
    for name in names:
        for e in evidence.get(name, []):
            if e not in found:
                found.append(e)
    return found


def cite(evidence: Evidence, language: str) -> str:
    """`from past history: 'maintenance haemodialysis…'` / `来自既往史：‘规律腹膜透析3年’`."""
    lang = "zh" if language == "zh" else "en"
    words = evidence.text if len(evidence.text) <= QUOTE_MAX else evidence.text[: QUOTE_MAX - 1] + "…"
    field = FIELD_NAMES[lang].get(evidence.field, evidence.field)
    return f"来自{field}：‘{words}’" if lang == "zh" else f"from {field}: '{words}'"


def cite_all(evidence: list[Evidence], language: str) -> str:
    """Every distinct quote, joined; empty when there is none."""
    seen, parts = set(), []
    for e in evidence:
        key = (e.field, e.text)
        if key not in seen:
            seen.add(key)
            parts.append(cite(e, language))
    return ("；" if language == "zh" else "; ").join(parts)


def newest(values: list[Evidence]) -> Evidence | None:
    """The newest dated value (undated ones only when nothing is dated)."""
    dated = [v for v in values if v.date is not None]
    if dated:
        return max(dated, key=lambda v: v.date or dt.date.min)
    return values[0] if values else None
