"""Drug-drug interactions (knowledge/interactions.yaml) between the plan and the rest of the regimen."""

from __future__ import annotations

from typing import Any

from diaguide import clinical_data
from diaguide.errors import ConfigError
from diaguide.knowledge.conditions import Facts
from diaguide.records.schema import Finding
from diaguide.safety.data import check_message
from diaguide.safety.regimen import Entry, Regimen
from diaguide.safety.rules import holds, load_yaml, render, targets

INTERACTIONS_PATH = clinical_data.path("knowledge/interactions.yaml")
_RANK = {"info": 0, "warning": 1, "critical": 2}


def interaction_rules() -> list[dict[str, Any]]:
    rules = load_yaml(INTERACTIONS_PATH).get("interactions") or []
    for i, rule in enumerate(rules):
        for key in ("id", "a", "b", "severity", "message", "source"):
            if not rule.get(key):
                raise ConfigError(f"missing {key!r}", source=str(INTERACTIONS_PATH), field=f"interactions[{i}]")
        check_message(rule["message"], str(INTERACTIONS_PATH), f"interactions[{i}].message")
    return rules


def _severity(rule: dict[str, Any], a: Entry, b: Entry, facts: Facts, regimen: Regimen) -> str:
    severity = rule["severity"]
    if rule.get("unless_b_reduced") and regimen.reduced(b):
        return severity
    for step in rule.get("escalate") or []:
        if step.get("started") and "start" not in (a.action, b.action):
            continue
        if step.get("b_started") and b.action != "start":
            continue
        if not holds(step.get("when"), facts):
            continue
        if _RANK[step["severity"]] > _RANK[severity]:
            severity = step["severity"]
    return severity


def interactions(regimen: Regimen, facts: Facts) -> list[Finding]:
    """Interacting pairs where one drug is a plan order (not stopped), or the pair is contraindicated.

    Pairs of one rule that share the `b` drug become one finding naming every `a` drug
    ("metformin / glipizide + prednisone"), at the highest severity among them.
    """
    plan = regimen.plan_active()
    active = regimen.active()
    findings: list[Finding] = []
    for rule in interaction_rules():
        grouped: dict[str, list[tuple[Entry, Entry, str]]] = {}
        for b in active:
            if not targets(rule["b"], b):
                continue
            limit = rule.get("b_daily_dose_above")
            if limit is not None and not ((b.daily() or 0) > limit):
                continue
            for a in active:
                if a.key == b.key or not targets(rule["a"], a):
                    continue
                if a not in plan and b not in plan and rule["severity"] != "critical":
                    continue  # neither drug is in this plan: only a contraindicated pair is worth raising
                grouped.setdefault(b.label, []).append((a, b, _severity(rule, a, b, facts, regimen)))
        for pairs in grouped.values():
            a_labels = list(dict.fromkeys(a.label for a, _, _ in pairs))
            b = pairs[0][1]
            severity = max((sev for _, _, sev in pairs), key=_RANK.__getitem__)
            findings.append(
                Finding(
                    rule_id=f"interaction.{rule['id']}",
                    severity=severity,
                    drugs=[*a_labels, b.label],
                    message=render(rule["message"], facts, pairs[0][0], a=" / ".join(a_labels), b=b.label),
                    source=rule["source"],
                )
            )
    return findings
