"""What a visit measures and codes: labs, vitals, ICD-10 diagnoses, and the starting regimen.

Every value is derived from the patient's profile and state so the record is coherent:
creatinine and eGFR satisfy CKD-EPI 2021, the CKD stage code matches eGFR and UACR,
fasting glucose follows HbA1c (ADAG), LDL is lower on a statin, ALT is raised with MASLD.
"""

from __future__ import annotations

import datetime as dt
import random

from diaguide.cohort.catalog import spec
from diaguide.cohort.patients import Med, Profile, State, drug_effect, obese, weight_at
from diaguide.records.schema import Diagnosis, Lab
from diaguide.records.units import ANALYTES


def ckd_epi_2021(creatinine: float, age: int, sex: str) -> float:
    """eGFR (mL/min/1.73m2) from serum creatinine (mg/dL), race-free CKD-EPI 2021 (Inker, NEJM 2021)."""
    female = sex == "female"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    r = creatinine / kappa
    return 142 * min(r, 1) ** alpha * max(r, 1) ** -1.2 * 0.9938**age * (1.012 if female else 1.0)


def creatinine_for(egfr: float, age: int, sex: str) -> float:
    """The creatinine (mg/dL) that CKD-EPI 2021 turns into `egfr` (the equation inverted)."""
    female = sex == "female"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = egfr / (142 * 0.9938**age * (1.012 if female else 1.0))
    return kappa * (ratio ** (1 / alpha) if ratio > 1 else ratio ** (-1 / 1.2))


def ckd_stage(egfr: float, uacr: float) -> str | None:
    """KDIGO G stage, or None when there is no CKD (eGFR >=60 and UACR <30 mg/g)."""
    if egfr >= 60 and uacr < 30:
        return None
    for bound, stage in ((90, "1"), (60, "2"), (45, "3a"), (30, "3b"), (15, "4")):
        if egfr >= bound:
            return stage
    return "5"


STAGE_ICD10 = {"1": "N18.1", "2": "N18.2", "3a": "N18.31", "3b": "N18.32", "4": "N18.4", "5": "N18.5"}


def initial_state(p: Profile, rng: random.Random) -> State:
    """Kidneys, weight, lipids and the regimen the patient arrives on."""
    first = p.dates[0]
    age = p.age(first)
    bmi = rng.uniform(p.obese_bmi() + 0.5, 40) if obese(p, rng) else rng.uniform(20.5, p.obese_bmi() - 0.6)
    if p.ckd:
        g = rng.random()
        egfr = (
            rng.uniform(62, 100)
            if g < 0.45
            else rng.uniform(46, 59)
            if g < 0.75
            else rng.uniform(31, 44)
            if g < 0.9
            else rng.uniform(16, 29)
        )
        uacr = rng.uniform(35, 600) if egfr >= 60 or rng.random() < 0.6 else rng.uniform(8, 28)
    else:
        egfr = max(65.0, min(118.0, 125 - 0.8 * age + rng.gauss(0, 8)))
        uacr = rng.uniform(4, 25)
    state = State(
        raw_a1c=0.0,
        weight_base=bmi * (p.height_cm / 100) ** 2,
        egfr=egfr,
        uacr=uacr,
        ldl_base=rng.uniform(105, 175),
        sbp_base=rng.uniform(134, 156) if p.htn else rng.uniform(108, 128),
    )
    state.meds = _starting_regimen(p, rng, egfr, state.weight_base)
    a1c0 = rng.uniform(6.8, 9.2) if p.base_type == "type1" else min(12.5, max(6.2, rng.gauss(7.9, 1.1)))
    if p.dtype == "pregnancy":
        a1c0 = rng.uniform(6.0, 8.0)
    state.raw_a1c = a1c0 + drug_effect(p, state.meds, weight_at(state), egfr)
    return state


def _pick(rng: random.Random, p: Profile, en: list[str], zh: list[str]) -> str:
    return rng.choice(zh if p.lang == "zh" else en)


def _starting_regimen(p: Profile, rng: random.Random, egfr: float, weight: float) -> dict[str, Med]:
    since = min(p.diagnosed + dt.timedelta(days=rng.randint(20, 200)), p.dates[0] - dt.timedelta(days=14))
    meds: list[Med] = []
    years = (p.dates[0] - p.diagnosed).days / 365.25
    if p.base_type == "type1":
        meds.append(
            Med(
                _pick(rng, p, ["insulin_glargine", "insulin_degludec"], ["insulin_glargine"]),
                units=round(weight * rng.uniform(0.2, 0.3)),
                since=since,
            )
        )
        meds.append(
            Med(
                _pick(rng, p, ["insulin_lispro", "insulin_aspart"], ["insulin_aspart"]),
                units=round(weight * rng.uniform(0.2, 0.3)),
                since=since,
            )
        )
    elif years >= 0.5:
        if not p.metformin_intolerant and egfr >= 25:  # some stay on metformin as eGFR falls
            meds.append(Med("metformin", step=rng.choice([1, 2, 2]), since=since))
        if years > 4 and rng.random() < 0.7:
            second = _pick(
                rng,
                p,
                ["glimepiride", "glipizide", "sitagliptin", "empagliflozin", "semaglutide", "glimepiride"],
                ["gliclazide", "glimepiride", "acarbose", "acarbose", "sitagliptin", "dapagliflozin"],
            )
            meds.append(Med(second, step=rng.randint(0, 1), since=since + dt.timedelta(days=365 * 3)))
        if years > 10 and rng.random() < 0.4:
            key = "insulin_aspart30" if p.lang == "zh" and rng.random() < 0.5 else "insulin_glargine"
            meds.append(
                Med(key, units=round(weight * rng.uniform(0.15, 0.35)), since=since + dt.timedelta(days=365 * 8))
            )
    cardio_since = min(since, p.dates[0] - dt.timedelta(days=30)) - dt.timedelta(days=rng.randint(0, 900))
    if p.htn:
        if p.pregnant(p.dates[0]):
            # most arrive already switched to a pregnancy-safe drug; a few still on an ACE inhibitor
            meds.append(Med("lisinopril" if rng.random() < 0.25 else "labetalol", since=cardio_since))
        else:
            meds.append(
                Med(
                    _pick(rng, p, ["lisinopril", "losartan"], ["benazepril", "valsartan"]),
                    step=rng.randint(0, 1),
                    since=cardio_since,
                )
            )
            if rng.random() < 0.35:
                meds.append(Med("amlodipine", since=cardio_since))
    age = p.age(p.dates[0])
    if (p.dyslip or p.ascvd or age >= 40) and not p.pregnant(p.dates[0]) and rng.random() < 0.7:
        meds.append(
            Med(_pick(rng, p, ["atorvastatin", "rosuvastatin"], ["atorvastatin", "rosuvastatin"]), since=cardio_since)
        )
    if p.ascvd:
        meds.append(Med("aspirin", since=cardio_since))
    if p.hf:
        meds.append(Med("metoprolol", since=cardio_since))
        if rng.random() < 0.5:
            meds.append(Med("furosemide", since=cardio_since))
    return {m.key: m for m in meds}


def _lab(key: str, value: float, on: dt.date, digits: int = 1) -> Lab:
    a = ANALYTES[key]
    return Lab(loinc=a.loincs[0], name=a.name, value=round(value, digits), unit=a.unit, date=on)


def measure(p: Profile, state: State, on: dt.date, rng: random.Random) -> tuple[list[Lab], float]:
    """The labs drawn for a visit (canonical units) and the HbA1c they show."""
    age = p.age(on)
    weight = weight_at(state)
    a1c = max(5.3, state.raw_a1c - drug_effect(p, state.meds, weight, state.egfr) + rng.gauss(0, 0.12))
    a1c = round(a1c, 1)
    eag = 28.7 * a1c - 46.7  # ADAG: estimated average glucose (mg/dL) from HbA1c
    labs = [_lab("hba1c", a1c, on), _lab("fasting_glucose", eag * rng.uniform(0.8, 1.05), on, 0)]
    creat = round(creatinine_for(state.egfr, age, p.sex), 2)
    egfr = round(ckd_epi_2021(creat, age, p.sex))
    labs += [_lab("creatinine", creat, on, 2), _lab("egfr", egfr, on, 0)]
    state.egfr_seen = egfr
    yearly_uacr = state.last_uacr is None or (on - state.last_uacr).days > 300
    if p.ckd or yearly_uacr:
        labs.append(_lab("uacr", state.uacr, on, 0))
        state.uacr_seen = round(state.uacr)
        state.last_uacr = on
    if state.last_lipids is None or (on - state.last_lipids).days > 300:
        on_statin = any(spec(m.key).drug_class == "statin" for m in state.meds.values())
        ldl = state.ldl_base * (0.55 if on_statin else 1.0) * rng.uniform(0.9, 1.1)
        hdl, tg = rng.uniform(34, 62), rng.uniform(90, 260) * (1.2 if p.masld else 1.0)
        labs += [
            _lab("ldl", ldl, on, 0),
            _lab("hdl", hdl, on, 0),
            _lab("triglycerides", tg, on, 0),
            _lab("total_cholesterol", ldl + hdl + tg / 5, on, 0),
        ]  # Friedewald, reversed
        state.last_lipids = on
    labs.append(_lab("alt", rng.uniform(42, 95) if p.masld else rng.uniform(12, 36), on, 0))
    if p.ckd and state.egfr < 60:
        labs.append(_lab("potassium", rng.uniform(4.0, 5.3), on, 1))
    if "metformin" in state.meds and rng.random() < 0.2:
        labs.append(_lab("b12", rng.uniform(180, 650), on, 0))
    return labs, a1c


def vitals(p: Profile, state: State, rng: random.Random) -> dict[str, float]:
    weight = round(weight_at(state) + rng.gauss(0, 0.6), 1)
    bp_drugs = sum(
        spec(m.key).drug_class in ("acei", "arb") or m.key in ("amlodipine", "labetalol", "nifedipine")
        for m in state.meds.values()
    )
    return {
        "systolic_bp": round(state.sbp_base - 5 * bp_drugs + rng.gauss(0, 5)),
        "diastolic_bp": round(72 + (state.sbp_base - 120) * 0.3 + rng.gauss(0, 4)),
        "heart_rate": round(rng.uniform(62, 88)),
        "weight_kg": weight,
        "bmi": round(weight / (p.height_cm / 100) ** 2, 1),
    }


def _dx(code: str, display: str) -> Diagnosis:
    return Diagnosis(system="icd10", code=code, display=display, icd10=code)


def diagnoses(p: Profile, state: State, on: dt.date, a1c: float, bmi: float) -> list[Diagnosis]:
    """ICD-10-CM codes for the visit, in the order a physician lists them."""
    t = "E10" if p.base_type == "type1" else "E11"
    name = "Type 1 diabetes mellitus" if t == "E10" else "Type 2 diabetes mellitus"
    stage = ckd_stage(state.egfr_seen, state.uacr_seen)
    out: list[Diagnosis] = []
    if p.pregnant(on):
        weeks = (on - p.pregnancy_start).days // 7  # type: ignore[operator]
        tri = "1" if weeks < 14 else "2" if weeks < 28 else "3"
        o = "O24.01" if t == "E10" else "O24.11"
        out.append(_dx(o + tri, f"Pre-existing {name.lower()} in pregnancy, trimester {tri}"))
    if stage:
        out.append(_dx(f"{t}.22", f"{name} with diabetic chronic kidney disease"))
    if p.retinopathy:
        out.append(_dx(f"{t}.319", f"{name} with unspecified diabetic retinopathy without macular edema"))
    if p.neuropathy:
        out.append(_dx(f"{t}.42", f"{name} with diabetic polyneuropathy"))
    if state.hypo:
        out.append(_dx(f"{t}.649", f"{name} with hypoglycemia without coma"))
    if a1c >= 9.0:
        out.append(_dx(f"{t}.65", f"{name} with hyperglycemia"))
    if not out or (p.pregnant(on) and len(out) == 1):
        out.append(_dx(f"{t}.9", f"{name} without complications"))
    if stage:
        out.append(_dx(STAGE_ICD10[stage], f"Chronic kidney disease, stage {stage}"))
    if p.htn:
        code, disp = (
            ("I13.0", "Hypertensive heart and chronic kidney disease with heart failure")
            if p.hf and stage
            else ("I11.0", "Hypertensive heart disease with heart failure")
            if p.hf
            else ("I12.9", "Hypertensive chronic kidney disease")
            if stage
            else ("I10", "Essential (primary) hypertension")
        )
        if p.pregnant(on):
            code, disp = "O10.019", "Pre-existing essential hypertension complicating pregnancy"
        out.append(_dx(code, disp))
    if p.hf:
        out.append(_dx("I50.9", "Heart failure, unspecified"))
    if p.ascvd == "I25.10":
        out.append(_dx("I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris"))
    elif p.ascvd:
        out.append(_dx("I69.30", "Unspecified sequelae of cerebral infarction"))
    if p.dyslip:
        out.append(_dx("E78.5", "Hyperlipidemia, unspecified"))
    if bmi >= p.obese_bmi():
        out.append(_dx("E66.9", "Obesity, unspecified"))
    if p.masld:
        out.append(_dx("K76.0", "Fatty (change of) liver, not elsewhere classified"))
    if p.frail:
        out.append(_dx("R54", "Age-related physical debility"))
    for substance, _cls, _r in p.allergies:
        if substance.startswith("sulfonamide"):
            out.append(_dx("Z88.2", "Allergy status to sulfonamides"))
        elif substance == "penicillin":
            out.append(_dx("Z88.0", "Allergy status to penicillin"))
    if any(spec(m.key).is_insulin for m in state.meds.values()):
        out.append(_dx("Z79.4", "Long term (current) use of insulin"))
    return out


def hba1c_of(labs: list[Lab]) -> float:
    return next(lab.value for lab in labs if lab.loinc == ANALYTES["hba1c"].loincs[0])
