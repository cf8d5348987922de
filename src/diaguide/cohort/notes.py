"""Free text of a visit the way physicians write it: terse, abbreviated, units mixed.

English notes use clinic shorthand ("T2DM x8y, HbA1c 8.2% (prev 7.6), c/o polyuria") and quote
home glucose in mmol/L or mg/dL; Chinese notes use the compact phrasing of an outpatient
record ("口干多饮3月，血糖控制不佳"). Structured values stay in the Visit's fields; these
strings only describe them, so they never contradict the labs.
"""

from __future__ import annotations

import random

from diaguide.cohort.catalog import spec
from diaguide.cohort.clinical import ckd_stage
from diaguide.cohort.decision import Context

MMOL = 18.016  # mg/dL per mmol/L of glucose (units.py)


def symptoms(ctx: Context, rng: random.Random) -> list[str]:
    """The complaints this visit brings (codes), from glycaemia, complications and hypoglycaemia."""
    out = []
    if ctx.hypo:
        out.append("hypo")
    if ctx.a1c >= 9.0 and rng.random() < 0.6:
        out.append("polyuria")
        if ctx.a1c >= 10.5 and rng.random() < 0.6:
            out.append("weight_loss")
    if ctx.profile.neuropathy and rng.random() < 0.3:
        out.append("numbness")
    return out


def chief_complaint(ctx: Context, found: list[str], rng: random.Random) -> str:
    n = rng.randint(1, 6)
    if ctx.pregnant:
        weeks = (ctx.date - ctx.profile.pregnancy_start).days // 7  # type: ignore[operator]
        return (
            f"孕{weeks}周，血糖监测"
            if ctx.zh
            else rng.choice([f"{weeks}w pregnant, BG review", f"IUP {weeks}/40, DM f/u"])
        )
    if ctx.zh:
        if "hypo" in found:
            return f"反复心慌出汗{n}次，测血糖偏低"
        if "weight_loss" in found:
            return f"口干多饮伴体重下降{rng.randint(2, 6)}kg"
        if "polyuria" in found:
            return rng.choice([f"口干多饮{n}月，血糖控制不佳", f"多尿多饮{n}月"])
        if "numbness" in found:
            return f"双足麻木{n}月"
        return rng.choice(["糖尿病复诊", "血糖控制复查，开药", "定期复诊", "糖尿病随访"])
    if "hypo" in found:
        return rng.choice([f"hypo episodes x{n} past month", "shaky/sweaty spells before lunch"])
    if "weight_loss" in found:
        return f"wt loss {rng.randint(2, 6)}kg, polyuria"
    if "polyuria" in found:
        return rng.choice([f"c/o polyuria, polydipsia x{n}mo", "increased thirst and urination"])
    if "numbness" in found:
        return "numbness/tingling both feet"
    kind = "T1DM" if ctx.type1 else "T2DM"
    return rng.choice(["DM f/u", f"f/u {kind}, med refill", "routine diabetes follow-up", "3-mo f/u, labs reviewed"])


def _meds_text(ctx: Context) -> str:
    lang = "zh" if ctx.zh else "en"
    parts = []
    for m in ctx.state.meds.values():
        s = spec(m.key)
        if s.drug_class in ("acei", "arb", "statin", "other"):
            continue
        dose, freq = s.dose(m.step, m.units, lang)
        parts.append(f"{s.zh}{dose} {freq}" if ctx.zh else f"{s.name} {dose} {freq}")
    if not parts:
        return "未用降糖药" if ctx.zh else "diet only"
    return "，".join(parts) if ctx.zh else ", ".join(parts)


def present_illness(ctx: Context, found: list[str], rng: random.Random) -> str:
    years = max(0, (ctx.date - ctx.profile.diagnosed).days // 365)
    fbg_mg = (28.7 * ctx.a1c - 46.7) * rng.uniform(0.8, 1.05)
    lo, hi = fbg_mg / MMOL - 0.6, fbg_mg / MMOL + 0.8
    if ctx.zh:
        kind = "1型糖尿病" if ctx.type1 else "2型糖尿病"
        text = f"{kind}{years}年，{_meds_text(ctx)}。近期空腹血糖{lo:.0f}-{hi:.0f}mmol/L，糖化血红蛋白{ctx.a1c:.1f}%"
        text += f"（上次{ctx.prev_a1c:.1f}%）。" if ctx.prev_a1c is not None else "。"
        if "hypo" in found:
            text += f"近1月低血糖{rng.randint(1, 4)}次，最低{rng.uniform(2.6, 3.8):.1f}mmol/L。"
        else:
            text += "无低血糖。"
        if "polyuria" in found:
            text += "口干、多饮、多尿明显。"
        if "weight_loss" in found:
            text += "体重下降。"
        if "numbness" in found:
            text += "双足麻木、针刺感。"
        return text
    kind = "T1DM" if ctx.type1 else "T2DM"
    prev = f" (prev {ctx.prev_a1c:.1f})" if ctx.prev_a1c is not None else ""
    text = f"{kind} x{years}y, HbA1c {ctx.a1c:.1f}%{prev}"
    text += ", c/o polyuria/polydipsia" if "polyuria" in found else ""
    text += ", wt loss" if "weight_loss" in found else ""
    text += f". On {_meds_text(ctx)}. "
    # home readings quoted in whichever unit the patient's meter shows
    text += f"Home FBG {lo:.0f}-{hi:.0f} mmol/L. " if rng.random() < 0.4 else f"Home FBG {fbg_mg:.0f}s mg/dL. "
    if "hypo" in found:
        text += f"Reports {rng.randint(1, 4)} hypos, lowest {rng.randint(45, 65)} mg/dL."
    else:
        text += "Denies hypo."
    if "numbness" in found:
        text += " Burning feet at night."
    return text


def past_history(ctx: Context, rng: random.Random) -> str:
    p = ctx.profile
    stage = _stage(ctx)
    raas = next((spec(k) for k in ctx.state.meds if spec(k).drug_class in ("acei", "arb")), None)
    if ctx.zh:
        parts = []
        if p.htn:
            parts.append(f"高血压{ctx.date.year - p.htn_since}年" + (f"，服用{raas.zh}" if raas else ""))
        parts += [
            t
            for flag, t in (
                (p.dyslip, "高脂血症"),
                (stage is not None, f"慢性肾脏病{stage}期"),
                (p.ascvd == "I25.10", "冠心病PCI术后"),
                (p.ascvd == "I69.30", "脑梗死病史"),
                (p.hf, "慢性心力衰竭"),
                (p.masld, "脂肪肝"),
                (p.retinopathy, "糖尿病视网膜病变"),
                (p.neuropathy, "糖尿病周围神经病变"),
            )
            if flag
        ]
        allergy = "、".join(_ZH_ALLERGY.get(s, s) + f"过敏（{_ZH_REACTION.get(r, r)}）" for s, _c, r in p.allergies)
        parts.append(allergy or "否认药物过敏史")
        return "。".join(parts) + "。"
    parts = []
    if p.htn:
        parts.append(f"HTN x{ctx.date.year - p.htn_since}y" + (f" on {raas.name}" if raas else ""))
    parts += [
        t
        for flag, t in (
            (p.dyslip, "HLD"),
            (stage is not None, f"CKD {stage} (eGFR {ctx.egfr:.0f})"),
            (p.ascvd == "I25.10", "CAD s/p PCI"),
            (p.ascvd == "I69.30", "old CVA"),
            (p.hf, "HFrEF"),
            (p.masld, "MASLD"),
            (p.retinopathy, "NPDR"),
            (p.neuropathy, "DPN"),
        )
        if flag
    ]
    allergy = ", ".join(f"{_EN_ALLERGY.get(s, s)} ({r})" for s, _c, r in p.allergies)
    parts.append(f"Allergies: {allergy}" if allergy else "NKDA")
    return ". ".join(parts) + "."


_ZH_ALLERGY = {"sulfonamide antibiotics": "磺胺类", "penicillin": "青霉素", "metformin": "二甲双胍"}
_ZH_REACTION = {"rash": "皮疹", "urticaria": "荨麻疹", "GI intolerance": "胃肠道不耐受"}
_EN_ALLERGY = {"sulfonamide antibiotics": "sulfa", "penicillin": "PCN", "metformin": "metformin"}


def _stage(ctx: Context) -> str | None:
    return ckd_stage(ctx.egfr, ctx.uacr)
