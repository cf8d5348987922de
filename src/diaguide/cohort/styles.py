"""Physician practice styles: what a physician did, written independently of the guideline engine.

Each style is one readable function `(ctx) -> Decision`. They share what every careful
physician does (`_common`: kidney limits on metformin, type 1 and pregnancy regimens,
monitoring) and differ in goals and in how, and how fast, they intensify:

- guideline_strict: ADA 2025 §9 — cardiorenal indications first (SGLT2i for HF/CKD, GLP-1 RA
  for ASCVD/obesity), then add-ons by patient factors, insulin above 10%.
- conservative: slow to intensify (acts only 0.5 points above goal), titrates what the patient
  already takes, keeps and adds sulfonylureas, insulin late.
- acarbose_first: Chinese practice (CDS 2020) — metformin, then acarbose, then a sulfonylurea
  or DPP-4i, premixed insulin for high HbA1c, short intensive insulin at HbA1c >=9% when new.
- insulin_early: basal insulin from HbA1c 8.5% or after two orals, titrated every visit.
"""

from __future__ import annotations

from collections.abc import Callable

from diaguide.cohort.catalog import class_of
from diaguide.cohort.decision import Context, Decision
from diaguide.drugs.classes import INSULIN_CLASSES
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES

Style = Callable[[Context], Decision]
# how often each style is drawn for a patient, by visit language (documented in docs/cohort.md)
STYLE_WEIGHTS = {
    "en": {"guideline_strict": 0.45, "conservative": 0.30, "insulin_early": 0.25},
    "zh": {"acarbose_first": 0.45, "guideline_strict": 0.25, "conservative": 0.15, "insulin_early": 0.15},
}
GLP1_EN, GLP1_ZH = ("semaglutide", "dulaglutide", "liraglutide"), ("liraglutide", "semaglutide", "dulaglutide")
INCRETIN = ("glp1ra", "gip_glp1ra")


def _goal(ctx: Context, older_goal: float = 7.5) -> float:
    """HbA1c goal (%): ADA §6/§13/§15; CDS 2020 keeps <6.5% for the young without CVD."""
    p = ctx.profile
    if ctx.pregnant:
        return 6.5 if ctx.type1 else 6.0
    if ctx.older:
        return 8.0 if p.frail or ctx.age >= 80 else older_goal
    if ctx.age < 40 and not p.ascvd and not ctx.ckd and not ctx.type1:
        return 6.5
    return 7.0


def _pick(ctx: Context, options: tuple[str, ...]) -> str:
    # a physician has a favourite product per class; tied to the patient id so it is stable
    return options[sum(map(ord, ctx.profile.patient_id)) % len(options)]


def _basal_units(ctx: Context) -> int:
    return max(10, round(0.15 * ctx.weight))  # 10 U or 0.1-0.2 U/kg/day (ADA §9)


def _common(ctx: Context, goal: float) -> tuple[Decision, bool]:
    """Start from the current regimen and apply what every style does. True when handled fully."""
    d = Decision.keep_all(ctx, goal)
    _monitoring(ctx, d)
    if ctx.pregnant:
        _pregnancy(ctx, d)
        return d, True
    if ctx.type1:
        _type1(ctx, d)
        return d, True
    _reconcile(ctx, d)
    met = ctx.on("metformin")
    if met and ctx.egfr < 30:
        d.stop(met, "renal_stop")  # FDA 2016: contraindicated below eGFR 30
    elif met and ctx.egfr < 45 and ctx.state.meds[met].step > 1:
        d.orders[met].step = 1
        d.orders[met].action, d.orders[met].reason = "adjust", "renal_reduce"  # at most 1000 mg/day
    if ctx.hypo or (ctx.older and ctx.a1c < goal - 1.0):
        _deintensify(ctx, d)
    if ctx.older and "glyburide" in d.orders:
        d.stop("glyburide", "beers_glyburide")
        d.start("glipizide", "replace_glyburide")
    return d, False


def _reconcile(ctx: Context, d: Decision) -> None:
    """Undo pointless pairs found on the medication list (often another prescriber's)."""
    if any(class_of(k) in INCRETIN for k in ctx.state.meds):
        d.stop_class("dpp4i", "duplicate_dpp4i")  # no added lowering with a GLP-1 RA (ADA §9)
    sus = [k for k in ctx.state.meds if class_of(k) == "sulfonylurea"]
    for key in sus[1:]:
        d.stop(key, "duplicate_su")


def _monitoring(ctx: Context, d: Decision) -> None:
    d.labs["hba1c"] = "hba1c_3mo" if ctx.a1c > d.goal else "hba1c_6mo"
    days = (ctx.date - ctx.state.last_uacr).days if ctx.state.last_uacr else 999
    if ctx.ckd:
        d.labs["creatinine"], d.labs["uacr"] = "ckd_monitor", "ckd_monitor"
    elif days >= 180:
        d.labs["creatinine"], d.labs["uacr"] = "yearly_kidney", "yearly_kidney"
    if ctx.on("statin") and ctx.state.last_lipids and (ctx.date - ctx.state.last_lipids).days >= 180:
        d.labs["ldl"] = "lipids_statin"
    if (ctx.on("acei") or ctx.on("arb")) and ctx.ckd:
        d.labs["potassium"] = "potassium_raas"
    if ctx.profile.masld:
        d.labs["alt"] = "masld"


def _pregnancy(ctx: Context, d: Decision) -> None:
    # ADA §15: insulin preferred; ACEi/ARB and statins stopped; other glucose-lowering drugs stopped
    for key in list(d.orders):
        cls = class_of(key)
        if cls in ("acei", "arb"):
            d.stop(key, "pregnancy_raas")
            if "labetalol" not in d.orders:
                d.start("labetalol", "pregnancy_bp")
        elif cls == "statin":
            d.stop(key, "pregnancy_statin")
        elif cls not in ("basal_insulin", "prandial_insulin", "other"):
            d.stop(key, "pregnancy_insulin")
    basal = ctx.on("basal_insulin")
    if basal is None:
        d.start("insulin_glargine", "pregnancy_insulin", units=max(8, round(0.1 * ctx.weight)))
    elif ctx.a1c > d.goal:
        d.set_units(basal, round((ctx.state.meds[basal].units or 10) * 1.15), "titrate_basal")
    if ctx.on("prandial_insulin") is None and ctx.a1c > d.goal:
        d.start("insulin_aspart", "pregnancy_insulin", units=4)


def _type1(ctx: Context, d: Decision) -> None:
    for key in list(d.orders):
        if class_of(key) in ("sulfonylurea", "sglt2i", "dpp4i", "glinide"):
            d.stop(key, "type1_not_indicated")
    basal = ctx.on("basal_insulin")
    if basal and ctx.hypo:
        d.set_units(basal, round((ctx.state.meds[basal].units or 10) * 0.85), "hypo_reduce")
    elif basal and ctx.a1c > d.goal + 0.3:
        d.set_units(basal, round((ctx.state.meds[basal].units or 10) * 1.1), "titrate_basal")


def _deintensify(ctx: Context, d: Decision) -> None:
    """Hypoglycaemia, or an older adult well below goal: less sulfonylurea/insulin (ADA §6, §13)."""
    for key in list(d.orders):
        cls = class_of(key)
        if cls == "sulfonylurea" and not d.titrate(key, "hypo_reduce", -1) and ctx.older:
            d.stop(key, "hypo_stop")
        elif cls in ("basal_insulin", "premixed_insulin") and d.orders[key].units:
            d.set_units(key, round(d.orders[key].units * 0.85), "hypo_reduce")  # type: ignore[operator]
    d.remarks.append("hypo_education")


def _add_basal_or_titrate(ctx: Context, d: Decision) -> None:
    basal = ctx.on("basal_insulin") or ctx.on("premixed_insulin")
    if basal:
        d.set_units(basal, round((ctx.state.meds[basal].units or 10) * 1.15 + 2), "titrate_basal")
    else:
        d.start("insulin_glargine", "insulin_high_a1c", units=_basal_units(ctx))


def _metformin_then_cardiorenal(ctx: Context, d: Decision) -> None:
    """Metformin first line, then an SGLT2i for heart failure or CKD whatever the HbA1c (ADA 2025 §9)."""
    if not ctx.on("metformin") and not ctx.profile.metformin_intolerant and ctx.egfr >= 45:
        d.start("metformin", "first_line")
    if (ctx.profile.hf or ctx.ckd) and not d.has_class("sglt2i") and ctx.egfr >= 20:
        d.start("empagliflozin" if not ctx.zh else "dapagliflozin", "hf" if ctx.profile.hf else "ckd")


def guideline_strict(ctx: Context) -> Decision:
    """ADA Standards 2025 §9: cardiorenal indications first, then glycaemia by patient factors."""
    d, done = _common(ctx, _goal(ctx, older_goal=7.0))
    if done:
        return d
    _metformin_then_cardiorenal(ctx, d)
    if (ctx.profile.ascvd or (ctx.obese and ctx.a1c > d.goal)) and not any(d.has_class(c) for c in INCRETIN):
        d.stop_class("dpp4i", "replace_dpp4i")
        d.start(_pick(ctx, GLP1_ZH if ctx.zh else GLP1_EN), "ascvd" if ctx.profile.ascvd else "obesity")
    if ctx.a1c > d.goal and not d.changed():
        if ctx.a1c >= 10:
            _add_basal_or_titrate(ctx, d)
        elif ctx.on("metformin") and ctx.egfr >= 45 and d.titrate(ctx.on("metformin"), "titrate"):  # type: ignore[arg-type]
            pass
        elif not any(d.has_class(c) for c in INCRETIN) and not d.has_class("dpp4i"):
            d.start(_pick(ctx, GLP1_ZH if ctx.zh else GLP1_EN), "above_goal")
        elif not d.has_class("sglt2i") and ctx.egfr >= 20:
            d.start("empagliflozin", "above_goal")
        else:
            _add_basal_or_titrate(ctx, d)
    if ctx.a1c <= d.goal and not d.changed():
        d.remarks.append("at_goal")
    _cardiovascular(ctx, d)
    return d


def _cardiovascular(ctx: Context, d: Decision) -> None:
    """Statin for 40-75 or ASCVD, RAAS blocker for hypertension or albuminuria (ADA §10, §11)."""
    if not d.has_class("statin") and (ctx.profile.ascvd or 40 <= ctx.age <= 75):
        d.start("atorvastatin", "statin_primary" if not ctx.profile.ascvd else "statin_ascvd")
    if not (d.has_class("acei") or d.has_class("arb")) and (ctx.profile.htn or ctx.uacr >= 30):
        d.start("valsartan" if ctx.zh else "losartan", "raas_albuminuria" if ctx.uacr >= 30 else "bp")


def conservative(ctx: Context) -> Decision:
    """Slow to intensify: acts only 0.5 points above goal, one step at a time, keeps sulfonylureas."""
    d, done = _common(ctx, _goal(ctx, older_goal=7.5))
    if done:
        return d
    if ctx.profile.hf and not d.has_class("sglt2i") and ctx.egfr >= 20:
        d.start("dapagliflozin" if ctx.zh else "empagliflozin", "hf")
    if ctx.a1c <= d.goal + 0.5 or ctx.hypo:
        d.remarks.append("lifestyle" if ctx.a1c > d.goal else "at_goal")
        return d
    met, su = ctx.on("metformin"), ctx.on("sulfonylurea")
    if met is None and not ctx.profile.metformin_intolerant and ctx.egfr >= 45:
        d.start("metformin", "first_line")
    elif (met and ctx.egfr >= 45 and d.titrate(met, "titrate")) or (
        su and d.orders[su].action != "stop" and d.titrate(su, "titrate")
    ):
        pass  # titrated what the patient already takes
    elif su is None and not ctx.hypo:
        d.start("gliclazide" if ctx.zh else "glimepiride", "above_goal")
    elif not d.has_class("dpp4i") and not any(d.has_class(c) for c in INCRETIN):
        d.start("linagliptin" if ctx.egfr < 45 else "sitagliptin", "above_goal")
    elif ctx.a1c >= 9.5:
        _add_basal_or_titrate(ctx, d)
    else:
        d.remarks.append("lifestyle")
    return d


def acarbose_first(ctx: Context) -> Decision:
    """Chinese practice (CDS 2020): metformin, acarbose, then SU/DPP-4i, premixed insulin when high."""
    d, done = _common(ctx, _goal(ctx, older_goal=7.5))
    if done:
        return d
    new_dx = (ctx.date - ctx.profile.diagnosed).days < 365 and not ctx.state.meds
    if new_dx and ctx.a1c >= 9.0:
        # CDS 2020: short-term intensive insulin for newly diagnosed HbA1c >=9%
        d.start("insulin_glargine", "intensive_new", units=_basal_units(ctx))
        d.start("insulin_aspart", "intensive_new", units=4)
        d.start("metformin", "first_line")
        return d
    if (ctx.profile.ascvd or ctx.ckd) and not d.has_class("sglt2i") and ctx.egfr >= 20 and ctx.a1c > d.goal:
        d.start("dapagliflozin", "ckd" if ctx.ckd else "ascvd")
    if ctx.a1c > d.goal and not d.changed():
        n_oral = sum(c not in INSULIN_CLASSES and c in GLUCOSE_LOWERING_CLASSES for c in ctx.classes())
        if not ctx.on("metformin") and not ctx.profile.metformin_intolerant and ctx.egfr >= 45:
            d.start("metformin", "first_line")
        elif not d.has_class("agi") and ctx.egfr >= 30:
            d.start("acarbose", "postprandial")
        elif ctx.on("agi") and d.titrate(ctx.on("agi"), "titrate"):  # type: ignore[arg-type]
            pass
        elif (ctx.a1c >= 9.0 and n_oral >= 2) or ctx.on("premixed_insulin"):
            premix = ctx.on("premixed_insulin")
            if premix:
                d.set_units(premix, round((ctx.state.meds[premix].units or 12) * 1.15 + 2), "titrate_basal")
            else:
                d.stop_class("sulfonylurea", "insulin_replaces_su")
                d.start("insulin_aspart30", "insulin_high_a1c", units=max(12, round(0.25 * ctx.weight)))
        elif not d.has_class("sulfonylurea") and not d.has_class("dpp4i"):
            older_pick = "sitagliptin" if not any(d.has_class(c) for c in INCRETIN) else "gliclazide"
            d.start("gliclazide" if ctx.age < 70 else older_pick, "above_goal")
        else:
            d.remarks.append("lifestyle")
    if ctx.a1c <= d.goal and not d.changed():
        d.remarks.append("at_goal")
    return d


def insulin_early(ctx: Context) -> Decision:
    """Basal insulin from HbA1c 8.5% or after two orals; titrated every visit until at goal."""
    d, done = _common(ctx, _goal(ctx, older_goal=7.0))
    if done:
        return d
    _metformin_then_cardiorenal(ctx, d)
    n_oral = sum(c in GLUCOSE_LOWERING_CLASSES and c not in INSULIN_CLASSES for c in ctx.classes())
    if ctx.a1c > d.goal and not ctx.hypo and (ctx.a1c >= 8.5 or n_oral >= 2 or ctx.on("basal_insulin")):
        basal = ctx.on("basal_insulin")
        if basal and (ctx.state.meds[basal].units or 0) > 0.5 * ctx.weight and not ctx.on("prandial_insulin"):
            d.start("insulin_aspart", "overbasal", units=4)  # ADA §9: >0.5 U/kg suggests over-basalisation
        else:
            _add_basal_or_titrate(ctx, d)
    elif ctx.a1c > d.goal and ctx.on("metformin") and ctx.egfr >= 45:  # no up-titration below eGFR 45
        d.titrate(ctx.on("metformin"), "titrate")  # type: ignore[arg-type]
    if ctx.a1c <= d.goal and not d.changed():
        d.remarks.append("at_goal")
    _cardiovascular(ctx, d)
    return d


STYLES: dict[str, Style] = {
    "guideline_strict": guideline_strict,
    "conservative": conservative,
    "acarbose_first": acarbose_first,
    "insulin_early": insulin_early,
}
