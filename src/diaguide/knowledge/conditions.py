"""Patient facts a guideline rule needs, derived from one Visit.

Codes (ICD-10, SNOMED) and free text (English and Chinese) are both read, because HIS
exports often carry the diagnosis only in the physician's note. The code lists and text
patterns live in guideline.yaml (`conditions`), each with its source; so do the region
thresholds (`regions`), which this module also loads for the other engines.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import datetime as dt
import functools
import math
import re
from collections.abc import Iterator
from typing import Any

from diaguide import clinical_data
from diaguide.drugs.formulary import drug_class_of
from diaguide.errors import ConfigError
from diaguide.knowledge import text_derive, text_facts
from diaguide.knowledge.text_match import mentions
from diaguide.notes import NoteFacts
from diaguide.records import units
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Evidence, Medication, Visit

GUIDELINE_YAML = clinical_data.path("knowledge/guideline.yaml")
REGIONS = ("ada", "cds")
# libyaml's parser when PyYAML was built with it: guideline.yaml parses ~8x faster (0.15 -> 0.02 s)
__all__ = [
    "Facts",
    "counts_for_patient",
    "derive",
    "has_condition",
    "has_condition_spec",
    "mentions",
    "knowledge",
    "note_facts",
    "threshold",
]


@functools.cache
def knowledge() -> dict[str, Any]:
    """guideline.yaml, parsed once."""
    return clinical_data.read(GUIDELINE_YAML)


@functools.cache
def region_config(region: str = "ada") -> dict[str, Any]:
    """The region's settings with inherited entries filled in (`cds` overrides `ada`)."""
    regions = knowledge()["regions"]
    if region not in regions:
        raise ConfigError(f"unknown region {region!r}; known: {', '.join(regions)}", field="region")
    own = regions[region]
    if "inherits" not in own:
        return own
    merged = copy.deepcopy(region_config(own["inherits"]))
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def threshold(region: str, name: str) -> Any:
    """A threshold value of the region (`None` where the region has no such rule)."""
    return region_config(region)["thresholds"][name]["value"]


def threshold_source(region: str, name: str) -> str:
    return region_config(region)["thresholds"][name]["source"]


@dataclasses.dataclass
class Facts:
    """What the rules need to know about a patient at one visit. Lab values in canonical units."""

    region: str
    language: str
    age: int | None
    sex: str
    bmi: float | None
    weight_kg: float | None
    diabetes_type: str | None  # "1" | "2" | None (unknown type)
    # diabetes | unconfirmed (diagnostic labs or glucose-lowering drugs, no diagnosis) | prediabetes | none
    diabetes_status: str
    prior_gdm: bool  # gestational diabetes in an earlier pregnancy
    pregnant: bool
    hba1c: float | None
    hba1c_date: dt.date | None
    fpg: float | None
    glucose: float | None  # highest glucose of the visit, fasting or random
    egfr: float | None
    egfr_estimated: bool  # computed here from creatinine (CKD-EPI 2021)
    creatinine: float | None
    uacr: float | None
    alt: float | None
    potassium: float | None
    ldl: float | None
    ckd: bool
    ckd_stage: str | None  # G1 .. G5 (KDIGO)
    albuminuria: bool
    dialysis: bool
    ascvd: bool
    heart_failure: bool
    hypertension: bool
    dyslipidaemia: bool
    smoker: bool
    obesity: bool
    overweight: bool
    masld: bool
    men2_mtc: bool
    pancreatitis: bool
    hepatic_impairment: bool
    alcohol_abuse: bool
    bowel_disease: bool
    high_cv_risk: bool
    older: bool
    young: bool
    health_status: str  # healthy | complex | very_complex (ADA Table 13.1)
    recent_hypo: bool
    severe_hypo: bool
    weight_loss: bool
    new_diagnosis: bool
    current: dict[str, list[Medication]]  # drug class -> current medications of the class
    allergy_classes: set[str]
    metformin_years: float | None
    high_bp: bool  # this visit's blood pressure >=130/80 mmHg
    # read in the notes (text_derive.py; docs/notes.md)
    egfr_date: dt.date | None = None
    gastroparesis: bool = False
    autoimmune_diabetes: bool = False  # LADA / islet antibodies / low C-peptide under any label
    ketoacidosis: bool = False
    sglt2i_genital_infection: bool = False
    fournier: bool = False
    bladder_cancer: bool = False
    breastfeeding: bool = False
    pregnancy_planning: bool = False
    declines_injections: bool = False
    cost_concern: bool = False
    falls: bool = False
    intolerant_classes: set[str] = dataclasses.field(default_factory=set)
    text_allergy_classes: set[str] = dataclasses.field(default_factory=set)
    evidence: dict[str, list[Evidence]] = dataclasses.field(default_factory=dict)  # Facts field -> the words
    possible: list[Evidence] = dataclasses.field(default_factory=list)  # uncertain mentions to ask about
    conflicts: list[tuple] = dataclasses.field(default_factory=list)  # (analyte, text Evidence, coded value, date)

    def on(self, *classes: str) -> bool:
        return any(self.current.get(c) for c in classes)


def medication_class(med: Medication) -> str:
    """The record's drug class, or the formulary's when the record says `other`."""
    return med.drug_class if med.drug_class != "other" else drug_class_of(med.drug)


def _allergy_classes(visit: Visit) -> set[str]:
    """Drug classes the recorded allergies rule out: the allergen's own class, and classes that
    cross-react with it (guideline.yaml `allergy_cross`: a sulfonamide allergy and sulfonylureas)."""
    out = {a.drug_class or drug_class_of(a.substance) for a in visit.allergies if isinstance(a.substance, str)}
    substances = [a.substance for a in visit.allergies if isinstance(a.substance, str) and a.substance.strip()]
    for cross in knowledge().get("allergy_cross") or []:
        if substances and mentions(substances, cross["patterns"]):
            out |= set(cross["classes"])
    return out - {"other"}


def _texts(visit: Visit) -> list[str]:
    texts = [visit.chief_complaint, visit.present_illness, visit.past_history]
    texts += [f"{d.display} {d.code if d.system.lower() == 'text' else ''}" for d in visit.diagnoses]
    return [t for t in texts if t]


@functools.lru_cache(maxsize=1024)
def _prefixes(codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c.upper() for c in codes)


def is_coded(visit: Visit, spec: dict[str, Any]) -> bool:
    prefixes = _prefixes(tuple(spec.get("icd10") or ()))
    if prefixes and any(code.startswith(prefixes) for code in visit.icd10_codes()):
        return True
    snomed = spec.get("snomed")
    return bool(snomed) and any(d.code in snomed for d in visit.diagnoses if "snomed" in d.system.lower())


@functools.cache
def _vocabulary() -> text_facts.Vocabulary:
    return text_facts.vocabulary(knowledge()["conditions"])


def note_facts(visit: Visit) -> NoteFacts:
    """Every condition of guideline.yaml and every lab value written in the visit's text, with its assertion."""
    return text_facts.read(visit, _vocabulary())


def counts_for_patient(name: str, assertion: str) -> bool:
    """Whether a mention of a condition so asserted means the patient has it (present; historical unless
    `current_only`; a relative's only for `family` conditions)."""
    return text_facts.counts(knowledge()["conditions"].get(name, {}), assertion)


def has_condition(visit: Visit, name: str) -> bool:
    """A condition of guideline.yaml, from codes or from the notes."""
    spec = knowledge()["conditions"][name]
    return is_coded(visit, spec) or bool(text_facts.counted(note_facts(visit), name, spec))


def ckd_epi_2021(creatinine_mg_dl: float, age: int, sex: str) -> float | None:
    """eGFR (mL/min/1.73m2) by the race-free CKD-EPI 2021 creatinine equation (Inker, NEJM 2021).

    None when the inputs cannot give one: a creatinine of 0 or below (a data-entry error; the
    equation divides by it and raises a negative number to a fractional power) or not a finite
    number, or an age that is not a finite non-negative number.
    """
    if not _finite(creatinine_mg_dl) or creatinine_mg_dl <= 0 or not _finite(age) or age < 0:
        return None
    female = sex == "female"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    egfr = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age
    return round(egfr * (1.012 if female else 1.0), 1)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def ckd_stage(egfr: float) -> str:
    """KDIGO 2012 GFR category."""
    for limit, stage in ((90, "G1"), (60, "G2"), (45, "G3a"), (30, "G3b"), (15, "G4")):
        if egfr >= limit:
            return stage
    return "G5"


def _value(visit: Visit, loincs: tuple[str, ...]) -> tuple[float | None, dt.date | None]:
    lab = visit.latest_lab(*loincs)
    return (lab.value, lab.date or visit.date) if lab else (None, None)


def _recent(visit: Visit, loincs: tuple[str, ...], field: str, max_days: int) -> tuple[float | None, dt.date | None]:
    """This visit's result, else the latest one in the history if it is recent enough."""
    value, date = _value(visit, loincs)
    if value is not None:
        return value, date
    past = [h for h in visit.history if getattr(h, field) is not None and 0 <= (visit.date - h.date).days <= max_days]
    if not past:
        return None, None
    last = max(past, key=lambda h: h.date)
    return getattr(last, field), last.date


def _current_by_class(visit: Visit) -> dict[str, list[Medication]]:
    by_class: dict[str, list[Medication]] = {}
    for med in visit.medications:
        by_class.setdefault(medication_class(med), []).append(med)
    return by_class


def _metformin_years(visit: Visit, current: dict[str, list[Medication]]) -> float | None:
    starts = [m.since for m in current.get("metformin", []) if m.since]
    for past in visit.history:
        if any(medication_class(m) == "metformin" for m in past.medications):
            starts.append(past.date)
    if not current.get("metformin"):
        return None
    return round((visit.date - min(starts)).days / 365.25, 1) if starts else None


def _recent_hypo(visit: Visit, texts: list[str], region: str) -> bool:
    if has_condition(visit, "hypoglycaemia"):
        return True
    days = threshold(region, "recent_hypo_days")
    low = threshold(region, "hypo_glucose_below")
    for lab in visit.labs:
        is_glucose = lab.loinc in units.GLUCOSE + units.FASTING_GLUCOSE
        if is_glucose and lab.value < low and (visit.date - (lab.date or visit.date)).days <= days:
            return True
    for past in visit.history:
        if (visit.date - past.date).days > days:
            continue
        if any(re.search(r"hypoglyc|低血糖", e, re.IGNORECASE) for e in past.events):
            return True
        if past.fasting_glucose is not None and past.fasting_glucose < low:
            return True
    return False


def _weight_loss(visit: Visit, texts: list[str], region: str, weight: float | None) -> bool:
    if has_condition(visit, "weight_loss"):
        return True
    if weight is None:
        return False
    days = threshold(region, "weight_loss_days")
    fraction = threshold(region, "weight_loss_fraction")
    earlier = [p.weight_kg for p in visit.history if p.weight_kg and 0 < (visit.date - p.date).days <= days]
    return any((w - weight) / w >= fraction for w in earlier)


def _health_status(visit: Visit, texts: list[str], facts: dict[str, Any]) -> str:
    """ADA Table 13.1: healthy, complex/intermediate, or very complex/poor health."""
    if facts["dialysis"] or has_condition(visit, "very_poor_health"):
        return "very_complex"
    if has_condition(visit, "frailty"):
        return "complex"
    groups = knowledge()["conditions"]["chronic_illness"]["groups"]
    count = sum(bool(facts[k]) for k in ("hypertension", "heart_failure", "ascvd"))
    count += facts["ckd_stage"] in ("G3a", "G3b", "G4", "G5")
    count += sum(has_condition_spec(visit, spec, texts) for spec in groups.values())
    return "complex" if count >= 3 else "healthy"


def has_condition_spec(visit: Visit, spec: dict[str, Any], texts: list[str]) -> bool:
    return is_coded(visit, spec) or mentions(texts, spec.get("patterns", []))


def _diabetes_type(visit: Visit, texts: list[str]) -> str | None:
    if visit.has_diagnosis("E10", "O24.0") or any(d.code == "46635009" for d in visit.diagnoses):
        return "1"
    if visit.has_diagnosis("E11", "O24.1") or any(d.code == "44054006" for d in visit.diagnoses):
        return "2"
    if has_condition(visit, "type1"):
        return "1"
    if has_condition(visit, "type2"):
        return "2"
    return None


# ICD-10 codes of earlier visits that mean diabetes now (O24.4, gestational, ends with the pregnancy).
_DIABETES_CODES = ("E08", "E09", "E10", "E11", "E13", "E14", "O24.0", "O24.1", "O24.3")


def diagnostic_labs(hba1c: float | None, fpg: float | None, region: str) -> list[str]:
    """Which of HbA1c and fasting glucose reach the diabetes cut-offs (ADA 2025 §2 Table 2.1)."""
    found = []
    if hba1c is not None and hba1c >= threshold(region, "diabetes_hba1c_at_least"):
        found.append("hba1c")
    if fpg is not None and fpg >= threshold(region, "diabetes_fpg_at_least"):
        found.append("fpg")
    return found


def _diabetes_status(
    visit: Visit, texts: list[str], region: str, pregnant: bool, hba1c: float | None, fpg: float | None
) -> tuple[str, bool]:
    """(status, prior GDM). A diagnosis on record (codes, SNOMED mapped to ICD-10, en/zh text,
    earlier visits) is diabetes; diagnostic labs or glucose-lowering drugs without one must be
    confirmed, never treated silently (ADA 2025 §2); then prediabetes by code, text or labs."""
    gdm_now = pregnant and has_condition(visit, "gestational_diabetes")
    prior_gdm = not gdm_now and (
        has_condition(visit, "prior_gdm") or any(c.startswith("O24.4") for h in visit.history for c in h.diagnoses)
    )
    if (
        gdm_now
        or any(has_condition(visit, name) for name in ("diabetes", "type1", "type2"))
        or any(c.upper().startswith(_DIABETES_CODES) for h in visit.history for c in h.diagnoses)
    ):
        return "diabetes", prior_gdm
    if diagnostic_labs(hba1c, fpg, region):
        return "unconfirmed", prior_gdm
    if has_condition(visit, "prediabetes"):
        return "prediabetes", prior_gdm
    treated = any(medication_class(m) in GLUCOSE_LOWERING_CLASSES for m in visit.medications) or any(
        medication_class(m) in GLUCOSE_LOWERING_CLASSES for h in visit.history for m in h.medications
    )
    if treated:
        return "unconfirmed", prior_gdm
    high_a1c = hba1c is not None and hba1c >= threshold(region, "prediabetes_hba1c_at_least")
    if high_a1c or (fpg is not None and fpg >= threshold(region, "prediabetes_fpg_at_least")):
        return "prediabetes", prior_gdm
    return "none", prior_gdm


# Inside `facts_once()`: (visit, region) -> the visit and its Facts, so one visit is read once per use case
_ONCE: contextvars.ContextVar[dict[tuple[int, str], tuple[Visit, Facts]] | None] = contextvars.ContextVar(
    "facts_once", default=None
)


@contextlib.contextmanager
def facts_once() -> Iterator[None]:
    """Within this block, `derive` reads each visit once: the guideline engine, the monitoring rules, the safety
    checker and the target reader of one recommendation share one Facts (a visit is the same visit object; a copy,
    such as the checker's visit without implausible labs, is read on its own). The use case opens it
    (recommend.py, inference/pipeline.py, the evaluation); nested blocks share the outer one. Facts are not changed
    after they are derived, so sharing them changes no result."""
    if _ONCE.get() is not None:
        yield
        return
    token = _ONCE.set({})
    try:
        yield
    finally:
        _ONCE.reset(token)


def derive(visit: Visit, region: str = "ada") -> Facts:
    """Every fact the guideline and monitoring rules use, for one visit under one region (read once per visit
    inside `facts_once`)."""
    memo = _ONCE.get()
    if memo is None:
        return _derive(visit, region)
    key = (id(visit), region)
    hit = memo.get(key)
    if hit is None or hit[0] is not visit:
        hit = memo[key] = (visit, _derive(visit, region))
    return hit[1]


def _derive(visit: Visit, region: str) -> Facts:
    region_config(region)  # unknown region -> ConfigError before anything else
    texts = _texts(visit)
    p = visit.patient
    weight = p.weight_kg or visit.vitals.weight_kg
    bmi = p.bmi or visit.vitals.bmi
    if bmi is None and weight and p.height_cm:
        bmi = round(weight / (p.height_cm / 100) ** 2, 1)
    if bmi is None:
        bmi, _ = _value(visit, units.ANALYTES["bmi"].loincs)

    hba1c, hba1c_date = _recent(visit, units.HBA1C, "hba1c", threshold(region, "history_hba1c_max_days"))
    fpg, _ = _value(visit, units.FASTING_GLUCOSE)
    glucoses = [lab.value for lab in visit.labs if lab.loinc in units.GLUCOSE + units.FASTING_GLUCOSE]
    creatinine, creatinine_date = _value(visit, units.CREATININE)
    egfr, egfr_date = _value(visit, units.EGFR)
    estimated = False
    if egfr is None and creatinine is not None and p.age is not None and p.sex in ("male", "female"):
        egfr = ckd_epi_2021(creatinine, p.age, p.sex)
        estimated, egfr_date = egfr is not None, creatinine_date
    kidney_days = threshold(region, "history_kidney_max_days")
    if egfr is None and creatinine is None:
        egfr, egfr_date = _recent(visit, units.EGFR, "egfr", kidney_days)
    uacr, _ = _recent(visit, units.UACR, "uacr", kidney_days)

    current = _current_by_class(visit)
    dtype = _diabetes_type(visit, texts)
    f: dict[str, Any] = {
        "dialysis": has_condition(visit, "dialysis"),
        "ascvd": has_condition(visit, "ascvd"),
        "heart_failure": has_condition(visit, "heart_failure"),
        "hypertension": has_condition(visit, "hypertension"),
    }
    albuminuria = uacr is not None and uacr >= threshold(region, "albuminuria_uacr")
    coded_ckd = has_condition(visit, "ckd")
    f["ckd"] = coded_ckd or albuminuria or (egfr is not None and egfr < threshold(region, "ckd_egfr_below"))
    stage = ckd_stage(egfr) if egfr is not None else None
    if stage is None:
        for code, name in (
            ("N18.6", "G5"),
            ("N18.5", "G5"),
            ("N18.4", "G4"),
            ("N18.32", "G3b"),
            ("N18.31", "G3a"),
            ("N18.3", "G3a"),
            ("N18.2", "G2"),
            ("N18.1", "G1"),
        ):
            if visit.has_diagnosis(code):
                stage = name
                break
    f["ckd_stage"] = stage if f["ckd"] else None

    obesity_bmi, overweight_bmi = threshold(region, "obesity_bmi"), threshold(region, "overweight_bmi")
    obesity = (bmi is not None and bmi >= obesity_bmi) or (bmi is None and has_condition(visit, "obesity"))
    overweight = obesity or (bmi is not None and bmi >= overweight_bmi)
    smoker = has_condition(visit, "smoker")
    dyslipidaemia = has_condition(visit, "dyslipidaemia") or bool(current.get("statin"))
    risk_factors = sum([f["hypertension"], dyslipidaemia, smoker, obesity, albuminuria])
    older_age = threshold(region, "older_age")
    young_age = threshold(region, "young_age_below")
    age = p.age
    high_bp = (visit.vitals.systolic_bp or 0) >= 130 or (visit.vitals.diastolic_bp or 0) >= 80
    # A pregnancy read from codes or text is believed only of a woman of child-bearing age.
    childbearing = p.sex != "male" and (p.age is None or p.age < threshold(region, "pregnancy_max_age"))
    pregnant = p.pregnant or (childbearing and has_condition(visit, "pregnancy"))
    on_glucose_lowering = any(c in GLUCOSE_LOWERING_CLASSES for c in current)
    treated_before = any(medication_class(m) in GLUCOSE_LOWERING_CLASSES for h in visit.history for m in h.medications)
    duration = mentions(
        texts,
        [
            r"(diabet\w*|\bT[12]DM?\b|\bDM\b).{0,20}?\d+\s*(years?|yrs?|y\b|months?|mo\b)",
            r"糖尿病.{0,6}\d+\s*(余年|年|个月)",
        ],
    )
    new_dx = has_condition(visit, "new_diagnosis") or not (
        on_glucose_lowering or treated_before or visit.history or duration
    )

    status, prior_gdm = _diabetes_status(visit, texts, region, pregnant, hba1c, fpg)
    f.update(
        region=region,
        language=visit.language,
        age=age,
        sex=p.sex,
        bmi=bmi,
        weight_kg=weight,
        diabetes_type=dtype,
        diabetes_status=status,
        prior_gdm=prior_gdm,
        pregnant=pregnant,
        hba1c=hba1c,
        hba1c_date=hba1c_date,
        fpg=fpg,
        glucose=max(glucoses) if glucoses else None,
        egfr=egfr,
        egfr_estimated=estimated,
        creatinine=creatinine,
        uacr=uacr,
        alt=_value(visit, units.ALT)[0],
        potassium=_value(visit, units.POTASSIUM)[0],
        ldl=_recent(visit, units.LDL, "ldl", 365)[0],
        albuminuria=albuminuria,
        dyslipidaemia=dyslipidaemia,
        smoker=smoker,
        obesity=obesity,
        overweight=overweight,
        masld=has_condition(visit, "masld"),
        men2_mtc=has_condition(visit, "men2_mtc"),
        pancreatitis=has_condition(visit, "pancreatitis"),
        hepatic_impairment=has_condition(visit, "hepatic_impairment"),
        alcohol_abuse=has_condition(visit, "alcohol_abuse"),
        bowel_disease=has_condition(visit, "bowel_disease"),
        high_cv_risk=f["ascvd"]
        or (
            age is not None
            and age >= threshold(region, "high_cv_risk_age")
            and risk_factors >= threshold(region, "high_cv_risk_factors")
        ),
        older=age is not None and age >= older_age,
        # the CDS/CSE <6.5% goal is for young people with type 2 and no vascular disease
        young=age is not None and age < young_age and not f["ascvd"] and not f["ckd"] and dtype != "1",
        recent_hypo=_recent_hypo(visit, texts, region),
        severe_hypo=has_condition(visit, "severe_hypoglycaemia"),
        weight_loss=_weight_loss(visit, texts, region, weight),
        new_diagnosis=new_dx,
        current=current,
        allergy_classes=_allergy_classes(visit),
        metformin_years=_metformin_years(visit, current),
        high_bp=high_bp,
        egfr_date=egfr_date,
    )
    text_derive.complete(
        visit,
        f,
        note_facts(visit),
        knowledge()["conditions"],
        knowledge().get("allergy_cross") or [],
        is_coded,
        lambda name: threshold(region, name),
    )
    f["health_status"] = _health_status(visit, texts, f)
    return Facts(**f)
