"""Regimen-wide checks: unknown drugs, dose ceilings, duplicates, allergies, type 1 without insulin,
SGLT2i with a sharp insulin cut, over-basalisation. Messages, sources and limits: rules.yaml."""

from __future__ import annotations

import re
from typing import Any

from diaguide.drugs import classes as drug_classes
from diaguide.drugs.formulary import ingredients
from diaguide.knowledge.conditions import Facts
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Allergy, Finding
from diaguide.safety.dose import DoseAmount
from diaguide.safety.regimen import Regimen
from diaguide.safety.rules import language_of, render, rules_data


def _finding(rule_id: str, spec: dict[str, Any], drugs: list[str], message: str) -> Finding:
    return Finding(rule_id=rule_id, severity=spec["severity"], drugs=drugs, message=message, source=spec["source"])


def unknown_drugs(regimen: Regimen, facts: Facts) -> list[Finding]:
    """Plan lines the formulary does not know: an info finding each, never silence."""
    spec = rules_data()["checks"]["unknown_drug"]
    words = rules_data()["class_words"]
    out, seen = [], set()
    for e in regimen.plan:
        if e.known or not e.label or e.label in seen:
            continue
        seen.add(e.label)
        if e.class_only:
            msg = render(words["message"], facts, e, drug_class=e.drug_class)
            out.append(
                Finding(
                    rule_id="class_only",
                    severity=words["severity"],
                    drugs=[e.label],
                    message=msg,
                    source=words["source"],
                )
            )
        else:
            out.append(_finding("unknown_drug", spec, [e.label], render(spec["message"], facts, e)))
    return out


def _limits(amount: DoseAmount, daily_max: float | None, weekly_max: float | None) -> list[tuple[float, float, str]]:
    """(amount to compare, maximum, period shown) for a dose against the drug's ceilings."""
    if amount.period == "week":
        return [(amount.amount, weekly_max, "week")] if weekly_max else []
    if amount.period == "day":
        if daily_max:
            return [(amount.amount, daily_max, "day")]
        # a weekly-only drug written per day ("dulaglutide 1.5 mg qd") is seven weekly doses
        return [(amount.amount * 7, weekly_max, "week")] if weekly_max else []
    # no frequency written: one administration may be a daily or a weekly dose
    ceilings = [m for m in (daily_max, weekly_max) if m]
    return [(amount.amount, max(ceilings), "dose")] if ceilings else []


def doses(regimen: Regimen, facts: Facts, region: str) -> list[Finding]:
    """Plan doses above the formulary maximum (per day, or per week for weekly drugs)."""
    checks = rules_data()["checks"]
    far = checks["dose_far_above_max"]
    out = []
    for e in regimen.plan_active():
        amount = e.amount()
        if amount is None or e.drug is None:
            continue
        for total, maximum, period in _limits(amount, e.drug.max_daily(region), e.drug.max_weekly_dose):
            if total <= maximum:
                continue
            rule_id = "dose_far_above_max" if total >= far["factor"] * maximum else "dose_above_max"
            shown = f"{maximum:g} {e.drug.dose_unit}/{period}"
            dose = f"{total:g} {e.drug.dose_unit}/{period}" if period != "dose" else amount.describe()
            msg = render(checks[rule_id]["message"], facts, e, maximum=shown, dose=dose)
            out.append(_finding(rule_id, checks[rule_id], [e.label], msg))
    return out


def duplicates(regimen: Regimen, facts: Facts) -> list[Finding]:
    """Two drugs of one class, or classes that should not be combined, in the regimen after this plan."""
    data = rules_data()["duplicates"]
    active = regimen.active()
    plan_keys = {e.key for e in regimen.plan_active()}
    out: list[Finding] = []
    same = data["same_class"]
    for drug_class in same["classes"]:
        members = [e for e in active if e.drug_class == drug_class]
        labels = list(dict.fromkeys(e.label for e in members))
        # two different drugs of the class, or one ingredient ordered on two plan lines (Janumet + metformin)
        if len(labels) > 1 and plan_keys & {e.key for e in members}:
            msg = render(same["message"], facts, drugs=" + ".join(labels), drug_class=drug_class)
            out.append(_finding(f"duplicate.{drug_class}", same, labels, msg))
    for pair in data["pairs"]:
        a = [e for e in active if e.drug_class in pair["a"]]
        b = [e for e in active if e.drug_class in pair["b"]]
        if a and b and plan_keys & {e.key for e in a + b}:
            labels = list(dict.fromkeys(e.label for e in a + b))
            out.append(
                _finding(
                    f"duplicate.{pair['id']}", pair, labels, render(pair["message"], facts, drugs=" + ".join(labels))
                )
            )
    spec = rules_data()["checks"]["plan_listed_twice"]
    lines: dict[tuple[str, str], int] = {}
    for e in regimen.plan:
        if e.known:
            key = (e.key, " ".join(e.label.lower().split()))
            lines[key] = lines.get(key, 0) + 1
    for e in regimen.plan:
        key = (e.key, " ".join(e.label.lower().split()))
        if e.known and lines.get(key, 0) > 1:
            lines[key] = 0
            out.append(_finding("plan_listed_twice", spec, [e.label], render(spec["message"], facts, e)))
    return out


def _mentions(text: str, term: str) -> bool:
    """`term` in `text`; ASCII terms as words (a plural "s" allowed), so "arb" is not found in "carbamazepine"."""
    if term.isascii():
        return re.search(rf"(?<![a-z0-9]){re.escape(term)}s?(?![a-z0-9])", text) is not None
    return term in text


def _allergy_classes(allergy: Allergy) -> set[str]:
    """Classes the allergy names as a whole: its own `drug_class`, or an allergy term of drugs/classes.yaml in its
    text."""
    text = allergy.substance.lower()
    named = {allergy.drug_class} if allergy.drug_class and allergy.drug_class != "other" else set()
    named |= {c for c, terms in drug_classes.allergy_terms().items() if any(_mentions(text, t.lower()) for t in terms)}
    return named


def allergies(regimen: Regimen, facts: Facts, visit_allergies: list[Allergy]) -> list[Finding]:
    """Plan drugs the patient is allergic or intolerant to: by substance, by class, and across classes."""
    spec = rules_data()["allergy"]
    zh = language_of(facts) == "zh"
    out: list[Finding] = []
    for allergy in visit_allergies:
        if not isinstance(allergy.substance, str) or not allergy.substance.strip():
            continue
        substance_drugs = {d.name for d in ingredients(allergy.substance)}
        substance_classes = {d.drug_class for d in ingredients(allergy.substance)} - {"other"}
        named_classes = _allergy_classes(allergy)
        words = f"{allergy.substance} {allergy.reaction or ''}".lower()
        intolerance = any(t in words for t in spec["intolerance_terms"])
        reaction = (f"（{allergy.reaction}）" if zh else f" ({allergy.reaction})") if allergy.reaction else ""
        for e in regimen.plan_active():
            direct = e.key in substance_drugs or (e.known and e.drug_class in named_classes)
            if direct:
                severity = spec["intolerance_severity"] if intolerance else spec["severity"]
                template = spec["intolerance_message"] if intolerance else spec["message"]
                msg = render(template, facts, e, substance=allergy.substance, reaction=reaction)
                rule = "intolerance" if intolerance else "allergy"
                out.append(
                    Finding(rule_id=rule, severity=severity, drugs=[e.label], message=msg, source=spec["source"])
                )
                continue
            if e.known and e.drug_class in substance_classes and e.drug_class != "other":
                msg = render(spec["same_class_message"], facts, e, substance=allergy.substance, reaction=reaction,
                             drug_class=e.drug_class)  # fmt: skip
                out.append(
                    Finding(
                        rule_id="allergy.same_class",
                        severity="warning",
                        drugs=[e.label],
                        message=msg,
                        source=spec["source"],
                    )
                )
                continue
            for cross in spec["cross"]:
                if e.drug_class not in cross["classes"]:
                    continue
                by_substance = any(_mentions(allergy.substance.lower(), s.lower()) for s in cross.get("substances", []))
                by_class = bool(set(cross.get("allergy_classes", [])) & (named_classes | substance_classes))
                if cross.get("angioedema_only") and "angioedema" not in words and "血管性水肿" not in words:
                    continue
                if by_substance or by_class:
                    out.append(_finding("allergy.cross", cross, [e.label], render(cross["message"], facts, e)))
                    break
    return out


def type1_without_insulin(regimen: Regimen, facts: Facts) -> list[Finding]:
    """Type 1 diabetes with glucose-lowering drugs but no insulin left in the regimen."""
    if facts.diabetes_type != "1":
        return []
    active = regimen.active()
    lowering = [e for e in active if e.drug_class in GLUCOSE_LOWERING_CLASSES]
    plan_lowering = [e for e in regimen.plan_active() if e.drug_class in GLUCOSE_LOWERING_CLASSES]
    if not plan_lowering or any(e.is_insulin for e in lowering + active):
        return []
    spec = rules_data()["checks"]["type1_no_insulin"]
    labels = list(dict.fromkeys(e.label for e in plan_lowering))
    return [_finding("type1_no_insulin", spec, labels, render(spec["message"], facts, drugs=", ".join(labels)))]


def sglt2i_insulin_cut(regimen: Regimen, facts: Facts) -> list[Finding]:
    """An SGLT2i in the regimen while the plan cuts an insulin dose by more than the allowed fraction."""
    sglt2 = [e for e in regimen.active() if e.drug_class == "sglt2i"]
    if not sglt2:
        return []
    spec = rules_data()["checks"]["sglt2i_insulin_cut"]
    out = []
    for e in regimen.plan:
        if e.drug_class not in drug_classes.INSULIN_CLASSES:
            continue
        before = regimen.current_of(e.key)
        old = before.daily() if before else None
        new = 0.0 if e.action == "stop" else e.daily()
        if old is None or new is None or old <= 0:
            continue
        if (old - new) / old > spec["fraction"] + 1e-9:
            msg = render(
                spec["message"], facts, e, before=f"{old:g} U/day", after=f"{new:g} U/day", sglt2i=sglt2[0].label
            )
            out.append(_finding("sglt2i_insulin_cut", spec, [e.label, sglt2[0].label], msg))
    return out


def over_basalisation(regimen: Regimen, facts: Facts) -> list[Finding]:
    spec = rules_data()["checks"]["basal_over_basalisation"]
    if not facts.weight_kg:
        return []
    out = []
    for e in regimen.plan_active():
        daily = e.daily() if e.drug_class == "basal_insulin" else None
        if daily is not None and daily / facts.weight_kg > spec["u_per_kg"]:
            per_kg = f"{daily / facts.weight_kg:.2f}"
            out.append(
                _finding("basal_over_basalisation", spec, [e.label], render(spec["message"], facts, e, per_kg=per_kg))
            )
    return out
