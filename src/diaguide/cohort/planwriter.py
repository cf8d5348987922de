"""A physician's Decision written out as a `Plan`, in the visit's language.

The treatment text states the HbA1c goal first, then the reading and what changes, the way
a clinic note's "plan" line reads. Orders name concrete drugs with dose, frequency and reason.
"""

from __future__ import annotations

from diaguide.cohort.catalog import spec
from diaguide.cohort.decision import Context, Decision
from diaguide.records.schema import LabOrder, MedicationOrder, Plan
from diaguide.records.units import ANALYTES

# reason code -> (English, Chinese)
REASONS = {
    "continue": ("continue current therapy", "继续原方案"),
    "first_line": ("first-line therapy", "一线用药"),
    "renal_stop": ("eGFR <30, contraindicated", "eGFR<30，禁用"),
    "renal_reduce": ("eGFR 30-45, max 1000 mg/day", "eGFR 30-45，减量"),
    "hf": ("heart failure, SGLT2i benefit", "心衰，SGLT2i获益"),
    "ckd": ("CKD, renal protection", "慢性肾脏病，肾脏保护"),
    "ascvd": ("ASCVD, CV benefit", "动脉粥样硬化性心血管病，心血管获益"),
    "obesity": ("obesity, weight loss", "肥胖，减重"),
    "above_goal": ("HbA1c above goal", "血糖未达标"),
    "titrate": ("HbA1c above goal, up-titrate", "血糖未达标，加量"),
    "titrate_basal": ("FBG above target, titrate", "空腹血糖未达标，调整剂量"),
    "insulin_high_a1c": ("HbA1c markedly high, start insulin", "糖化血红蛋白明显升高，起始胰岛素"),
    "intensive_new": ("new diagnosis HbA1c >=9%, short-term intensive insulin", "新诊断HbA1c≥9%，短期胰岛素强化"),
    "overbasal": ("basal >0.5 U/kg, add prandial", "基础胰岛素>0.5U/kg，加餐时胰岛素"),
    "postprandial": ("postprandial hyperglycaemia", "餐后血糖高"),
    "hypo_reduce": ("hypoglycaemia, reduce dose", "低血糖，减量"),
    "hypo_stop": ("hypoglycaemia risk in older adult, stop", "老年低血糖风险，停用"),
    "beers_glyburide": ("avoid glyburide over 65 (Beers)", "老年人避免格列本脲"),
    "replace_glyburide": ("shorter-acting SU instead of glyburide", "换用短效磺脲类"),
    "duplicate_dpp4i": ("no added benefit with a GLP-1 RA", "与GLP-1受体激动剂合用无获益"),
    "duplicate_su": ("two sulfonylureas, keep one", "两种磺脲类，保留一种"),
    "replace_dpp4i": ("switching to GLP-1 RA", "换用GLP-1受体激动剂"),
    "insulin_replaces_su": ("stop SU when starting premixed insulin", "起始预混胰岛素，停磺脲类"),
    "pregnancy_insulin": ("pregnancy, insulin preferred", "妊娠期，首选胰岛素"),
    "pregnancy_raas": ("pregnancy, ACEi/ARB contraindicated", "妊娠期禁用ACEI/ARB"),
    "pregnancy_statin": ("pregnancy, statin contraindicated", "妊娠期停用他汀"),
    "pregnancy_bp": ("pregnancy, BP control", "妊娠期控制血压"),
    "type1_not_indicated": ("not for type 1 diabetes", "1型糖尿病不适用"),
    "statin_primary": ("diabetes age 40-75, primary prevention", "糖尿病40-75岁，一级预防"),
    "statin_ascvd": ("ASCVD, high-intensity statin", "动脉粥样硬化性心血管病，他汀"),
    "raas_albuminuria": ("albuminuria", "蛋白尿"),
    "bp": ("hypertension", "高血压"),
}
LAB_REASONS = {
    "hba1c_3mo": ("not at goal: recheck in 3 months", "未达标，3个月复查"),
    "hba1c_6mo": ("at goal: every 6 months", "已达标，每6个月复查"),
    "ckd_monitor": ("CKD: monitor eGFR and UACR", "慢性肾脏病，监测肾功能和尿白蛋白"),
    "yearly_kidney": ("yearly kidney screening", "每年肾病筛查"),
    "lipids_statin": ("on statin: yearly lipids", "他汀治疗，复查血脂"),
    "potassium_raas": ("ACEi/ARB with CKD", "ACEI/ARB合并肾病，查血钾"),
    "masld": ("MASLD: liver enzymes", "脂肪肝，查肝功能"),
}
REMARKS = {
    "at_goal": ("At goal, continue current regimen.", "血糖达标，维持原方案。"),
    "lifestyle": ("Reinforce diet/exercise, recheck before intensifying.", "加强饮食运动控制，复查后再调整。"),
    "hypo_education": ("Hypo education, carry glucose.", "低血糖宣教，随身携带糖果。"),
}
LAB_ZH = {
    "hba1c": "糖化血红蛋白",
    "creatinine": "血肌酐",
    "uacr": "尿白蛋白/肌酐比",
    "ldl": "低密度脂蛋白胆固醇",
    "potassium": "血钾",
    "alt": "丙氨酸氨基转移酶",
}


def _t(pair: tuple[str, str], zh: bool) -> str:
    return pair[1] if zh else pair[0]


def write_plan(ctx: Context, d: Decision) -> Plan:
    """The Plan a physician would write for this decision (text in the visit's language)."""
    zh = ctx.zh
    lang = "zh" if zh else "en"
    orders = []
    for o in d.orders.values():
        s = spec(o.key)
        dose, freq = s.dose(o.step, o.units, lang)
        orders.append(
            MedicationOrder(
                drug=s.label(lang, ctx.profile.zh_names),
                drug_class=s.drug_class,
                action=o.action,
                dose=dose,
                frequency=freq,
                reason=_t(REASONS[o.reason], zh),
            )
        )
    labs = [
        LabOrder(loinc=ANALYTES[k].loincs[0], name=LAB_ZH[k] if zh else ANALYTES[k].name, reason=_t(LAB_REASONS[r], zh))
        for k, r in d.labs.items()
    ]
    return Plan(treatment=_treatment(ctx, d, orders), medications=orders, labs=labs, hba1c_goal=d.goal)


def _treatment(ctx: Context, d: Decision, orders: list[MedicationOrder]) -> str:
    zh = ctx.zh
    prev = f" (prev {ctx.prev_a1c:.1f})" if ctx.prev_a1c is not None and not zh else ""
    if zh and ctx.prev_a1c is not None:
        prev = f"（上次{ctx.prev_a1c:.1f}%）"
    above = ctx.a1c > d.goal
    if zh:
        parts = [f"糖化血红蛋白控制目标<{d.goal:.1f}%。本次{ctx.a1c:.1f}%{prev}，{'未达标' if above else '达标'}。"]
    else:
        parts = [f"HbA1c goal <{d.goal:.1f}%. HbA1c {ctx.a1c:.1f}%{prev}, {'above goal' if above else 'at goal'}."]
    verbs = {"start": ("Start", "加用"), "adjust": ("Adjust", "调整"), "stop": ("Stop", "停用")}
    for o in orders:
        if o.action == "continue":
            continue
        verb = _t(verbs[o.action], zh)
        if zh:
            dose = "" if o.action == "stop" else f"{o.dose} {o.frequency}"
            parts.append(f"{verb}{o.drug}{dose}（{o.reason}）。")
        else:
            dose = "" if o.action == "stop" else f" {o.dose} {o.frequency}"
            parts.append(f"{verb} {o.drug}{dose} ({o.reason}).")
    kept = [o.drug for o in orders if o.action == "continue"]
    if kept:
        parts.append(f"继续{'、'.join(kept)}。" if zh else f"Continue {', '.join(kept)}.")
    parts += [_t(REMARKS[r], zh) for r in dict.fromkeys(d.remarks)]
    months = 3 if above or d.changed() else 6
    parts.append(f"{months}个月后复诊。" if zh else f"F/u {months} mo with labs.")
    return " ".join(parts) if not zh else "".join(parts)
