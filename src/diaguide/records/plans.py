"""What the physician did at a visit, read from the records: shared rules of every source.

A record's plan compares the medications written at the visit with the list in force just before it
(docs/records.md, "Medication actions"): a drug written that was not on the list is a `start`, the same
drug at the same dose a `continue`, at another dose an `adjust`; a drug the visit ends is a `stop`.
FHIR bundles (`plans_fhir.py`) and HIS exports (`plans_his.py`) differ only in how they find the two
lists. Every order of a derived plan says how it was derived (`basis`); the plan says `source="record"`.
"""

from __future__ import annotations

import dataclasses
import re

from diaguide.drugs import formulary
from diaguide.records.schema import Medication, MedicationOrder, Plan

# how an order was derived (docs/records.md); the words are the contract the docs and tests use
ORDERED = "written at the visit"
NOT_REWRITTEN = "in force before the visit, not written again"
INFERRED_LABS = "inferred from results"

_MASS = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "ug": 0.001, "µg": 0.001, "μg": 0.001, "毫克": 1.0, "克": 1000.0}
_MASS |= {"微克": 0.001}
_UNITS = {"u": 1.0, "iu": 1.0, "unit": 1.0, "units": 1.0, "单位": 1.0, "国际单位": 1.0, "unt": 1.0}
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zµμ]+|毫克|克|微克|单位|国际单位)?", re.IGNORECASE)
# times a day, from the frequency words prescriptions use (English, Latin abbreviations, Chinese)
_PER_DAY = (
    (re.compile(r"\bqid\b|four times|每日4次|每日四次|一日4次|一日四次|每天4次", re.I), 4.0),
    (re.compile(r"\btid\b|three times|每日3次|每日三次|一日3次|一日三次|每天3次|每天三次", re.I), 3.0),
    (re.compile(r"\bbid\b|twice|每日2次|每日两次|一日2次|一日两次|每天2次|每天两次|早晚", re.I), 2.0),
    (
        re.compile(
            r"\bqd\b|\bqn\b|\bqhs\b|once|daily|nightly|bedtime|每日1次|每日一次|每天1次|每天一次|每晚|睡前", re.I
        ),
        1.0,
    ),
    (re.compile(r"\bweekly\b|每周", re.I), 1 / 7),
)
_PER_PERIOD = re.compile(
    r"(\d+(?:\.\d+)?)\s*per\s*(\d+(?:\.\d+)?)?\s*(d|wk|h)\b", re.I
)  # FHIR timing as fhir_resources writes it


def drug_key(drug: str) -> str:
    """One name per drug, whatever the record called it: the formulary's generic name, else the text lowercased."""
    found = formulary.lookup(drug)
    return found.name if found is not None else " ".join(drug.lower().split())


def _amount(dose: str | None) -> tuple[float, str] | None:
    """(amount, kind) of a dose such as '0.5g', '500 mg', '10 units'; None when it is not one amount."""
    if not dose or "+" in dose or "/" in dose or "-" in dose:
        return None  # two strengths, a combination or a range: compared as text
    m = _AMOUNT.search(dose)
    if m is None:
        return None
    unit = (m[2] or "").lower()
    if unit in _MASS:
        return float(m[1]) * _MASS[unit], "mass"
    if unit in _UNITS:
        return float(m[1]), "units"
    return float(m[1]), unit


def _per_day(frequency: str | None) -> float | None:
    if not frequency:
        return None
    if m := _PER_PERIOD.search(frequency):
        per = float(m[2] or 1) * {"d": 1.0, "wk": 7.0, "h": 1 / 24}[m[3].lower()]
        return float(m[1]) / per
    return next((n for rx, n in _PER_DAY if rx.search(frequency)), None)


def same_dose(a: Medication, b: Medication) -> bool | None:
    """Whether two entries of one drug are the same dose: True, False, or None when a side does not say.

    Doses compare as amounts ('0.5g' is '500 mg'); when both sides give how often, that must match too
    ('0.5g bid' then '0.5g tid' is a change of dose).
    """
    if not a.dose or not b.dose:
        return None
    x, y = _amount(a.dose), _amount(b.dose)
    if x is not None and y is not None:
        same = x[1] == y[1] and abs(x[0] - y[0]) < 1e-6 * max(1.0, x[0])
    else:
        same = re.sub(r"\s+", "", a.dose.lower()) == re.sub(r"\s+", "", b.dose.lower())
    fa, fb = _per_day(a.frequency), _per_day(b.frequency)
    if same and fa is not None and fb is not None:
        same = abs(fa - fb) < 1e-6
    return same


def _order(m: Medication, action: str, basis: str) -> MedicationOrder:
    return MedicationOrder(
        drug=m.drug, drug_class=m.drug_class, action=action, dose=m.dose, frequency=m.frequency, basis=basis
    )


@dataclasses.dataclass
class Written:
    """A medication written at the visit, and how the record says so (for `basis`)."""

    medication: Medication
    basis: str = ORDERED


@dataclasses.dataclass
class Ended:
    """A medication the visit ends, and how the record says so."""

    medication: Medication
    basis: str


def medication_actions(
    before: list[Medication], written: list[Written], ended: list[Ended], absent: str
) -> list[MedicationOrder]:
    """The medication orders of a visit: the written list and the ended drugs against the list before.

    Args:
        before: the medications in force just before the visit.
        written: what the visit wrote (a drug twice: the caller has already named the duplicate).
        ended: drugs the visit ends explicitly (a stopped order, an end date at the visit).
        absent: what a drug on `before` that the visit neither wrote nor ended became: "continue" where a
            visit writes only what changes (FHIR orders), "stop" where it writes the whole regimen (an HIS
            prescription), "drop" (no order) where `before` was read from free text.
    """
    prior = {drug_key(m.drug): m for m in before}
    stopped = {drug_key(e.medication.drug): e for e in ended}
    orders: list[MedicationOrder] = []
    done: set[str] = set()
    for w in written:
        key = drug_key(w.medication.drug)
        if key in done:
            continue
        done.add(key)
        was = prior.get(key)
        if was is None:
            orders.append(_order(w.medication, "start", w.basis))
        elif same_dose(was, w.medication) is False:
            orders.append(_order(w.medication, "adjust", f"{w.basis}; dose before: {was.dose}"))
        else:
            # the dose the patient takes when the visit did not write one
            kept = w.medication if w.medication.dose else was
            orders.append(_order(kept, "continue", w.basis))
    for key, e in stopped.items():
        if key in prior and key not in done:  # a drug ended and written again at one visit is a renewal
            orders.append(_order(prior[key], "stop", e.basis))
            done.add(key)
    for key, m in prior.items():
        if key in done:
            continue
        if absent == "drop":
            continue
        if absent == "stop":
            orders.append(_order(m, "stop", "in force before the visit, not in its prescription"))
        else:
            orders.append(_order(m, "continue", NOT_REWRITTEN))
    return orders


def record_plan(**fields: object) -> Plan:
    """A Plan marked as read from the records."""
    return Plan(source="record", **fields)  # type: ignore[arg-type]


def is_empty(plan: Plan) -> bool:
    """True when a plan says nothing the physician decided: no order, lab, goal or treatment text."""
    return not (plan.medications or plan.labs or plan.hba1c_goal is not None or plan.treatment.strip())
