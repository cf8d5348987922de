"""`diaguide cohort`: synthetic outpatients with longitudinal visits and what their physician did.

Each patient draws from their own `random.Random` seeded by (seed, index), so patient 7 is
the same whether the cohort has 10 or 1000 patients, and the same seed gives the same bytes.
Dates are placed before a fixed reference date; the clock is never read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import sys
from pathlib import Path

from diaguide.cohort.catalog import spec
from diaguide.cohort.clinical import diagnoses, initial_state, measure, vitals
from diaguide.cohort.decision import Context, Decision
from diaguide.cohort.deviations import deviation_chance, maybe_deviate
from diaguide.cohort.notes import chief_complaint, past_history, present_illness, symptoms
from diaguide.cohort.patients import Med, Profile, State, advance, make_profile
from diaguide.cohort.planwriter import write_plan
from diaguide.cohort.styles import STYLE_WEIGHTS, STYLES
from diaguide.drugs.classes import INSULIN_CLASSES
from diaguide.errors import InputError
from diaguide.records.history import attach_history
from diaguide.records.schema import Allergy, CohortRecord, Lab, Medication, Patient, Visit, Vitals

LANGS = ("en", "zh", "mixed")
LAB_WINDOW = 365  # days a result still describes the patient (as records.fhir reads bundles)


@dataclasses.dataclass
class Generated:
    """A cohort record with what the generator knows beyond it (for summary and report)."""

    record: CohortRecord
    profile: Profile
    deviation: str | None
    deviation_chance: float  # the probability this visit had of a deviation


def generate_cohort(patients: int, seed: int, lang: str) -> list[CohortRecord]:
    """Records of `patients` synthetic outpatients (all their visits, in date order per patient).

    Args:
        patients: number of patients (>=1).
        seed: any integer; the same seed gives the same records.
        lang: "en", "zh" or "mixed" (each patient en or zh with equal chance).
    """
    return [g.record for g in build_cohort(patients, seed, lang)]


def build_cohort(patients: int, seed: int, lang: str) -> list[Generated]:
    if lang not in LANGS:
        raise InputError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}", field="lang")
    if patients < 1:
        raise InputError(f"need at least 1 patient, got {patients}", field="patients")
    out: list[Generated] = []
    for index in range(patients):
        out += _patient(index, seed, lang)
    return out


def _patient(index: int, seed: int, lang_mode: str) -> list[Generated]:
    rng = random.Random(f"diaguide-cohort:{seed}:{index}")  # str seeds hash with SHA-512: stable across runs
    lang = lang_mode if lang_mode != "mixed" else rng.choice(["en", "zh"])
    profile = make_profile(rng, f"S{seed}-P{index + 1:05d}", lang)
    weights = STYLE_WEIGHTS[lang]
    profile.style = rng.choices(list(weights), weights=list(weights.values()))[0]
    state = initial_state(profile, rng)
    visits: list[Visit] = []
    plans, deviations, chances = [], [], []
    results: dict[str, Lab] = {}  # latest result per LOINC: a visit shows the last year's labs
    for k, date in enumerate(profile.dates):
        if k:
            advance(profile, state, rng, (date - profile.dates[k - 1]).days)
        visit, ctx = _visit(profile, state, date, k, rng)
        today = {lab.loinc for lab in visit.labs}
        earlier = [lab for code, lab in results.items() if code not in today and (date - lab.date).days <= LAB_WINDOW]
        results.update({lab.loinc: lab for lab in visit.labs})
        visit.labs = visit.labs + earlier
        decision = STYLES[profile.style](ctx)
        chances.append(deviation_chance(ctx, decision))
        deviations.append(maybe_deviate(ctx, decision, rng))
        plans.append(write_plan(ctx, decision))
        visits.append(visit)
        _apply(state, decision, date)
        state.prev_a1c = ctx.a1c
    visits = _with_history(visits)
    return [
        Generated(CohortRecord(visit=v, plan=pl, style=profile.style), profile, dev, chance)
        for v, pl, dev, chance in zip(visits, plans, deviations, chances, strict=True)
    ]


def _hypo_chance(p: Profile, state: State, age: int) -> float:
    classes = {spec(k).drug_class for k in state.meds}
    if p.base_type == "type1":
        return 0.2
    if not classes & {"sulfonylurea", "glinide", *INSULIN_CLASSES}:
        return 0.0
    # older age, frailty and low eGFR raise sulfonylurea/insulin hypoglycaemia (ADA §6, §13)
    return 0.05 * (2.0 if age >= 65 else 1.0) * (1.5 if p.frail else 1.0) * (1.5 if state.egfr < 30 else 1.0)


def _visit(p: Profile, state: State, date: dt.date, k: int, rng: random.Random) -> tuple[Visit, Context]:
    age = p.age(date)
    state.hypo = rng.random() < _hypo_chance(p, state, age)
    labs, a1c = measure(p, state, date, rng)
    vit = vitals(p, state, rng)
    ldl = next((lab.value for lab in labs if lab.loinc == "13457-7"), None)
    ctx = Context(
        p,
        state,
        date,
        age,
        a1c,
        state.prev_a1c,
        state.egfr_seen,
        state.uacr_seen,
        vit["bmi"],
        vit["weight_kg"],
        p.pregnant(date),
        state.hypo,
        ldl,
    )
    found = symptoms(ctx, rng)
    lang = "zh" if ctx.zh else "en"
    meds = [
        Medication(
            drug=spec(m.key).label(lang, p.zh_names),
            drug_class=spec(m.key).drug_class,
            dose=spec(m.key).dose(m.step, m.units, lang)[0],
            frequency=spec(m.key).dose(m.step, m.units, lang)[1],
            since=m.since,
        )
        for m in state.meds.values()
    ]
    visit = Visit(
        visit_id=f"{p.patient_id}-V{k + 1}",
        patient_id=p.patient_id,
        date=date,
        patient=Patient(
            age=age, sex=p.sex, height_cm=p.height_cm, weight_kg=vit["weight_kg"], bmi=vit["bmi"], pregnant=ctx.pregnant
        ),
        chief_complaint=chief_complaint(ctx, found, rng),
        present_illness=present_illness(ctx, found, rng),
        past_history=past_history(ctx, rng),
        allergies=[Allergy(substance=s, drug_class=c, reaction=r) for s, c, r in p.allergies],
        diagnoses=diagnoses(p, state, date, a1c, vit["bmi"]),
        vitals=Vitals(**vit),
        labs=labs,
        medications=meds,
        language=lang,
    )
    return visit, ctx


def _apply(state: State, d: Decision, date: dt.date) -> None:
    """The regimen the patient leaves with becomes the one they arrive on next time."""
    for o in d.orders.values():
        if o.action == "stop":
            state.meds.pop(o.key, None)
        elif o.action == "start" or o.key not in state.meds:
            # an order takes effect the day after the visit: the visit shows what the patient came in on
            state.meds[o.key] = Med(o.key, o.step, o.units, date + dt.timedelta(days=1))
        elif (o.step, o.units) != (state.meds[o.key].step, state.meds[o.key].units):
            # `since` dates the current regimen: a new dose is a new order
            state.meds[o.key] = Med(o.key, o.step, o.units, date + dt.timedelta(days=1))


def _with_history(visits: list[Visit]) -> list[Visit]:
    """Earlier visits summarised into each visit's `history` (records.history)."""
    return attach_history(visits)


def cohort_command(patients: int, seed: int, lang: str, out: str, fhir: bool = False, agreement: bool = True) -> int:
    """`diaguide cohort`: write visits.jsonl, summary.json, optionally FHIR bundles, and agreement.json.

    `agreement` runs the guideline engine and safety checker over every visit (the slow part:
    about 0.1 s a visit on this machine); tests of the generator turn it off.
    """
    cohort = build_cohort(patients, seed, lang)
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder: {exc.strerror}", source=out, field="out") from exc
    with open(folder / "visits.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for g in cohort:
            line = g.record.model_dump(mode="json")
            line["deviation"] = g.deviation
            fh.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    from diaguide.cohort.report import summarise

    _write_json(folder / "summary.json", summarise(cohort, seed=seed, lang=lang))
    if fhir:
        from diaguide.cohort.fhir_export import write_bundles

        write_bundles([g.record for g in cohort], folder / "fhir")
    from diaguide.cohort.report import agreement_report

    report = agreement_report(cohort) if agreement else None
    if report is not None:
        _write_json(folder / "agreement.json", report)
    print(f"cohort: {patients} patients, {len(cohort)} visits -> {folder}", file=sys.stderr)
    return 0


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")


__all__ = ["generate_cohort", "cohort_command", "build_cohort", "Generated"]
