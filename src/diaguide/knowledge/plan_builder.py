"""The Plan under construction for one visit: one order per current drug, one per new class.

knowledge/guideline.py decides; this module keeps the decisions consistent (a drug stopped
is not continued, a class the patient cannot take is not started), names the drugs through
the formulary, words every reason from guideline.yaml in the visit's language, and writes the
treatment text.
"""

from __future__ import annotations

import re
from typing import Any

from diaguide.drugs import classes as drug_classes
from diaguide.drugs.classes import INSULIN_CLASSES, NON_INSULIN_CLASSES
from diaguide.drugs.formulary import lookup
from diaguide.knowledge.conditions import Facts, knowledge, medication_class, region_config, threshold
from diaguide.knowledge.text_facts import cite, cite_all, evidence_for
from diaguide.records.schema import DRUG_CLASSES, GLUCOSE_LOWERING_CLASSES, Evidence, MedicationOrder, Visit

MG_DL_PER_MMOL_L = 18.016  # glucose (docs/clinical.md, units)


def drug_display_name(generic: str, name_zh: str, language: str) -> str:
    """The name to write for a drug: the formulary's, in the visit's language."""
    drug = lookup(generic)  # None when the formulary lacks it: guideline.yaml carries both names
    if language == "zh":
        return (drug.names_zh[0] if drug and drug.names_zh else None) or name_zh
    return drug.name if drug else generic


def dose_number(dose: str | None) -> tuple[float, str] | None:
    """`0.5 mg` -> (0.5, "mg"); None when the dose does not start with a number."""
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(.*)", dose or "")
    return (float(m.group(1)), m.group(2).strip()) if m else None


def _scaled(dose: str | None, factor: float, max_cut: float | None = None) -> str | None:
    """`20 U` * 0.85 -> `17 U`; None when the dose is not a number.

    A lowered dose stays lower after rounding (`3 U` * 0.85 -> `2.6 U`, not `3 U`) and, with
    `max_cut`, is cut by no more than that fraction (insulin next to an SGLT2i: ketoacidosis).
    """
    parsed = dose_number(dose)
    if parsed is None:
        return None
    old, unit = parsed
    value = old * factor
    if max_cut is not None:
        value = max(value, old * (1 - max_cut))
    whole = round(value)
    lower_still = whole < old or factor >= 1
    within_cut = max_cut is None or whole >= old * (1 - max_cut) - 1e-9
    if value >= 2 and lower_still and within_cut:
        return f"{whole:.0f} {unit}".strip()
    return f"{round(value, 1):g} {unit}".strip()


_PER_DAY = (
    (r"\b(tid|t\.i\.d|three times)\b|每日3次|一日3次|每天3次|日三次", 3),
    (r"\b(bid|b\.i\.d|twice)\b|每日2次|一日2次|每天2次|日两次|早晚", 2),
    (r"\b(qd|once|daily|q\.d|qhs|nightly)\b|每日1次|一日1次|每天1次|每晚|每日一次", 1),
)


def daily_mg(dose: str | None, frequency: str | None) -> float | None:
    """Total mg per day from a dose and frequency (`0.5 g` + `bid` -> 1000); None when unreadable."""
    parsed = dose_number(dose)
    if parsed is None:
        return None
    amount, unit = parsed
    unit_l = unit.lower()
    if unit_l.startswith("g"):
        amount *= 1000
    elif not unit_l.startswith("mg"):
        return None
    text = f"{dose} {frequency or ''}"
    times = next((n for pattern, n in _PER_DAY if re.search(pattern, text, re.IGNORECASE)), None)
    return amount * times if times else None


class PlanBuilder:
    """Collects the decisions for one visit: one order per current drug, one per new class."""

    def __init__(self, visit: Visit, facts: Facts, region: str, goal: float | None):
        self.visit, self.f, self.region, self.goal = visit, facts, region, goal
        self.cfg = region_config(region)
        self.lang = "zh" if visit.language == "zh" else "en"
        self.current = [(m, medication_class(m)) for m in visit.medications]
        self.decided: dict[int, MedicationOrder] = {}
        self.started: dict[str, MedicationOrder] = {}
        self.prompts: list[str] = []
        self.lowered: set[int] = set()  # current drugs whose dose this plan lowers
        self.to_replace = 0  # glucose-lowering classes stopped for safety that another class should replace
        # current drugs the formulary does not know whose names suggest a class ("henagliflozin", "某某格列净")
        self.unlisted = [(m, cls) for m, c in self.current if c == "other" for cls in _suggested_classes(m.drug)]

    # --- words ---
    def t(self, name: str) -> Any:
        return threshold(self.region, name)

    def say(self, rule_id: str, source: str | None = None, **extra: Any) -> str:
        """A rule's text in the visit's language, filled from the facts, with its source (or `source`), and the
        words from the notes it rests on."""
        rule = knowledge()["rules"][rule_id]
        f = self.f
        fields = {
            "egfr": f.egfr, "hba1c": f.hba1c, "goal": self.goal, "bmi": f.bmi, "uacr": f.uacr, "age": f.age,
            "alt": f.alt, "potassium": f.potassium, "glucose": f.glucose, "fpg": f.fpg, "creatinine": f.creatinine,
            "sbp": self.visit.vitals.systolic_bp, "dbp": self.visit.vitals.diastolic_bp, "dose_note": "",
        }  # fmt: skip
        if self.lang == "zh":  # Chinese clinicians read glucose in mmol/L
            for key in ("glucose", "fpg"):
                if fields[key] is not None:
                    fields[key] = round(fields[key] / MG_DL_PER_MMOL_L, 1)
        kidney = [
            f"eGFR {f.egfr:g}" if f.egfr is not None else "",
            f"UACR {f.uacr:g} mg/g" if f.uacr is not None else "",
        ]
        fields["kidney"] = ", ".join(k for k in kidney if k)
        fields.update(extra)
        shown = {k: ("?" if v is None else f"{v:g}" if isinstance(v, float) else v) for k, v in fields.items()}
        quoted = cite_all(self.rule_evidence(rule_id), self.lang)
        text = rule[self.lang].format_map(shown) + (f" [{quoted}]" if quoted else "")
        return f"{text} ({source or rule['source']})"

    def rule_evidence(self, rule_id: str) -> list[Evidence]:
        """The words from the notes that a rule's decision rests on (its `facts` read in text)."""
        rule = knowledge()["rules"][rule_id]
        names = list(rule.get("facts") or [])
        if "{egfr}" in rule[self.lang] or "egfr" in rule_id:
            names.append("egfr")
        if rule_id.startswith("hypo"):
            names += ["recent_hypo", "severe_hypo"]
        return evidence_for(self.f.evidence, names)

    def prompt(self, rule_id: str, source: str | None = None, **extra: Any) -> None:
        text = self.say(rule_id, source=source, **extra)
        if text not in self.prompts:
            self.prompts.append(text)

    def possible(self, e: Evidence) -> None:
        """An uncertain mention in the notes: asked about, not acted on."""
        ask = knowledge()["conditions"].get(e.kind, {}).get("ask") or {}
        what = ask.get(self.lang, e.kind) if isinstance(ask, dict) else e.kind
        self.prompt("possible_fact", what=what, quote=cite(e, self.lang))

    def conflict(self, analyte: str, written: Evidence, coded_value: float, coded_date: Any) -> None:
        """A value in the notes that disagrees with the coded one: both shown, the newer used."""
        label = {"egfr": "eGFR", "hba1c": "HbA1c"}.get(analyte, analyte)
        self.prompt(
            "lab_conflict",
            lab=label,
            text_value=f"{written.value:g}" + (f" ({written.date})" if written.date else ""),
            quote=cite(written, self.lang),
            coded_value=f"{coded_value:g}",
            coded_date=str(coded_date or "?"),
        )

    # --- state ---
    def meds_of(self, *classes: str, name: str | None = None) -> list[int]:
        return [
            i
            for i, (m, c) in enumerate(self.current)
            if c in classes and (name is None or re.search(name, m.drug, re.IGNORECASE))
        ]

    def active(self, *classes: str) -> bool:
        """On a drug of the class that is not being stopped, or starting one."""
        kept = any(
            self.decided.get(i, None) is None or self.decided[i].action != "stop" for i in self.meds_of(*classes)
        )
        return kept or any(c in self.started for c in classes)

    def kept(self, *classes: str) -> set[str]:
        """Classes of the current drugs that the plan keeps (not stopped, not newly started)."""
        return {
            c
            for i, (_m, c) in enumerate(self.current)
            if c in classes and not (i in self.decided and self.decided[i].action == "stop")
        }

    def stopped(self, cls: str) -> bool:
        return any(self.decided.get(i) and self.decided[i].action == "stop" for i in self.meds_of(cls))

    # --- decisions ---
    def order(
        self,
        i: int,
        action: str,
        reason: str,
        dose: str | None = None,
        freq: str | None = None,
        evidence: list[Evidence] | None = None,
    ) -> None:
        med, cls = self.current[i]
        self.decided[i] = MedicationOrder(
            drug=med.drug,
            drug_class=cls if cls in DRUG_CLASSES else "other",
            action=action,
            dose=dose or med.dose,
            frequency=freq or med.frequency,
            reason=reason,
            evidence=evidence or [],
        )

    def stop(self, classes: tuple[str, ...] | list[str], rule_id: str, name: str | None = None, **extra: Any) -> None:
        for i in self.meds_of(*classes, name=name):
            if i not in self.decided or self.decided[i].action != "stop":
                reason = self.say(rule_id, drug=self.current[i][0].drug, **extra)
                self.order(i, "stop", reason, evidence=self.rule_evidence(rule_id))

    def adjust(
        self, classes: tuple[str, ...] | list[str], rule_id: str, factor: float | None = None, **extra: Any
    ) -> bool:
        """Adjust the class's current drugs not yet decided; `factor` < 1 lowers the dose."""
        done = False
        for i in self.meds_of(*classes):
            if i in self.decided:
                continue
            if factor is not None and factor < 1:
                self.lower(i, rule_id, factor, **extra)
            else:
                self.order(i, "adjust", self.say(rule_id, **extra), evidence=self.rule_evidence(rule_id))
            done = True
        return done

    def lower(self, i: int, rule_id: str, factor: float, **extra: Any) -> None:
        """Lower one current drug's dose; insulin by at most `insulin_max_cut` (SGLT2i ketoacidosis)."""
        med, cls = self.current[i]
        max_cut = self.t("insulin_max_cut") if cls in INSULIN_CLASSES else None
        reason = self.say(rule_id, **extra)
        self.order(i, "adjust", reason, dose=_scaled(med.dose, factor, max_cut), evidence=self.rule_evidence(rule_id))
        self.lowered.add(i)

    def blocked(self, cls: str) -> str | None:
        """The rule that forbids starting this class for this patient, if any."""
        f = self.f
        if cls in f.allergy_classes:
            return "allergy"
        if f.pregnant and cls not in INSULIN_CLASSES:
            return "pregnancy_stop"
        if f.diabetes_type == "1" and cls in NON_INSULIN_CLASSES:
            return "type1_no_oral"
        egfr = f.egfr
        noted = self._blocked_by_notes(cls)
        if noted:
            return noted
        if cls == "metformin":
            if egfr is None:
                return "missing_egfr"
            if egfr < self.t("metformin_start_min_egfr"):
                return "metformin_no_start"
            if f.hepatic_impairment or f.alcohol_abuse:
                return "metformin_liver"
        if cls == "sglt2i":
            if egfr is None:
                return "missing_egfr"
            if egfr < self.t("sglt2i_start_min_egfr") or f.dialysis:
                return "sglt2i_low_egfr"
        if cls in ("glp1ra", "gip_glp1ra", "dpp4i"):
            if f.men2_mtc and cls != "dpp4i":
                return "men2_no_glp1"
            if f.pancreatitis:
                return "pancreatitis_no_incretin"
        if cls == "dpp4i" and self.active("glp1ra", "gip_glp1ra"):
            return "dpp4i_with_glp1"
        if cls == "tzd" and (f.heart_failure or f.hepatic_impairment):
            return "hf_no_tzd"
        if cls == "tzd" and self.active(*INSULIN_CLASSES):
            return "tzd_insulin"
        if cls in ("sulfonylurea", "glinide") and (f.older or f.recent_hypo):
            return "no_su_older"
        if cls == "sulfonylurea" and egfr is not None and egfr < self.t("su_stop_below_egfr"):
            return "su_renal_no_start"
        # a DPP-4i/SGLT2i with a new secretagogue or insulin raises hypoglycaemia (FDA Januvia, Jardiance)
        if cls in ("sulfonylurea", "glinide") and self.active("dpp4i", "sglt2i"):
            return "su_with_dpp4i_sglt2i"
        if (
            cls in (*INSULIN_CLASSES, "sulfonylurea", "glinide")
            and f.recent_hypo
            and f.diabetes_type != "1"
            and not f.pregnant
        ):
            return "hypo_no_new_insulin"
        if cls == "agi" and (f.bowel_disease or f.hepatic_impairment):
            return "acarbose_bowel"
        renal_agi = egfr is not None and egfr < self.t("acarbose_stop_below_egfr")
        if cls == "agi" and (renal_agi or (f.creatinine or 0) > self.t("acarbose_stop_creatinine_above")):
            return "acarbose_renal_stop"
        if cls == "statin" and f.hepatic_impairment:
            return "statin_liver"
        if cls in ("acei", "arb") and f.potassium is not None and f.potassium > 5.5:
            return "hyperkalaemia"
        return None

    def _blocked_by_notes(self, cls: str) -> str | None:
        """Starts ruled out by facts mostly written in the notes (docs/notes.md)."""
        f = self.f
        if cls == "metformin" and f.dialysis:
            return "metformin_dialysis"
        if cls == "sglt2i" and f.dialysis:
            return "sglt2i_low_egfr"
        if cls in f.intolerant_classes:
            return "intolerance_stop"
        if cls in ("glp1ra", "gip_glp1ra") and f.gastroparesis:
            return "glp1_gastroparesis"
        if cls in ("glp1ra", "gip_glp1ra") and f.pregnancy_planning:
            return "planning_glp1_stop"
        if cls in ("sulfonylurea", "glinide") and f.autoimmune_diabetes:
            return "autoimmune_no_su"
        if cls == "sglt2i" and (f.ketoacidosis or f.fournier):
            return "sglt2i_dka_stop" if f.ketoacidosis else "sglt2i_fournier_stop"
        if cls == "tzd" and f.bladder_cancer:
            return "tzd_bladder_cancer"
        lactation_unsafe = cls == "statin" or (
            cls in GLUCOSE_LOWERING_CLASSES and cls not in ("metformin", *INSULIN_CLASSES)
        )
        if f.breastfeeding and lactation_unsafe:
            return "breastfeeding_caution"
        if f.declines_injections and cls in (*INSULIN_CLASSES, "glp1ra", "gip_glp1ra"):
            return "declines_injections"
        return None

    def start(self, cls: str, rule_id: str, agent: str | None = None, dose: str | None = None, **extra: Any) -> bool:
        """Start the class's preferred agent unless the patient has one or a rule forbids it."""
        if self.active(cls) or cls in self.started:
            return False
        covering = next((m for m, suggested in self.unlisted if suggested == cls), None)
        if covering is not None:  # it may already be one: said, not silently doubled
            self.prompt("unlisted_may_cover", drug=covering.drug, cls=drug_classes.name(cls, self.lang))
            return False
        why = self.blocked(cls)
        if why:
            if why in ("missing_egfr", "hypo_no_new_insulin"):
                self.prompt(why)
            elif why == "declines_injections":  # the preference is respected, and said
                spec = self.cfg["agents"][agent or cls]
                self.prompt(why, wanted=drug_display_name(spec["drug"], spec["name_zh"], self.lang))
            elif "short" in knowledge()["rules"][why]:  # a fact from the notes rules it out: say which
                spec = self.cfg["agents"][agent or cls]
                short = knowledge()["rules"][why]["short"][self.lang]
                quoted = cite_all(self.rule_evidence(why), self.lang)
                drug = drug_display_name(spec["drug"], spec["name_zh"], self.lang)
                why_text = f"{short} [{quoted}]" if quoted else short
                self.prompt("notes_no_start", drug=drug, why=why_text, source=knowledge()["rules"][why]["source"])
            return False
        spec = self.cfg["agents"][agent or cls]
        self.started[cls] = MedicationOrder(
            drug=drug_display_name(spec["drug"], spec["name_zh"], self.lang),
            drug_class=cls,
            action="start",
            dose=dose or spec["dose"],
            frequency=spec["freq_zh" if self.lang == "zh" else "freq_en"],
            reason=self.say(rule_id, **extra),
        )
        return True

    def orders(self, continue_rule: str) -> list[MedicationOrder]:
        out = []
        for i, (_med, cls) in enumerate(self.current):
            if i not in self.decided:
                rule = continue_rule if cls in GLUCOSE_LOWERING_CLASSES else "continue_current"
                self.order(i, "continue", self.say(rule))
            out.append(self.decided[i])
        return out + list(self.started.values())


def _suggested_classes(name: str) -> list[str]:
    """The classes a drug name the formulary does not know suggests, by the class words of drugs/classes.yaml
    ("-gliflozin", "格列净", "-gliptin" ...)."""
    words = drug_classes.class_words()
    return [cls for cls, patterns in words.items() if any(re.search(p, name, re.IGNORECASE) for p in patterns)]


_VERBS = {
    "en": {"start": "start", "continue": "continue", "adjust": "adjust", "stop": "stop"},
    "zh": {"start": "起始", "continue": "继续", "adjust": "调整", "stop": "停用"},
}


def treatment_text(b: PlanBuilder, goal_reason: str, orders: list[MedicationOrder], changing: bool) -> str:
    f, zh = b.f, b.lang == "zh"
    if b.goal is None:
        parts = [f"不设HbA1c目标：{goal_reason}。" if zh else f"No HbA1c goal: {goal_reason}."]
    else:
        parts = [
            f"HbA1c控制目标<{b.goal:.1f}%：{goal_reason}。" if zh else f"HbA1c goal <{b.goal:.1f}%: {goal_reason}."
        ]
    if f.hba1c is None:
        parts.append("无HbA1c结果。" if zh else "No HbA1c on file.")
    else:
        at = b.goal is None or f.hba1c < b.goal
        if zh:
            parts.append(f"目前HbA1c {f.hba1c:g}%，{'已达标' if at else '未达标'}。")
        else:
            parts.append(f"Current HbA1c {f.hba1c:g}%: {'at goal' if at else 'above goal'}.")
    verbs = _VERBS[b.lang]
    steps = [
        " ".join(x for x in (verbs[o.action], o.drug, o.dose if o.action != "stop" else None, o.frequency
                             if o.action != "stop" else None) if x)
        for o in orders
    ]  # fmt: skip
    if steps:
        parts.append(("治疗：" + "；".join(steps) + "。") if zh else ("Plan: " + "; ".join(steps) + "."))
    months = 3 if changing else 6
    parts.append(f"{months}个月后复诊。" if zh else f"Review in {months} months.")
    return "".join(parts) if zh else " ".join(parts)
