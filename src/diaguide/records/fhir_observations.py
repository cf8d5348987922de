"""Observations -> labs, vital signs, chief complaint, note narratives and pregnancy status;
Composition sections -> chief complaint and note narratives.

Every numeric value goes through `units.to_canonical`: a value in an unknown unit, an implausible
value (an HbA1c of 80 %) or a non-numeric result ("<0.1", "QNS") for a known analyte becomes a
warning naming the file, the LOINC code and the value, and the observation is skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import re
from typing import Any

from fhir.resources.R4B.observation import Observation

from diaguide.errors import InputError
from diaguide.records import terminology, units
from diaguide.records.fhir_resources import (
    BP_PANELS,
    CHIEF_COMPLAINT,
    DROP_STATUS,
    NARRATIVES,
    NON_LAB_CATEGORIES,
    NOT_PREGNANT_SNOMED,
    PREGNANCY_STATUS,
    PREGNANT_SNOMED,
    VITAL_KEYS,
    Ctx,
    ObsRec,
    codes,
    concept_text,
    note_text,
    ref,
    status_code,
    to_date,
)


def _obs_date(m: Observation) -> dt.date | None:
    if m.effectiveDateTime:
        return to_date(m.effectiveDateTime)
    if m.effectivePeriod and (m.effectivePeriod.start or m.effectivePeriod.end):
        return to_date(m.effectivePeriod.start or m.effectivePeriod.end)
    return to_date(m.effectiveInstant or m.issued)


def _quantity(ctx: Ctx, ident: str, loinc: str, q: Any, name: str) -> tuple[float, str, str | None] | None:
    """Convert a Quantity to the canonical unit; None (and a warning) when it cannot be trusted."""
    if q is None or q.value is None:
        return None
    # The UCUM code is the machine-readable unit; `unit` is display text ("beats/minute").
    unit = q.code if q.code and terminology.system_name(q.system) == terminology.UCUM else (q.unit or q.code)
    try:
        value, canon_unit = units.to_canonical(loinc, float(q.value), unit)
    except InputError as first:
        value = None
        if q.unit and q.unit != unit:  # the display unit may still be a known spelling
            with contextlib.suppress(InputError):
                value, canon_unit = units.to_canonical(loinc, float(q.value), q.unit)
        if value is None:
            ctx.warn(
                "Observation",
                ident,
                f"LOINC {loinc} ({name}) value {q.value} {unit or ''}: {first.message}; observation skipped",
            )
            return None
    analyte = units.analyte_for(loinc)
    converted = analyte is not None and units.normalise_unit(unit) not in ("", units.normalise_unit(analyte.unit))
    flag = f"converted from {q.value} {unit}" if converted else None
    if q.comparator:  # "eGFR >90": the number is a bound, not a measurement
        flag = "; ".join(x for x in (f"reported as {q.comparator}{q.value}", flag) if x)
    return value, canon_unit, flag


def read_observation(m: Observation, ctx: Ctx, ident: str) -> list[ObsRec]:
    if m.status in DROP_STATUS:
        return []
    loincs = codes(m.code, terminology.LOINC)
    if not loincs:
        return []
    loinc = next((c for c in loincs if units.analyte_for(c)), loincs[0])
    date, subject, enc = _obs_date(m), ref(m.subject), ref(m.encounter)
    name = concept_text(m.code)

    def rec(kind: str, key: str, value: Any, unit: str = "", flag: str | None = None, label: str = name) -> ObsRec:
        return ObsRec(kind, key, date, value, unit, label, flag, subject, enc)

    if loinc == CHIEF_COMPLAINT:
        text = m.valueString or concept_text(m.valueCodeableConcept)
        return [rec("complaint", loinc, text.strip())] if text and text.strip() else []
    if loinc in NARRATIVES:  # History of Present / Past illness Narrative: the text, else its notes
        text = (m.valueString or concept_text(m.valueCodeableConcept) or note_text(m.note)).strip()
        return [rec("narrative", NARRATIVES[loinc], text)] if text else []
    if loinc in PREGNANCY_STATUS:
        value_codes = codes(m.valueCodeableConcept, terminology.SNOMED)
        text = concept_text(m.valueCodeableConcept).lower()
        if PREGNANT_SNOMED in value_codes or (text.startswith("pregnant") and "not" not in text):
            return [rec("pregnancy", loinc, True)]
        if NOT_PREGNANT_SNOMED in value_codes or "not pregnant" in text:
            return [rec("pregnancy", loinc, False)]
        return []
    categories = {status_code(c) for c in (m.category or ())}
    analyte = units.analyte_for(loinc)
    if analyte is not None and m.valueQuantity is None and (m.valueString or m.valueCodeableConcept):
        # "<0.1", "QNS", "haemolysed": a result a person must read, not a number to pass on
        ctx.warn(
            "Observation",
            ident,
            f"LOINC {loinc} ({analyte.name}) value {m.valueString!r}: not a number; observation skipped",
        )
        return []
    out: list[ObsRec] = []
    parts = [(loinc, m.valueQuantity, name)]
    if loinc in BP_PANELS or m.component:
        for comp in m.component or ():
            comp_loincs = codes(comp.code, terminology.LOINC)
            if comp_loincs:
                parts.append((comp_loincs[0], comp.valueQuantity, concept_text(comp.code)))
    for code, q, label in parts:
        if q is None:
            continue
        got = _quantity(ctx, ident, code, q, label)
        if got is None:
            continue
        value, unit, flag = got
        analyte = units.analyte_for(code)
        if analyte is not None and analyte.key in VITAL_KEYS:
            out.append(rec("vital", analyte.key, value, unit, flag, analyte.name))
        elif not categories & NON_LAB_CATEGORIES:
            canonical = units.canonical_loinc(code)
            out.append(rec("lab", canonical, value, unit, flag, analyte.name if analyte else label))
    return out


_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|div|li|tr|h\d)>|<br\s*/?>", re.IGNORECASE)


def xhtml_text(div: str | None) -> str:
    """Plain text of a FHIR Narrative `div` (XHTML): tags dropped, entities decoded, spaces folded."""
    if not div:
        return ""
    text = html.unescape(_TAG.sub(" ", _BLOCK_END.sub("; ", div)))
    return re.sub(r"\s*;(\s*;)+", ";", re.sub(r"\s+", " ", text)).strip(" ;")


def read_composition(m: Any) -> list[ObsRec]:
    """A clinical note (Composition): its chief-complaint, present- and past-illness sections."""
    if m.status in DROP_STATUS:
        return []
    date, subject, enc = to_date(m.date), ref(m.subject), ref(m.encounter)
    out: list[ObsRec] = []
    sections = list(m.section or ())
    while sections:
        sec = sections.pop(0)
        sections.extend(sec.section or ())  # nested sections are read too
        loincs = codes(sec.code, terminology.LOINC)
        text = xhtml_text(sec.text.div if sec.text else None)
        if not text:
            continue
        for loinc in loincs:
            if loinc == CHIEF_COMPLAINT:
                out.append(ObsRec("complaint", loinc, date, text, "", sec.title or "", None, subject, enc))
            elif loinc in NARRATIVES:
                out.append(ObsRec("narrative", NARRATIVES[loinc], date, text, "", sec.title or "", None, subject, enc))
    return out
