"""Visit -> reference Plan, by the ADA Standards of Care 2025 (region `ada`) or the Chinese
Diabetes Society guideline 2020 (region `cds`).

The engine reads the patient's facts (conditions.py), picks the glycaemic goal and the labs
due (monitoring.py), and decides per drug class what to start, continue, adjust or stop.
Every decision cites the guideline.yaml rule it follows; the thresholds live there too.
Safety findings are not added here: safety.checker does that to any Plan, and the engine's own
plans are built to pass it (deintensify.py lowers or stops what the checker would flag: a
sulfonylurea or insulin next to a new DPP-4i/SGLT2i, over-treatment in older adults, allergies,
renal limits). A visit without diabetes on record is planned by no_diabetes.py: no
glucose-lowering drug is started there.
"""

from __future__ import annotations

from diaguide.drugs.classes import INSULIN_CLASSES, NON_INSULIN_CLASSES
from diaguide.drugs.formulary import lookup
from diaguide.knowledge.conditions import derive, knowledge
from diaguide.knowledge.deintensify import lower_for_add_on, safety_reductions
from diaguide.knowledge.monitoring import glycaemic_goal, labs_due
from diaguide.knowledge.no_diabetes import plan_without_diabetes
from diaguide.knowledge.plan_builder import (
    MG_DL_PER_MMOL_L,
    PlanBuilder,
    daily_mg,
    dose_number,
    treatment_text,
)
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Plan, Visit

# Drugs singled out by name within their class (Beers 2023; SAVOR-TIMI 53 / FDA 2016).
_GLYBURIDE = r"glyburide|glibenclamide|格列本脲|优降糖"
_HF_GLIPTINS = r"saxagliptin|alogliptin|沙格列汀|阿格列汀"


def _safety_stops(b: PlanBuilder) -> None:
    """Stops and dose changes that apply whatever the glycaemic plan (contraindications)."""
    f, egfr = b.f, b.f.egfr
    if b.meds_of("metformin"):
        stop_below, reduce_below = b.t("metformin_stop_below_egfr"), b.t("metformin_reduce_below_egfr")
        if f.dialysis:  # kidney failure on dialysis, with or without an eGFR on file
            b.stop(["metformin"], "metformin_dialysis")
        elif egfr is not None and egfr < stop_below:
            b.stop(["metformin"], "metformin_egfr_stop", limit=stop_below)
        elif f.hepatic_impairment or f.alcohol_abuse:
            b.stop(["metformin"], "metformin_liver")
        elif egfr is not None and egfr < reduce_below:
            reason = b.say("metformin_egfr_reduce", limit=reduce_below)
            for i in b.meds_of("metformin"):
                med = b.current[i][0]
                daily = daily_mg(med.dose, med.frequency)
                if daily is not None and daily <= 1000:  # already within the reduced dose
                    b.order(i, "continue", reason)
                else:
                    b.order(i, "adjust", reason, "500 mg", _twice(b.lang))
        elif egfr is None:
            b.prompt("missing_egfr")
    if f.men2_mtc:
        b.stop(["glp1ra", "gip_glp1ra"], "men2_no_glp1")
    if f.heart_failure:
        b.stop(["tzd"], "hf_no_tzd")
        b.stop(["dpp4i"], "hf_no_saxagliptin", name=_HF_GLIPTINS)
    if f.alt is not None and f.alt > b.t("tzd_stop_alt_above"):
        b.stop(["tzd"], "tzd_alt_stop")
    low_crcl = egfr is not None and egfr < b.t("acarbose_stop_below_egfr")
    if low_crcl or (f.creatinine is not None and f.creatinine > b.t("acarbose_stop_creatinine_above")):
        b.stop(["agi"], "acarbose_renal_stop")
    if f.bowel_disease or f.hepatic_impairment:
        b.stop(["agi"], "acarbose_bowel")
    if f.older:
        b.stop(["sulfonylurea"], "glyburide_older", name=_GLYBURIDE)
    elif egfr is not None and egfr < 60:
        b.stop(["sulfonylurea"], "glyburide_ckd", name=_GLYBURIDE)
    safety_reductions(b)
    if f.recent_hypo:
        if f.older:
            b.stop(["sulfonylurea", "glinide"], "hypo_stop_su_older")
        else:
            b.adjust(["sulfonylurea", "glinide"], "hypo_reduce_su", factor=b.t("su_reduce_factor"))
        b.adjust(INSULIN_CLASSES, "hypo_reduce_insulin", factor=b.t("insulin_reduce_factor"))
        b.prompt("hypo_caution")
    if f.dialysis:
        b.stop(["sglt2i"], "sglt2i_dialysis")
    _notes_stops(b)
    if b.meds_of("acei") and b.meds_of("arb"):
        b.stop(["arb"], "raas_dual")
    if f.pancreatitis and b.active("glp1ra", "gip_glp1ra", "dpp4i"):
        b.prompt("pancreatitis_caution")
    for cls in (
        *NON_INSULIN_CLASSES,
        "basal_insulin",
        "statin",
        "acei",
        "arb",
    ):  # two drugs of one class: keep the first
        kept = [i for i in b.meds_of(cls) if i not in b.decided or b.decided[i].action != "stop"]
        for i in kept[1:]:
            b.order(i, "stop", b.say("duplicate_class", drug=b.current[i][0].drug))


def _notes_stops(b: PlanBuilder) -> None:
    """Stops for facts that are mostly written in the notes (docs/notes.md); each reason quotes the words."""
    f = b.f
    if f.gastroparesis:
        b.stop(["glp1ra", "gip_glp1ra"], "glp1_gastroparesis")
    if f.autoimmune_diabetes and f.diabetes_type != "1":
        b.stop(["sulfonylurea", "glinide"], "autoimmune_no_su")
        b.prompt("autoimmune_confirm")
    if f.ketoacidosis:
        b.stop(["sglt2i"], "sglt2i_dka_stop")
    if f.fournier:
        b.stop(["sglt2i"], "sglt2i_fournier_stop")
    if f.sglt2i_genital_infection and b.meds_of("sglt2i"):
        b.prompt("sglt2i_genital_caution")
    if f.bladder_cancer:
        b.stop(["tzd"], "tzd_bladder_cancer")
    for cls in sorted(f.intolerant_classes):
        b.stop([cls], "intolerance_stop")
    if f.pregnancy_planning and not f.pregnant:
        b.stop(["glp1ra", "gip_glp1ra"], "planning_glp1_stop")
        b.prompt("planning_care")
    if f.breastfeeding and not f.pregnant:
        b.prompt("breastfeeding_caution")
    if f.cost_concern:
        b.prompt("cost_caution")
    for e in f.possible:
        b.possible(e)
    for analyte, written, coded_value, coded_date in f.conflicts:
        b.conflict(analyte, written, coded_value, coded_date)


def _twice(lang: str) -> str:
    return "每日2次" if lang == "zh" else "twice daily"


def _insulin_note(b: PlanBuilder, low: float, high: float) -> str:
    w = b.f.weight_kg
    if not w:
        return ""
    return (
        f"（{w:g} kg：{low * w:.0f}-{high * w:.0f} U/日）"
        if b.lang == "zh"
        else f" ({low * w:.0f}-{high * w:.0f} U/day at {w:g} kg)"
    )


def _basal_bolus(b: PlanBuilder, rule_id: str) -> None:
    """Type 1 (or pregnancy with type 1): basal plus prandial insulin, 0.4-1.0 U/kg/day."""
    b.stop(["premixed_insulin"], "premixed_to_basal_bolus")
    w = b.f.weight_kg
    basal = f"{0.25 * w:.0f} U" if w else None  # half of 0.5 U/kg/day as basal
    prandial = f"{0.25 * w / 3:.0f} U" if w else None
    note = _insulin_note(b, 0.4, 1.0)
    b.start("basal_insulin", rule_id, dose=basal, dose_note=note)
    b.start("prandial_insulin", rule_id, dose=prandial, dose_note=note)


def _above_goal(b: PlanBuilder) -> bool:
    return b.f.hba1c is not None and b.goal is not None and b.f.hba1c >= b.goal


def _type1(b: PlanBuilder) -> None:
    b.stop(["sulfonylurea", "glinide", "sglt2i", "dpp4i", "tzd"], "type1_no_oral")
    _basal_bolus(b, "type1_basal_bolus")
    if _above_goal(b):
        b.adjust(("basal_insulin", "prandial_insulin"), "type1_titrate")


def _pregnancy(b: PlanBuilder) -> None:
    stopped_any = bool(b.meds_of(*NON_INSULIN_CLASSES))
    b.stop(NON_INSULIN_CLASSES, "pregnancy_stop")
    b.stop(("statin", "acei", "arb"), "pregnancy_stop_cv")
    if b.f.diabetes_type == "1":
        _basal_bolus(b, "type1_basal_bolus")
    elif not b.active("basal_insulin", "premixed_insulin") and (stopped_any or _above_goal(b)):
        b.start("basal_insulin", "pregnancy_insulin", dose_note=_insulin_note(b, 0.1, 0.2))
    b.prompt("pregnancy_care")


def _trigger(b: PlanBuilder) -> str:
    """What calls for insulin, in the visit's language (ADA 2025 §9)."""
    f, zh = b.f, b.lang == "zh"
    said = []
    if f.hba1c is not None and f.hba1c > b.t("insulin_hba1c_above"):
        said.append(f"HbA1c {f.hba1c:g}%")
    if f.glucose is not None and f.glucose >= b.t("insulin_glucose_at_least"):
        said.append(f"血糖 {f.glucose / MG_DL_PER_MMOL_L:.1f} mmol/L" if zh else f"glucose {f.glucose:g} mg/dL")
    if f.weight_loss:
        said.append("体重下降（分解代谢）" if zh else "weight loss (catabolism)")
    return ("、" if zh else ", ").join(said)


def _type2(b: PlanBuilder) -> None:
    f = b.f
    if f.hba1c is None:
        b.prompt("missing_hba1c")
    above = _above_goal(b)
    glucose_high = f.glucose is not None and f.glucose >= b.t("insulin_glucose_at_least")
    catabolic = f.weight_loss and above and not b.active("glp1ra", "gip_glp1ra")
    insulin_needed = (f.hba1c is not None and f.hba1c > b.t("insulin_hba1c_above")) or glucose_high or catabolic
    a1c_limit, fpg_limit = b.t("intensive_insulin_hba1c"), b.t("intensive_insulin_fpg")
    intensive = (
        a1c_limit is not None
        and f.new_diagnosis
        and not b.meds_of(*INSULIN_CLASSES)
        and ((f.hba1c is not None and f.hba1c >= a1c_limit) or (f.fpg is not None and f.fpg >= fpg_limit))
    )
    if intensive:
        note = _insulin_note(b, 0.1, 0.2)
        b.start("basal_insulin", "cds_intensive_insulin", dose_note=note)
        b.start("prandial_insulin", "cds_intensive_insulin", dose_note=note)
    elif f.autoimmune_diabetes and not b.active(*INSULIN_CLASSES):
        b.start("basal_insulin", "autoimmune_insulin", dose_note=_insulin_note(b, 0.1, 0.2))
    elif insulin_needed:
        if b.active("basal_insulin", "premixed_insulin"):
            b.adjust(("basal_insulin", "premixed_insulin"), "insulin_titrate")
        else:
            b.start("basal_insulin", "insulin_trigger", dose_note=_insulin_note(b, 0.1, 0.2), trigger=_trigger(b))

    # Very complex/poor health: no new agents for long-term benefit, only relief of hyperglycaemia
    # (ADA 2025 Table 13.1, §13).
    if f.older and f.health_status == "very_complex":
        b.prompt("very_complex_no_new")
        return
    wants_metformin = f.new_diagnosis or above or insulin_needed
    if wants_metformin and not b.active("metformin") and not b.stopped("metformin"):
        b.start("metformin", "metformin_first_line")
    # First line waits for the kidney result rather than a guess, and so does what follows it.
    deferred = wants_metformin and not b.active("metformin") and b.blocked("metformin") == "missing_egfr"

    # Cardiorenal protection applies whatever the HbA1c (ADA 2025 §9, §11).
    if f.heart_failure:
        b.start("sglt2i", "sglt2i_hf")
    kidney = f.albuminuria or (f.egfr is not None and f.egfr < b.t("ckd_egfr_below"))
    if kidney and not b.start("sglt2i", "sglt2i_ckd") and not b.active("sglt2i"):
        b.start("glp1ra", "glp1ra_ckd")
    if f.high_cv_risk and not b.active("sglt2i", "glp1ra", "gip_glp1ra"):
        order = ("sglt2i", "glp1ra") if kidney or f.heart_failure else ("glp1ra", "sglt2i")
        _ = b.start(order[0], "cardio_ascvd") or b.start(order[1], "cardio_ascvd")

    # Weight is a treatment goal of its own, whatever the HbA1c (ADA 2025 Figure 9.3; §4 for MASLD).
    weight_rule = "weight_obesity" if f.obesity else "weight_masld" if f.masld and f.overweight else None
    wants_weight = weight_rule and not b.active("glp1ra", "gip_glp1ra")
    if wants_weight and not (b.start("glp1ra", weight_rule) or b.start("gip_glp1ra", weight_rule)):
        b.prompt("weight_no_glp1")
        if f.masld and above:
            b.start("tzd", "pioglitazone_masld")

    # insulin the patient declines (said in the notes): the oral steps below go on meanwhile
    declined = insulin_needed and not intensive and f.declines_injections and not b.active(*INSULIN_CLASSES)
    if intensive or (insulin_needed and not declined) or deferred or not (above or b.to_replace):
        return
    if not above:  # at goal, but a drug stopped for safety leaves a gap (ADA 2025 Figure 9.3)
        needed, rule = 1, "replace_stopped"
    else:
        gap = f.hba1c - b.goal  # type: ignore[operator]
        needed = 2 if f.new_diagnosis and gap >= b.t("early_combination_above_goal") else 1
        rule = "early_combination" if needed == 2 else "intensify"
    added = sum(c in GLUCOSE_LOWERING_CLASSES for c in b.started)
    on_insulin = ("basal_insulin", "premixed_insulin")
    if above and added < needed and b.active(*on_insulin) and b.adjust(on_insulin, "insulin_titrate"):
        added += 1
    if above and added < needed and _uptitrate_metformin(b):
        added += 1
    if above and added < needed and _uptitrate_glp1(b):
        added += 1
    key = "intensify_order_older" if f.older else "intensify_order"
    # Another class while the regimen is short of four (ADA 2025 Figure 9.3) ...
    if len(b.kept(*NON_INSULIN_CLASSES) | set(b.started)) < b.t("max_non_insulin_classes"):
        for cls in b.cfg[key]["value"]:
            if added >= needed:
                break
            added += b.start(cls, "acarbose_first_line" if cls == "agi" else rule)
    # ... then basal insulin (Figure 9.4: above goal despite several agents).
    if above and added < needed and not b.active(*INSULIN_CLASSES):
        added += b.start("basal_insulin", "insulin_next_step", dose_note=_insulin_note(b, 0.1, 0.2))
    if above and added < needed:
        b.prompt("no_agent_left")


def _uptitrate_metformin(b: PlanBuilder) -> bool:
    """Raise a submaximal metformin dose (< 2000 mg/day) when the kidneys allow the full dose."""
    target = b.t("metformin_target_daily_mg")
    for i in b.meds_of("metformin"):
        med = b.current[i][0]
        daily = daily_mg(med.dose, med.frequency)
        if i in b.decided or daily is None or daily >= target:
            continue
        if b.f.egfr is None or b.f.egfr < b.t("metformin_reduce_below_egfr"):
            return False
        freq = "每日2次，随餐" if b.lang == "zh" else "twice daily with meals"
        b.order(i, "adjust", b.say("metformin_uptitrate", dose=f"{daily:g}"), f"{target / 2:g} mg", freq)
        return True
    return False


def _uptitrate_glp1(b: PlanBuilder) -> bool:
    """Raise a GLP-1 RA or tirzepatide below its top dose to the next labelled step."""
    steps = knowledge()["drug_limits"]["glp1_titration"]
    for i in b.meds_of("glp1ra", "gip_glp1ra"):
        med = b.current[i][0]
        drug, written = lookup(med.drug), dose_number(med.dose)
        ladder = steps.get(drug.name) if drug else None
        if i in b.decided or not ladder or written is None or written[1].lower() != "mg":
            continue
        higher = [step for step in ladder if step > written[0] + 1e-9]
        if higher:
            reason = b.say("glp1_uptitrate", drug=med.drug, dose=med.dose)
            b.order(i, "adjust", reason, f"{higher[0]:g} mg")
            return True
    return False


def _cardiovascular(b: PlanBuilder) -> None:
    f = b.f
    if f.pregnant or (f.older and f.health_status == "very_complex"):
        return
    if not b.active("statin"):
        if f.ascvd:
            b.start("statin", "statin_ascvd", agent="statin_high")
        elif f.age is not None and b.t("statin_min_age") <= f.age <= b.t("statin_max_age"):
            b.start("statin", "statin_start")
    if (f.hypertension or f.albuminuria) and not b.active("acei", "arb"):
        if f.potassium is not None and f.potassium > 5.5:
            b.prompt("hyperkalaemia")
        else:
            first = b.cfg["raas_preferred"]["value"]
            rule = "raas_albuminuria" if f.albuminuria else "raas_hypertension"
            _ = b.start(first, rule) or b.start("arb" if first == "acei" else "acei", rule)
    elif f.high_bp and not f.hypertension:
        b.prompt("high_bp_no_dx")


def _cautions(b: PlanBuilder) -> None:
    f = b.f
    lower_for_add_on(b)
    if b.active("dpp4i") and b.active("glp1ra", "gip_glp1ra"):
        b.stop(["dpp4i"], "dpp4i_with_glp1")
    if "sglt2i" in b.started:
        b.prompt("sglt2i_caution")
    if any(c in b.started for c in INSULIN_CLASSES):
        b.prompt("insulin_caution")
    if b.active("metformin") and f.egfr is not None and 30 <= f.egfr < 60:
        b.prompt("metformin_contrast")
    if b.active("tzd") and b.active(*INSULIN_CLASSES):
        b.prompt("tzd_insulin")
    if b.goal is None:
        b.prompt("no_goal")


def recommend(visit: Visit, region: str = "ada") -> Plan:
    """The guideline's reference Plan for a visit, checked against itself (no safety findings attached;
    safety.checker adds them): an order it would start that the checker calls critical for this visit is not
    proposed, and the plan says why (`_without_critical_starts`).

    Args:
        visit: the visit to plan for; its `language` sets the language of every text.
        region: `ada` (ADA Standards of Care 2025) or `cds` (Chinese Diabetes Society 2020).

    Raises:
        ConfigError: unknown region.
    """
    return _without_critical_starts(visit, _plan(visit, region), region)


# The checker's critical findings on an order the engine itself would start: that order is dropped and said. Two
# rounds at most: dropping a start never makes another start critical, it can only end a finding.
SELF_CHECK_ROUNDS = 2


def _without_critical_starts(visit: Visit, plan: Plan, region: str) -> Plan:
    from diaguide.safety.checker import check  # safety reads knowledge; imported at use, not at import

    for _ in range(SELF_CHECK_ROUNDS):
        started = {m.drug.strip().lower(): m for m in plan.medications if m.action == "start"}
        findings = check(visit, plan, region)
        blocking = [f for f in findings if f.severity == "critical" and started.keys() & _lower(f.drugs)]
        if not blocking:
            return _warned_starts_explained(visit, plan, started, findings)
        dropped = {d for f in blocking for d in _lower(f.drugs) if d in started}
        prompts = list(plan.prompts)
        for f in blocking:
            for drug in sorted(_lower(f.drugs) & dropped):
                text = _self_check_text(visit, started[drug].drug, f)
                if text not in prompts:
                    prompts.append(text)
        plan = plan.model_copy(
            update={
                "medications": [m for m in plan.medications if m.drug.strip().lower() not in dropped],
                "prompts": prompts,
            }
        )
    return plan


def _warned_starts_explained(visit: Visit, plan: Plan, started: dict, findings: list) -> Plan:
    """A start the checker warns about stays (the guideline calls for it), and the plan says why it was chosen."""
    rule = knowledge()["rules"]["self_check_warned_start"]
    lang = "zh" if visit.language == "zh" else "en"
    prompts = list(plan.prompts)
    for f in findings:
        for drug in sorted(_lower(f.drugs) & started.keys()) if f.severity == "warning" else []:
            order = started[drug]
            text = rule[lang].format(drug=order.drug, message=f.message, why=order.reason)
            if text not in prompts:
                prompts.append(text)
    return plan.model_copy(update={"prompts": prompts}) if len(prompts) != len(plan.prompts) else plan


def _lower(drugs: list[str]) -> set[str]:
    return {d.strip().lower() for d in drugs}


def _self_check_text(visit: Visit, drug: str, finding) -> str:
    rule = knowledge()["rules"]["self_check_not_started"]
    lang = "zh" if visit.language == "zh" else "en"
    return f"{rule[lang].format(drug=drug, message=finding.message)} ({finding.source})"


def _plan(visit: Visit, region: str) -> Plan:
    """The guideline's plan before it is checked against itself."""
    facts = derive(visit, region)
    if facts.diabetes_status != "diabetes":  # nothing to treat, or a diagnosis to confirm first
        b = PlanBuilder(visit, facts, region, None)
        _safety_stops(b)
        return plan_without_diabetes(b)
    goal, goal_reason = glycaemic_goal(visit, region, facts)
    b = PlanBuilder(visit, facts, region, goal)
    _safety_stops(b)
    if facts.pregnant:
        _pregnancy(b)
    elif facts.diabetes_type == "1":
        _type1(b)
    else:
        _type2(b)
    _cardiovascular(b)
    _cautions(b)
    at_goal = facts.hba1c is not None and (goal is None or facts.hba1c < goal)
    orders = b.orders("at_goal_continue" if at_goal else "continue_current")
    changes = {o.drug_class for o in orders if o.action != "continue"}
    started = {o.drug_class for o in orders if o.action == "start"}
    kept = {o.drug_class for o in orders if o.action != "stop"}
    stopped = {o.drug_class for o in orders if o.action == "stop"} - kept
    labs = labs_due(visit, region, changes=changes, started=started, stopped=stopped, facts=facts)
    changing = bool(changes & GLUCOSE_LOWERING_CLASSES) or not at_goal
    return Plan(
        treatment=treatment_text(b, goal_reason, orders, changing),
        medications=orders,
        labs=labs,
        prompts=b.prompts,
        hba1c_goal=goal,
    )
