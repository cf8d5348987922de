"""Synthetic patients: who they are (a fixed profile) and how their diabetes moves over time.

A patient's untreated glycaemia (`raw_a1c`) drifts upward as beta-cell function declines
(~0.1-0.2 % HbA1c a year on unchanged therapy, UKPDS 16); the measured HbA1c is that minus
the effect of what they take, so a plan that intensifies therapy lowers the next HbA1c and
stopping a drug raises it. Rates of traits are in `data/prevalence.yaml`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from diaguide.cohort.catalog import rate, spec
from diaguide.drugs import classes as drug_classes

# HbA1c lowering (% points) of a drug class at full dose as monotherapy, and weight change (kg) while on it: the
# `cohort` effects of drugs/classes.yaml (ADA Standards 2025 §9 Table 9.2; Sherifali et al., Diabetes Care 2010)
POTENCY = {c: info.hba1c_lowering for c, info in drug_classes.all_classes().items() if info.hba1c_lowering is not None}
WEIGHT_EFFECT = {c: info.weight_kg for c, info in drug_classes.all_classes().items() if info.weight_kg}
REFERENCE_DATE = dt.date(2025, 6, 30)  # the last possible visit; no clock is ever read


@dataclasses.dataclass
class Med:
    key: str
    step: int = 0
    units: int | None = None
    since: dt.date | None = None


@dataclasses.dataclass
class Profile:
    """What stays fixed for a patient across visits."""

    patient_id: str
    lang: str
    zh_names: bool  # writes Chinese drug names in the medication list
    dtype: str  # type2 | type1 | pregnancy (pre-existing diabetes in pregnancy)
    base_type: str  # type2 | type1: the diabetes itself, also for pregnancy
    sex: str
    birth: dt.date
    height_cm: float
    diagnosed: dt.date
    htn: bool = False
    htn_since: int = 0  # year hypertension was diagnosed
    dyslip: bool = False
    ckd: bool = False
    ascvd: str | None = None  # I25.10 coronary disease | I69.30 old stroke
    hf: bool = False
    masld: bool = False
    retinopathy: bool = False
    neuropathy: bool = False
    frail: bool = False
    metformin_intolerant: bool = False
    allergies: list[tuple[str, str | None, str]] = dataclasses.field(default_factory=list)
    pregnancy_end: dt.date | None = None  # expected delivery; pregnant at visits before it
    pregnancy_start: dt.date | None = None
    adherence: float = 1.0
    dates: list[dt.date] = dataclasses.field(default_factory=list)
    style: str = ""

    def age(self, on: dt.date) -> int:
        return on.year - self.birth.year - ((on.month, on.day) < (self.birth.month, self.birth.day))

    def pregnant(self, on: dt.date) -> bool:
        return self.pregnancy_start is not None and self.pregnancy_start <= on < self.pregnancy_end  # type: ignore[operator]

    def obese_bmi(self) -> float:
        return 28.0 if self.lang == "zh" else 30.0  # Chinese criterion BMI >=28 (WGOC / CDS 2020)


@dataclasses.dataclass
class State:
    """What changes from visit to visit."""

    raw_a1c: float  # HbA1c the patient would have on no glucose-lowering drug
    weight_base: float
    egfr: float
    uacr: float
    ldl_base: float
    sbp_base: float
    meds: dict[str, Med] = dataclasses.field(default_factory=dict)
    last_uacr: dt.date | None = None
    last_lipids: dt.date | None = None
    prev_a1c: float | None = None
    hypo: bool = False
    egfr_seen: float = 90.0  # eGFR and UACR as last reported (rounded), which the codes follow
    uacr_seen: float = 10.0


def _chance(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def make_profile(rng: random.Random, patient_id: str, lang: str) -> Profile:
    """A patient with coherent traits (pregnant patients are women 18-45, type 1 skews young)."""
    u = rng.random()
    dtype = "type1" if u < rate("diabetes_type", "type1") else "type2"
    if rate("diabetes_type", "type1") <= u < rate("diabetes_type", "type1") + rate("diabetes_type", "pregnancy"):
        dtype = "pregnancy"
    base_type = dtype if dtype != "pregnancy" else ("type1" if _chance(rng, 0.25) else "type2")
    if dtype == "pregnancy":
        sex, age = "female", rng.randint(22, 42)
    else:
        sex = "female" if _chance(rng, 0.47) else "male"
        if dtype == "type1":
            age = rng.randint(18, 62)
        elif _chance(rng, rate("older_adult") / 0.91):  # older adults are all type 2 here
            age = min(rng.randint(65, 78) + (rng.randint(0, 10) if _chance(rng, 0.3) else 0), 90)
        else:
            age = rng.randint(32, 64)
    n_visits = rng.randint(2, 6)
    gaps = [rng.randint(90, 183) for _ in range(n_visits - 1)]  # 3-6 months apart
    last = REFERENCE_DATE - dt.timedelta(days=rng.randint(0, 365))
    first = last - dt.timedelta(days=sum(gaps))
    dates = [first]
    for g in gaps:
        dates.append(dates[-1] + dt.timedelta(days=g))
    birth = first - dt.timedelta(days=age * 365 + rng.randint(0, 364))
    max_years = max(1, age - (5 if base_type == "type1" else 25))
    years = rng.choice([0, 1, 2]) if _chance(rng, 0.12) else rng.randint(1, min(max_years, 25))
    diagnosed = first - dt.timedelta(days=years * 365 + rng.randint(30, 300))
    height = rng.gauss(170 if sex == "male" else 158, 6) + (3 if lang == "en" else 0)
    p = Profile(
        patient_id,
        lang,
        lang == "zh" and _chance(rng, 0.6),
        dtype,
        base_type,
        sex,
        birth,
        round(height, 1),
        diagnosed,
        dates=dates,
        adherence=round(rng.uniform(0.7, 1.0), 2),
    )
    _add_comorbidities(rng, p, age)
    if dtype == "pregnancy":
        p.pregnancy_start = first - dt.timedelta(days=rng.randint(35, 150))
        p.pregnancy_end = p.pregnancy_start + dt.timedelta(days=273)
    return p


def _add_comorbidities(rng: random.Random, p: Profile, age: int) -> None:
    # younger, type 1 and pregnant patients carry far less cardiorenal disease
    scale = 1.0 if p.dtype == "type2" else 0.25
    older = 1.3 if age >= 65 else (0.7 if age < 50 else 1.0)

    def has(name: str, extra: float = 1.0) -> bool:
        return _chance(rng, min(0.95, rate("comorbidities", name) * scale * extra))

    p.htn = has("hypertension", older)
    p.htn_since = p.dates[0].year - rng.randint(1, 15)
    p.dyslip = has("dyslipidaemia")
    p.ckd = has("ckd", older)
    if has("ascvd", older * (0.4 if age < 45 else 1.0)):
        p.ascvd = "I25.10" if _chance(rng, 0.8) else "I69.30"
    p.hf = has("heart_failure", older * (2.0 if p.ascvd else 0.6))
    p.masld = has("masld")
    p.retinopathy = has("retinopathy", 1.5 if p.base_type == "type1" else 1.0)
    p.neuropathy = has("neuropathy", older)
    p.frail = age >= 65 and _chance(rng, rate("frail_if_older") * (1.6 if age >= 80 else 1.0))
    p.metformin_intolerant = p.base_type == "type2" and _chance(rng, rate("allergies", "metformin_intolerance"))
    if _chance(rng, rate("allergies", "sulfonamide")):
        p.allergies.append(("sulfonamide antibiotics", None, "rash"))
    if _chance(rng, rate("allergies", "penicillin")):
        p.allergies.append(("penicillin", None, "urticaria"))
    if p.metformin_intolerant:
        p.allergies.append(("metformin", "metformin", "GI intolerance"))


def obese(p: Profile, rng: random.Random) -> bool:
    key = "obesity_zh" if p.lang == "zh" else "obesity_en"
    return _chance(rng, rate("comorbidities", key) * (0.5 if p.base_type == "type1" else 1.0))


def drug_effect(p: Profile, meds: dict[str, Med], weight: float, egfr: float) -> float:
    """HbA1c lowering (% points) of the current regimen, with diminishing returns for add-ons."""
    effects = []
    for m in meds.values():
        s = spec(m.key)
        potency = POTENCY.get(s.drug_class)
        if potency is None:
            continue
        if s.is_insulin:
            per_kg = drug_classes.get(s.drug_class).full_effect_u_per_kg
            assert per_kg is not None  # catalog.drugs(): an insulin product has an insulin class
            frac = min(1.3, (m.units or 10) / (per_kg * weight))
            if p.base_type == "type1":
                potency *= 1.6  # insulin replaces absent secretion
        else:
            frac = ((m.step + 1) / (s.top_step + 1)) ** 0.5
        if s.drug_class == "sglt2i" and egfr < 45:
            frac *= 0.4  # glycosuric effect fades with GFR (ADA Standards 2025 §11)
        effects.append(potency * frac)
    effects.sort(reverse=True)
    return p.adherence * sum(e * w for e, w in zip(effects, (1.0, 0.8, 0.65, 0.5, 0.4, 0.3, 0.3), strict=False))


def weight_at(state: State) -> float:
    shift = sum(WEIGHT_EFFECT.get(spec(m.key).drug_class, 0.0) for m in state.meds.values())
    return state.weight_base + shift


def advance(p: Profile, state: State, rng: random.Random, days: int) -> None:
    """Move the patient forward `days`: glycaemia drifts up, weight and kidneys follow the regimen."""
    years = days / 365.25
    state.raw_a1c = min(15.5, state.raw_a1c + years * rng.uniform(0.1, 0.5) + rng.gauss(0, 0.15))
    state.weight_base += years * rng.uniform(-0.5, 1.0)
    on_sglt2 = any(spec(m.key).drug_class == "sglt2i" for m in state.meds.values())
    if p.ckd:
        # eGFR loss ~2-4 mL/min/yr in diabetic CKD, roughly halved on an SGLT2i (EMPA-KIDNEY, DAPA-CKD)
        loss = rng.uniform(1.5, 4.0) * (0.5 if on_sglt2 else 1.0)
        state.egfr = max(12.0, state.egfr - loss * years)
        state.uacr = max(30.0 if state.egfr >= 60 else 3.0, state.uacr * rng.uniform(0.8, 1.25))
    else:
        state.egfr = max(61.0, state.egfr - rng.uniform(0.5, 1.5) * years)
        state.uacr = min(28.0, max(3.0, state.uacr * rng.uniform(0.8, 1.2)))
