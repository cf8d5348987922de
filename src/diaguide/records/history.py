"""A patient's earlier visits, condensed into `Visit.history`.

The single-visit view is what made the original hospital system miss treatment goals: it could
not see that HbA1c had been rising for a year on the same two drugs, or that an SGLT2 inhibitor
was stopped last spring. Each summary keeps the numbers a decision turns on (HbA1c, glucose,
eGFR, UACR, LDL, weight, blood pressure), the ICD-10 diagnoses, the medications, and `events`:
what changed since the visit before it ("started sglt2i", "stopped sulfonylurea",
"metformin dose 500 mg -> 1000 mg", "new diagnosis N18.31", "hypoglycaemia").
"""

from __future__ import annotations

from diaguide.records import units
from diaguide.records.schema import Medication, Visit, VisitSummary

# ICD-10 codes of hypoglycaemia: E16.0-E16.2, and diabetes "with hypoglycemia" E08-E13 .64x.
_HYPO_PREFIXES = ("E16.0", "E16.1", "E16.2", "E10.64", "E11.64", "E13.64", "E09.64", "E08.64")


def _lab(visit: Visit, loincs: tuple[str, ...]) -> float | None:
    lab = visit.latest_lab(*loincs)
    return lab.value if lab is not None else None


def summarise(visit: Visit) -> VisitSummary:
    """Condense one visit to what a later decision needs (events are filled by `attach_history`)."""
    events = ["hypoglycaemia"] if visit.has_diagnosis(*_HYPO_PREFIXES) else []
    return VisitSummary(
        visit_id=visit.visit_id,
        date=visit.date,
        hba1c=_lab(visit, units.HBA1C),
        fasting_glucose=_lab(visit, units.FASTING_GLUCOSE),
        egfr=_lab(visit, units.EGFR),
        uacr=_lab(visit, units.UACR),
        ldl=_lab(visit, units.LDL),
        weight_kg=visit.patient.weight_kg or visit.vitals.weight_kg,
        systolic_bp=visit.vitals.systolic_bp,
        diagnoses=list(dict.fromkeys(visit.icd10_codes())),
        medications=[m.model_copy() for m in visit.medications],
        events=events,
        chief_complaint=visit.chief_complaint or None,
    )


def _label(m: Medication) -> str:
    # Classes are the vocabulary the engines speak; a drug outside them is named.
    return m.drug_class if m.drug_class != "other" else m.drug


def changes(before: VisitSummary | Visit, after: VisitSummary | Visit) -> list[str]:
    """Medication and diagnosis changes from one visit to the next, in words."""
    events: list[str] = []
    old = {_label(m): m for m in before.medications}
    new = {_label(m): m for m in after.medications}
    events += [f"started {k}" for k in new if k not in old]
    events += [f"stopped {k}" for k in old if k not in new]
    for k in [k for k in new if k in old]:  # list, not a set: event order must not depend on hash seed
        a, b = old[k], new[k]
        if a.drug == b.drug and a.dose and b.dose and a.dose != b.dose:
            events.append(f"{b.drug} dose {a.dose} -> {b.dose}")
        elif a.drug != b.drug:
            events.append(f"switched {a.drug} -> {b.drug}")
    old_dx = set(before.diagnoses if isinstance(before, VisitSummary) else before.icd10_codes())
    new_dx = after.diagnoses if isinstance(after, VisitSummary) else after.icd10_codes()
    events += [f"new diagnosis {c}" for c in dict.fromkeys(new_dx) if c not in old_dx]
    return events


def attach_history(visits: list[Visit], *, limit: int | None = None) -> list[Visit]:
    """Give each visit the summaries of the same patient's earlier visits, oldest first.

    Args:
        visits: visits (normally of one patient; several patients are kept apart by `patient_id`).
        limit: keep only the most recent `limit` summaries per visit (None: all).

    Returns:
        New Visit objects sorted by (patient, date); the inputs are not modified.
    """
    out: list[Visit] = []
    by_patient: dict[str, list[Visit]] = {}
    for v in visits:
        by_patient.setdefault(v.patient_id, []).append(v)
    for group in by_patient.values():
        group = sorted(group, key=lambda v: v.date)
        summaries: list[VisitSummary] = []
        for i, v in enumerate(group):
            earlier = [s for s in summaries if s.date <= v.date]
            if limit is not None:
                earlier = earlier[-limit:] if limit > 0 else []
            out.append(v.model_copy(update={"history": earlier}))
            s = summarise(v)
            if i > 0:
                s.events = changes(summaries[-1], s) + s.events
            summaries.append(s)
    return out
