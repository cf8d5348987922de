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

from diaguide.knowledge import formulary
from diaguide.notes.assertion import assertion_of, sentences
from diaguide.records import plans as rp
from diaguide.records.mapping import ListColumn, Mapping, text_columns
from diaguide.records.schema import LabOrder, Medication, Plan, Visit
from diaguide.records.tabular import _cell, _items, parse_medication, text_of
from diaguide.records.units import analyte_for, canonical_loinc

IN_PRESCRIPTION = "in this visit's prescription"
_LOINC = re.compile(r"^\d{1,7}-\d$")
_NAME_CHARS = re.compile(r"[A-Za-z\u3400-\u9fff]")
# a clause that says a drug was stopped or switched away from: its drugs are not on the list before
_STOPPED = re.compile(r"停用|停药|已停|自行停|停服|改为|换用|stopped|discontinued|switched from", re.IGNORECASE)
_CLAUSE = re.compile(r"[。；;，,\n]")


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


def drugs_in_text(text: str) -> list[Medication]:
    """Formulary drugs a free text names as taken: not negated ('否认', 'no'), not in a clause that stops them."""
    out: dict[str, Medication] = {}
    for sentence in sentences(text):
        for clause in _CLAUSE.split(sentence.text):
            if not clause.strip() or _STOPPED.search(clause):
                continue
            start = sentence.text.find(clause)
            for drug in formulary.ingredients(clause):
                at = min((i for name in drug.names() if (i := clause.lower().find(name.lower())) >= 0), default=0)
                where = start + at
                if assertion_of(sentence, where, where + 1) in ("negated", "hypothetical", "family"):
                    continue
                out.setdefault(drug.name, Medication(drug=drug.name, drug_class=drug.drug_class))
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
        pin.current = drugs_in_text("\n".join(_cell(cells, c) for c in m.medications_from_text))
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
