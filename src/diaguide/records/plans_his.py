"""HIS exports (CSV/JSONL) and CDrugRed records -> what the physician did at each visit (docs/records.md).

A mapping names the columns (`mapping.py`, keys under "plan"): this visit's prescription (处方 / 医嘱 /
出院带药), the medications in force before it (现用药; else drugs named in free-text columns such as
既往史 / 现病史; else the same patient's previous prescription), lab orders (检验申请) and treatment advice
(处理意见 / 治疗方案). A prescription lists the whole regimen, so a drug in force before it and missing
from it is a `stop`, except where the list before was read from free text (what the text names is not a
regimen: nothing is stopped on its word). Prescription items are read with `tabular.parse_medication`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pydantic import BaseModel, Field

from diaguide.drugs import formulary
from diaguide.notes.assertion import assertion_of, sentences
from diaguide.records import plans as rp
from diaguide.records.mapping import ListColumn, Mapping, text_columns
from diaguide.records.schema import LabOrder, Medication, Plan, Visit
from diaguide.records.tabular import _cell, _items, parse_medication, text_of
from diaguide.records.units import analyte_for, canonical_loinc

IN_PRESCRIPTION = "in this visit's prescription"
_LOINC = re.compile(r"^\d{1,7}-\d$")
_NAME_CHARS = re.compile(r"[A-Za-z\u3400-\u9fff]")
# a clause that says a drug was stopped, switched away from or taken formerly: not on the list before; a clause
# that only says so ("曾服用格列美脲，已停用") stops the drugs of the clause before it
_STOPPED = re.compile(
    r"停用|停药|已停|自行停|停服|曾(?:经)?(?:服用|口服|使用|注射)|previously|formerly|stopped|discontinued",
    re.IGNORECASE,
)
_STOP_ONLY = re.compile(r"^\s*(?:后|现|均|现已|已)?(?:停用|停药|停服|已停)", re.IGNORECASE)
# a switch: what follows the cue is taken now, what precedes it (and a clause just before it) is not
_SWITCH = re.compile(r"改为|换用|改用|调整为|换为|\b(?:switched|changed)\b(?:\s+\S+){0,4}?\s+to\b", re.IGNORECASE)
_SWITCH_START = re.compile(
    r"^\s*(?:后|现|遂|再|then|later|now)?\s*(?:改为|换用|改用|调整为|换为|switched|changed)", re.I
)
_CLAUSE = re.compile(r"[。；;，,\n]")
_FORM = re.compile(r"(?:缓释|控释|肠溶|分散)?(?:片|胶囊|注射液|颗粒|丸)$|\s+(?:tablets?|capsules?|injection)$", re.I)


class PlanInput(BaseModel):
    """The plan columns of one row, read; parked with the visit until the patient's rows are in order."""

    where: str  # file and row, for messages
    column: str = "prescription"  # the prescription's column, for messages
    from_text: bool = False  # the list before the visit was read from free text: nothing is stopped on it
    prescription: list[Medication] | None = None  # None: the cell is empty (unknown); []: "none" written
    current: list[Medication] | None = None
    labs: list[LabOrder] = Field(default_factory=list)
    treatment: str = ""
    problems: list[str] = Field(default_factory=list)
    fatal: bool = False  # a prescription that cannot be read: no plan for this row


def _list(cells: dict[str, Any], spec: ListColumn) -> list[str] | None:
    """The items of a list cell; None when the cell is empty, [] when it says 'none'."""
    if not _cell(cells, spec.column):
        return None
    return _items(cells, spec.column, spec.delimiter, spec.none_values)


def _medications(items: list[str], column: str, pin: PlanInput) -> list[Medication]:
    out: list[Medication] = []
    seen: dict[tuple[str, str], int] = {}
    for n, item in enumerate(items, start=1):
        med = parse_medication(item)
        # parse_medication falls back to the whole text when no name is left beside the dose
        if not _NAME_CHARS.search(med.drug) or (med.dose and med.drug == item.strip()):
            # the text is not named here: a prescription is patient data (docs/records.md, "Bad input")
            pin.problems.append(
                f"{pin.where}: {column}: item {n} of {len(items)} names no drug; no plan for this record"
            )
            pin.fatal = True
            continue
        key = (rp.drug_key(med.drug), re.sub(r"\s+", "", (med.dose or "").lower()))
        if key in seen:
            pin.problems.append(
                f"{pin.where}: {column}: item {n} repeats item {seen[key]} (same drug and dose); one kept"
            )
            continue
        seen[key] = n
        out.append(med)
    return out


def _lab_orders(cells: dict[str, Any], m: Mapping, pin: PlanInput) -> list[LabOrder]:
    spec = m.lab_orders
    if spec is None:
        return []
    names = {**{column: lab.loinc for column, lab in m.labs.items()}, **spec.codes}
    out: dict[str, LabOrder] = {}
    for n, item in enumerate(_list(cells, spec) or [], start=1):
        code = item if _LOINC.match(item) else names.get(item)
        if code is None:
            pin.problems.append(f"{pin.where}: {spec.column}: item {n} is a lab the mapping has no LOINC for; left out")
            continue
        analyte = analyte_for(code)
        code = canonical_loinc(code) if analyte else code
        out.setdefault(code, LabOrder(loinc=code, name=analyte.name if analyte else item, basis="lab order column"))
    return list(out.values())


def _taken_clauses(text: str) -> list[tuple[Any, int, str]]:
    """(sentence, offset, clause) of each clause that does not stop or switch away from a drug."""
    out = []
    for sentence in sentences(text):
        clauses = _CLAUSE.split(sentence.text)
        for i, clause in enumerate(clauses):
            after = clauses[i + 1] if i + 1 < len(clauses) else ""
            if not clause.strip() or _STOP_ONLY.search(after) or _SWITCH_START.search(after):
                continue
            start = sentence.text.find(clause)
            if switch := _SWITCH.search(clause):
                out.append((sentence, start + switch.end(), clause[switch.end() :]))
            elif not _STOPPED.search(clause):
                out.append((sentence, start, clause))
    return out


def _asserted(sentence: Any, at: int) -> bool:
    return assertion_of(sentence, at, at + 1) not in ("negated", "hypothetical", "family")


def drugs_in_text(text: str, written: list[Medication] = ()) -> list[Medication]:  # type: ignore[assignment]
    """Drugs a free text names as taken, with the name it uses: not negated ('否认'), not in a clause that stops
    them ('已停用'). Formulary drugs by any of their names; a `written` drug the formulary does not know by its
    own name, less its dosage form ('非布司他片' is named as '非布司他')."""
    out: dict[str, Medication] = {}
    for sentence, start, clause in _taken_clauses(text):
        lowered = clause.lower()
        for drug in formulary.ingredients(clause):
            found = [(i, name) for name in drug.names() if (i := lowered.find(name.lower())) >= 0]
            at, name = min(found) if found else (0, drug.name)
            if _asserted(sentence, start + at):
                out.setdefault(
                    drug.name, Medication(drug=clause[at : at + len(name)] or name, drug_class=drug.drug_class)
                )
        for med in written:
            name = _FORM.sub("", med.drug)
            at = clause.find(name) if len(name) >= 2 and formulary.lookup(med.drug) is None else -1
            if at >= 0 and _asserted(sentence, start + at):
                out.setdefault(rp.drug_key(med.drug), Medication(drug=med.drug, drug_class=med.drug_class))
    return list(out.values())


def plan_input(cells: dict[str, Any], m: Mapping, where: str) -> PlanInput:
    """The plan columns of one row (the visit itself is read by `tabular.visit_from_row`)."""
    pin = PlanInput(where=where, column=m.prescription.column if m.prescription else "prescription")
    if m.prescription is not None and (items := _list(cells, m.prescription)) is not None:
        pin.prescription = _medications(items, m.prescription.column, pin)
    if m.current_medications is not None and (items := _list(cells, m.current_medications)) is not None:
        pin.current = _medications(items, m.current_medications.column, pin)
    elif m.medications_from_text:
        pin.from_text = True
        pin.current = drugs_in_text("\n".join(_cell(cells, c) for c in m.medications_from_text), pin.prescription or [])
    pin.labs = _lab_orders(cells, m, pin)
    pin.treatment = text_of(cells, m.plan) if text_columns(m.plan) else ""
    return pin


@dataclasses.dataclass
class Derived:
    visit: Visit
    plan: Plan | None
    problems: list[str]


def patient_plans(rows: list[tuple[Visit, PlanInput]]) -> list[Derived]:
    """A patient's rows, in date order, each with its plan; the list before a visit is its `current`
    medications, else the previous row's prescription."""
    out: list[Derived] = []
    previous: list[Medication] | None = None
    for visit, pin in sorted(rows, key=lambda r: r[0].date):
        problems = list(pin.problems)
        before = pin.current if pin.current is not None else previous
        plan = None
        column, from_text = pin.column, pin.from_text
        if pin.fatal:
            pass  # named in problems
        elif pin.prescription is None or (from_text and not pin.prescription):
            problems.append(f"{pin.where}: {column}: empty medication list; no plan for this record")
        elif before is None:
            problems.append(
                f"{pin.where}: {column}: no medication list before this visit (no current-medications column "
                "and no earlier prescription of the patient); no plan for this record"
            )
        else:
            written = [rp.Written(med, IN_PRESCRIPTION) for med in pin.prescription]
            absent = "drop" if from_text else "stop"
            plan = rp.record_plan(
                medications=rp.medication_actions(before, written, [], absent=absent),
                labs=pin.labs,
                treatment=pin.treatment,
            )
        if pin.prescription is not None and not pin.fatal:
            previous = pin.prescription
        out.append(Derived(visit.model_copy(update={"medications": before or []}), plan, problems))
    return out
