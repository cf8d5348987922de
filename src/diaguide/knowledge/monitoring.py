"""Which laboratory tests are due for a visit, and the patient's glycaemic goal.

A lab is suggested when there is no result on file, or when its next due date (the last
result, from this visit or the summarised history, plus the interval that applies to this
patient) falls before the next review: 3 months while therapy changes or HbA1c is above goal,
6 months when at goal and stable (ADA 2025 §6). Intervals live in monitoring.yaml; goals in
guideline.yaml.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection
from typing import Any

from diaguide import clinical_data
from diaguide.knowledge.conditions import Facts, derive, medication_class, region_config
from diaguide.records import units
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, LabOrder, Visit

MONITORING_YAML = clinical_data.path("knowledge/monitoring.yaml")

# VisitSummary fields that record an earlier result of an analyte.
_HISTORY_FIELD = {
    "hba1c": "hba1c",
    "fasting_glucose": "fasting_glucose",
    "egfr": "egfr",
    "creatinine": "egfr",
    "uacr": "uacr",
    "ldl": "ldl",
}


@functools.cache
def monitoring_knowledge() -> dict[str, Any]:
    return clinical_data.read(MONITORING_YAML)


def _matches(when: dict[str, Any], facts: Facts) -> bool:
    for key, want in when.items():
        if key == "age_below":
            if facts.age is None or facts.age >= want:
                return False
        elif getattr(facts, key) != want:
            return False
    return True


def glycaemic_goal(visit: Visit, region: str = "ada", facts: Facts | None = None) -> tuple[float | None, str]:
    """The HbA1c goal (%) for this patient and why, in the visit's language.

    Returns (None, reason) where the guideline advises against an HbA1c goal (an older adult
    in very poor health under ADA Table 13.1).
    """
    facts = facts or derive(visit, region)
    lang = "zh" if visit.language == "zh" else "en"
    for rule in region_config(region)["goals"]:
        if _matches(rule["when"], facts):
            return rule["goal"], f"{rule[lang]} ({rule['source']})"
    raise AssertionError("guideline.yaml goals must end with a rule that always matches")


def therapy_changed_since_last_hba1c(visit: Visit, facts: Facts) -> bool:
    """A glucose-lowering drug started, stopped or changed after the last HbA1c (or last visit)."""
    now = {c for c in facts.current if c in GLUCOSE_LOWERING_CLASSES}
    if visit.history:
        last = max(visit.history, key=lambda h: h.date)
        before = {medication_class(m) for m in last.medications} & GLUCOSE_LOWERING_CLASSES
        if before != now or any("change" in e.lower() or "调整" in e for e in last.events):
            return True
    since = facts.hba1c_date
    return since is not None and any(
        m.since and m.since > since for c, meds in facts.current.items() if c in GLUCOSE_LOWERING_CLASSES for m in meds
    )


def _last_result(visit: Visit, key: str) -> dt.date | None:
    loincs = units.ANALYTES[key].loincs
    if key in ("egfr", "creatinine"):  # one blood test: eGFR is calculated from creatinine
        loincs = units.EGFR + units.CREATININE
    dates = [lab.date or visit.date for lab in visit.labs if lab.loinc in loincs]
    field = _HISTORY_FIELD.get(key)
    if field:
        dates += [h.date for h in visit.history if getattr(h, field) is not None]
    return max(dates) if dates else None


def _situations(
    visit: Visit, facts: Facts, changing: bool, started: Collection[str], stopped: Collection[str]
) -> set[str]:
    """Names of the monitoring.yaml `when` situations that hold for this patient."""
    stage = facts.ckd_stage or ""
    on_raas = facts.on("acei", "arb") and not {"acei", "arb"} <= set(stopped)
    years = monitoring_knowledge()["thresholds"]["long_term_metformin_years"]["value"]
    on_metformin = facts.on("metformin") and "metformin" not in stopped
    found = {
        "always": True,
        "changing": changing,
        "ckd": facts.ckd,
        "ckd_g4": stage in ("G4", "G5"),
        "ckd_high": stage == "G3b" or (facts.uacr is not None and facts.uacr >= 300),
        "metformin_low_egfr": on_metformin and facts.egfr is not None and facts.egfr < 60,
        "statin_started": "statin" in started,
        "not_pregnant": not facts.pregnant,
        "long_term_metformin": on_metformin and facts.metformin_years is not None and facts.metformin_years >= years,
        "metformin_neuropathy": on_metformin and visit.has_diagnosis("E11.4", "E10.4", "G63"),
        "tzd_started": "tzd" in started,
        "on_tzd": facts.on("tzd") and "tzd" not in stopped,
        "masld": facts.masld,
        "raas_started": bool({"acei", "arb"} & set(started)),
        "raas_ckd": on_raas and facts.ckd,
    }
    return {name for name, holds in found.items() if holds}


def labs_due(
    visit: Visit,
    region: str = "ada",
    changes: Collection[str] = (),
    started: Collection[str] = (),
    stopped: Collection[str] = (),
    facts: Facts | None = None,
) -> list[LabOrder]:
    """Labs to order at this visit (due now or before the next review), each with its reason.

    Args:
        visit: the visit.
        region: `ada` or `cds` (goals differ, hence whether HbA1c is at goal).
        changes: drug classes the plan starts, stops or adjusts at this visit (a therapy change
            shortens the HbA1c interval).
        started: drug classes the plan starts (a new statin, TZD or ACEi/ARB has its own checks).
        stopped: drug classes the plan stops (their monitoring ends).
        facts: the visit's facts when the caller has them already.
    """
    facts = facts or derive(visit, region)
    know = monitoring_knowledge()
    lang = "zh" if visit.language == "zh" else "en"
    goal, _ = glycaemic_goal(visit, region, facts)
    above_goal = facts.hba1c is None or (goal is not None and facts.hba1c >= goal)
    changing = bool(changes) or above_goal or therapy_changed_since_last_hba1c(visit, facts)
    horizon = know["follow_up_days"]["changing" if changing else "stable"]["value"] + know["grace_days"]["value"]
    situations = _situations(visit, facts, changing, started, stopped)

    orders: list[LabOrder] = []
    chosen: dict[str, dict[str, Any]] = {}
    for key, spec in know["labs"].items():
        rule = chosen.get(spec["same_as"]) if "same_as" in spec else None
        if rule is None and "same_as" not in spec:
            rule = next((r for r in spec["intervals"] if r["when"] in situations), None)
        if rule is None:
            continue
        chosen[key] = rule
        analyte = units.ANALYTES[spec["analyte"]]
        last = _last_result(visit, spec["analyte"])
        if last is None:
            when = "尚无结果，请检测" if lang == "zh" else "no result on file: order now"
        else:
            due = last + dt.timedelta(days=rule["days"])
            if due > visit.date + dt.timedelta(days=horizon):
                continue
            if lang == "zh":
                when = f"上次{last.isoformat()}，" + ("现已到期" if due <= visit.date else f"{due.isoformat()}前复查")
            else:
                when = f"last {last.isoformat()}; " + ("due now" if due <= visit.date else f"due by {due.isoformat()}")
        reason = f"{rule[lang]}; {when} ({rule['source']})"
        orders.append(LabOrder(loinc=analyte.loincs[0], name=spec[lang], reason=reason))
    return orders


def screening_labs(
    visit: Visit, region: str = "ada", facts: Facts | None = None, confirmed: bool = False
) -> list[LabOrder]:
    """Diabetes testing for a visit with no diabetes on record (ADA 2025 §2), each with its reason.

    Args:
        visit: the visit.
        region: `ada` or `cds`.
        facts: the visit's facts when the caller has them already.
        confirmed: the record already holds two abnormal tests (no confirmation test needed).
    """
    facts = facts or derive(visit, region)
    know = monitoring_knowledge()
    lang = "zh" if visit.language == "zh" else "en"
    risk = facts.hypertension or facts.dyslipidaemia or facts.ascvd
    age_ok = facts.age is not None and facts.age >= know["thresholds"]["screening_age"]["value"]
    holds = {
        "unconfirmed": facts.diabetes_status == "unconfirmed" and not confirmed,
        "prediabetes": facts.diabetes_status == "prediabetes",
        "prior_gdm": facts.prior_gdm,
        "screen": age_ok or (facts.overweight and risk),
    }
    rule = next((r for r in know["screening"] if holds.get(r["when"])), None)
    if rule is None:
        return []
    # either test screens: the latest HbA1c or fasting glucose sets the next date
    dates = [d for d in (_last_result(visit, "hba1c"), _last_result(visit, "fasting_glucose")) if d]
    last = max(dates) if dates else None
    if (
        last is not None
        and rule["days"]
        and last + dt.timedelta(days=rule["days"]) > visit.date + dt.timedelta(days=know["grace_days"]["value"])
    ):
        return []
    if last is None:
        when = "尚无结果，请检测" if lang == "zh" else "no result on file: order now"
    else:
        when = f"上次{last.isoformat()}" if lang == "zh" else f"last {last.isoformat()}"
    orders = []
    for key in rule["labs"]:
        analyte = units.ANALYTES[key]
        name = {"hba1c": ("HbA1c", "糖化血红蛋白"), "fasting_glucose": ("Fasting plasma glucose", "空腹血糖")}[key]
        reason = f"{rule[lang]}; {when} ({rule['source']})"
        orders.append(LabOrder(loinc=analyte.loincs[0], name=name[lang == "zh"], reason=reason))
    return orders
