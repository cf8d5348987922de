"""The Plan for a visit with no diabetes on record: the engine plans diabetes care, nothing else.

A record can reach DiaGuide without diabetes (a lipid clinic patient in a FHIR feed, a screening
visit). Proposing metformin, a GLP-1 RA or a statin "for diabetes" there is a prescribing error,
so this module decides instead (ADA 2025 §2, §3):

- no diabetes: say so, and that the engine is for diabetes care; at most screening labs;
- prediabetes: lifestyle programme; metformin only as a consideration for the patients ADA names
  (ages 25-59 with BMI >=35, or prior gestational diabetes), never as an order;
- diagnostic labs (HbA1c >=6.5%, fasting glucose >=126 mg/dL) or glucose-lowering drugs without
  a diagnosis: "probable undiagnosed diabetes: confirm", with the confirmation tests.

Current medications are continued unchanged, after the contraindication stops guideline.py
applies to every patient.
"""

from __future__ import annotations

from diaguide.knowledge.conditions import diagnostic_labs
from diaguide.knowledge.monitoring import screening_labs
from diaguide.knowledge.plan_builder import MG_DL_PER_MMOL_L, PlanBuilder
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Plan


def _lab_text(b: PlanBuilder, which: list[str], cut_offs: bool) -> str:
    """`HbA1c 7.1% (>=6.5%), fasting glucose 140 mg/dL (>=126)` in the visit's language."""
    f, zh = b.f, b.lang == "zh"
    parts = []
    for key in which:
        if key == "hba1c" and f.hba1c is not None:
            limit = b.t("diabetes_hba1c_at_least")
            cut = (f"（≥{limit:g}%）" if zh else f" (>={limit:g}%)") if cut_offs else ""
            parts.append(f"HbA1c {f.hba1c:g}%{cut}")
        elif key == "fpg" and f.fpg is not None:
            limit = b.t("diabetes_fpg_at_least")
            if zh:
                cut = f"（≥{limit / MG_DL_PER_MMOL_L:.1f}）" if cut_offs else ""
                parts.append(f"空腹血糖 {f.fpg / MG_DL_PER_MMOL_L:.1f} mmol/L{cut}")
            else:
                parts.append(f"fasting glucose {f.fpg:g} mg/dL" + (f" (>={limit:g})" if cut_offs else ""))
        elif key == "glucose" and f.glucose is not None:
            parts.append(f"血糖 {f.glucose / MG_DL_PER_MMOL_L:.1f} mmol/L" if zh else f"glucose {f.glucose:g} mg/dL")
    return ("、" if zh else ", ").join(parts)


def _prevention_criteria(b: PlanBuilder) -> str:
    """Why metformin may be considered in prediabetes (ADA 2025 Rec 3.12); empty when it may not."""
    f, zh = b.f, b.lang == "zh"
    if f.pregnant or b.active("metformin"):
        return ""
    met = []
    young = f.age is not None and b.t("prevention_metformin_min_age") <= f.age <= b.t("prevention_metformin_max_age")
    if young and f.bmi is not None and f.bmi >= b.t("prevention_metformin_bmi"):
        met.append(f"{f.age}岁、BMI {f.bmi:g}" if zh else f"age {f.age} and BMI {f.bmi:g}")
    if f.prior_gdm:
        met.append("妊娠期糖尿病史" if zh else "prior gestational diabetes")
    return ("、" if zh else "; ").join(met)


def _evidence(b: PlanBuilder) -> str:
    """The codes and labs that say prediabetes: ` (R73.03; HbA1c 5.9%)`."""
    f = b.f
    codes = [c for c in b.visit.icd10_codes() if c.startswith("R73.0")]
    labs = [x for x in (f"HbA1c {f.hba1c:g}%" if f.hba1c is not None else "", _lab_text(b, ["fpg"], False)) if x]
    said = "; ".join(dict.fromkeys(codes + labs))
    if not said:
        return ""
    return f"（{said}）" if b.lang == "zh" else f" ({said})"


def plan_without_diabetes(b: PlanBuilder) -> Plan:
    """The Plan for a visit whose facts say `diabetes_status` is not `diabetes`."""
    f, zh = b.f, b.lang == "zh"
    if f.pregnant:
        b.stop(("statin", "acei", "arb"), "pregnancy_stop_cv")
    found = diagnostic_labs(f.hba1c, f.fpg, b.region)
    status = f.diabetes_status
    if status == "unconfirmed":
        if len(found) >= 2:
            b.prompt("undiagnosed_two_tests", found=_lab_text(b, found, True))
        elif found:
            b.prompt("undiagnosed_labs", found=_lab_text(b, found, True))
        else:
            drugs = [m.drug for m, c in b.current if c in GLUCOSE_LOWERING_CLASSES]
            b.prompt("undiagnosed_treated", drugs=", ".join(drugs))
        very_high = f.hba1c is not None and f.hba1c > b.t("insulin_hba1c_above")
        if very_high or (f.glucose is not None and f.glucose >= b.t("insulin_glucose_at_least")):
            b.prompt("undiagnosed_severe", found=_lab_text(b, ["hba1c", "glucose"], False))
        lead = b.prompts[0]
    elif status == "prediabetes":
        lead = b.say("prediabetes_lifestyle", evidence=_evidence(b))
        criteria = _prevention_criteria(b)
        if criteria:
            b.prompt("prediabetes_metformin", criteria=criteria)
    else:
        shown = _lab_text(b, ["hba1c", "fpg"], False)
        none_on_file = "；无HbA1c或空腹血糖结果" if zh else "; no HbA1c or fasting glucose on file"
        labs = (f"（{shown}）" if zh else f" ({shown})") if shown else none_on_file
        lead = b.say("no_diabetes", labs=labs)
    orders = b.orders("unconfirmed_continue" if status == "unconfirmed" else "continue_current")
    parts = [lead[:1].upper() + lead[1:].rstrip("。.") + ("。" if zh else ".")]
    if orders:
        verbs = {"continue": "继续", "stop": "停用", "adjust": "调整"} if zh else {}
        steps = [f"{verbs.get(o.action, o.action)} {o.drug}" for o in orders]
        parts.append(
            ("目前用药：" + "；".join(steps) + "。") if zh else ("Current medications: " + "; ".join(steps) + ".")
        )
    labs = screening_labs(b.visit, b.region, f, confirmed=len(found) >= 2)
    return Plan(
        treatment="".join(parts) if zh else " ".join(parts),
        medications=orders,
        labs=labs,
        prompts=b.prompts,
        hba1c_goal=None,
    )
