"""The generic engine behind rules.yaml: patient conditions x plan drugs -> findings.

The rules are data (thresholds, drugs, messages, sources); this module only knows how to test
a `when` block against the patient's facts (knowledge/conditions.py, shared with the guideline
engine so both read a record the same way) and one plan drug.
"""

from __future__ import annotations

from typing import Any

from diaguide.drugs import classes as drug_classes
from diaguide.errors import ConfigError
from diaguide.knowledge.conditions import Facts
from diaguide.knowledge.text_facts import cite_all, evidence_for
from diaguide.records.schema import Evidence, Finding
from diaguide.safety.data import RULES_PATH, load_yaml, rules_data
from diaguide.safety.regimen import Entry, Regimen

__all__ = ["RULES_PATH", "contraindications", "holds", "load_yaml", "render", "rules_data", "targets", "template"]

DEFAULT_ACTIONS = ("start", "continue", "adjust")


def alt_uln() -> float:
    return float(rules_data()["settings"]["alt_uln"])


def targets(spec: dict[str, Any], entry: Entry) -> bool:
    """Whether a rule's `drugs` / `classes` / `class_groups` / `tags` selection names this drug."""
    if entry.drug is not None and entry.drug.name in (spec.get("drugs") or ()):
        return True
    if entry.drug_class in (spec.get("classes") or ()):
        return True
    if drug_classes.in_groups(entry.drug_class, spec.get("class_groups") or ()):
        return True
    return bool(set(entry.tags) & set(spec.get("tags") or ()))


def holds(when: dict[str, Any] | None, facts: Facts, entry: Entry | None = None) -> bool:
    """True when every condition of a `when` block holds for this patient (and drug)."""
    return all(_holds_one(key, want, facts, entry) for key, want in (when or {}).items())


def _has(facts: Facts, name: str) -> bool:
    """A fact of conditions.Facts, or a safety-only condition of rules.yaml."""
    return bool(getattr(facts, name, False)) or name in getattr(facts, "extra", ())


def _holds_one(key: str, want: Any, facts: Facts, entry: Entry | None) -> bool:
    egfr = facts.egfr
    if key == "egfr_below":
        return egfr is not None and egfr < want
    if key == "egfr_at_least":
        return egfr is not None and egfr >= want
    if key == "egfr_at_most":
        return egfr is not None and egfr <= want
    if key == "creatinine_above":
        return facts.creatinine is not None and facts.creatinine > want
    if key == "alt_uln_above":
        return facts.alt is not None and facts.alt > want * alt_uln()
    if key == "age_at_least":
        return facts.age is not None and facts.age >= want
    if key == "facts":
        return all(_has(facts, name) for name in want)
    if key == "any_facts":
        return any(_has(facts, name) for name in want)
    if key == "diabetes_type":
        return facts.diabetes_type == str(want)
    if key in ("intolerant", "text_allergy"):
        classes = facts.intolerant_classes if key == "intolerant" else facts.text_allergy_classes
        return entry is not None and (entry.drug_class in classes) == bool(want)
    if key == "lab_missing":
        if want == "egfr":  # creatinine on file is enough to judge kidney function
            return facts.egfr is None and facts.creatinine is None
        return getattr(facts, want, None) is None
    if key == "daily_dose_above":
        daily = entry.daily() if entry is not None else None
        return daily is not None and daily > want
    if key == "daily_dose_unknown_or_above":
        amount = entry.amount() if entry is not None else None
        if amount is None or amount.period != "day":
            return True  # one written administration without a frequency cannot confirm a daily total
        return amount.amount > want
    if key == "hba1c_below":
        return facts.hba1c is not None and facts.hba1c < want
    if key == "any":
        return any(holds(block, facts, entry) for block in want)
    raise ConfigError(f"unknown condition {key!r}", source=str(RULES_PATH))


# `when` keys -> the Facts fields whose words from the notes a finding quotes
_WHEN_EVIDENCE = {
    "egfr_below": ("egfr",),
    "egfr_at_least": ("egfr",),
    "egfr_at_most": ("egfr",),
    "hba1c_below": ("hba1c",),
    "intolerant": ("intolerant_classes",),
    "text_allergy": ("allergy_classes",),
}


def rule_evidence(when: dict[str, Any] | None, facts: Facts) -> list[Evidence]:
    """The words from the notes that a rule's `when` rests on (facts read in text, values written there)."""
    names: list[str] = []
    for key, want in (when or {}).items():
        if key in ("facts", "any_facts"):
            names += [n for n in want if _has(facts, n)]
        elif key == "any":
            return [e for block in want if holds(block, facts) for e in rule_evidence(block, facts)]
        names += _WHEN_EVIDENCE.get(key, ())
    return evidence_for(getattr(facts, "evidence", {}) or {}, names)


# Words render() fills in, in the visit's language.
_WORDS = {
    "en": {"missing": "not on file", "estimated": " (estimated from creatinine)", "unknown": "unknown",
           "the_dose": "the dose", "current": " (A current medication the plan does not address.)"},
    "zh": {"missing": "无结果", "estimated": "（由肌酐估算）", "unknown": "未知",
           "the_dose": "该剂量", "current": "（方案未涉及的目前用药。）"},
}  # fmt: skip


def language_of(facts: Facts) -> str:
    """The language findings are written in: Chinese for a Chinese visit, else English."""
    return "zh" if getattr(facts, "language", "en") == "zh" else "en"


def word(facts: Facts, key: str) -> str:
    return _WORDS[language_of(facts)][key]


def template(message: str | dict[str, str], facts: Facts) -> str:
    """A message template in the visit's language: YAML gives `{en: ..., zh: ...}` (or one string)."""
    if isinstance(message, dict):
        return message.get(language_of(facts)) or message["en"]
    return message


def _fmt(value: float | None, digits: int = 1, missing: str = "not on file") -> str:
    if value is None:
        return missing
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def render(message: str | dict[str, str], facts: Facts, entry: Entry | None = None, **extra: str) -> str:
    """Fill a rule message's placeholders in the visit's language; an unknown placeholder is left as written."""
    missing = word(facts, "missing")
    egfr = _fmt(facts.egfr, missing=missing)
    if facts.egfr is not None and facts.egfr_estimated:
        egfr += word(facts, "estimated")
    amount = entry.amount() if entry is not None else None
    values = {
        "drug": entry.label if entry is not None else "",
        "egfr": egfr,
        "creatinine": _fmt(facts.creatinine, 2, missing),
        "alt": _fmt(facts.alt, 0, missing),
        "age": str(facts.age) if facts.age is not None else word(facts, "unknown"),
        "hba1c": _fmt(facts.hba1c, missing=missing),
        "dose": amount.describe() if amount else word(facts, "the_dose"),
        **extra,
    }

    class _Keep(dict):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return template(message, facts).format_map(_Keep(values))


def contraindications(regimen: Regimen, facts: Facts, region: str) -> list[Finding]:
    """Findings of rules.yaml's `rules` for every plan drug that is not stopped, and for every
    current drug the plan leaves in place without mentioning it (the patient keeps taking it)."""
    carried = regimen.carried_over()
    findings: list[Finding] = []
    for rule in rules_data().get("rules") or []:
        if rule.get("regions") and region not in rule["regions"]:
            continue
        actions = rule.get("actions") or DEFAULT_ACTIONS
        for entry in regimen.plan_active() + carried:
            if entry.action not in actions or not targets(rule, entry):
                continue
            if not holds(rule.get("when"), facts, entry):
                continue
            if rule.get("unless_reduced") and regimen.reduced(entry):
                continue
            message = render(rule["message"], facts, entry)
            if entry.origin == "current":
                message += word(facts, "current")
            evidence = rule_evidence(rule.get("when"), facts)
            if evidence:
                message += f" [{cite_all(evidence, language_of(facts))}]"
            findings.append(
                Finding(
                    rule_id=rule["id"],
                    severity=rule["severity"],
                    drugs=[entry.label],
                    message=message,
                    source=rule["source"],
                    evidence=evidence,
                )
            )
    return findings
