"""Drug-drug interactions (knowledge/interactions.yaml) between the plan and the rest of the regimen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diaguide.errors import ConfigError
from diaguide.knowledge.conditions import Facts
from diaguide.records.schema import Finding
from diaguide.safety.regimen import Entry, Regimen
from diaguide.safety.rules import holds, load_yaml, render, targets

INTERACTIONS_PATH = Path(__file__).resolve().parent.parent / "knowledge" / "interactions.yaml"
_RANK = {"info": 0, "warning": 1, "critical": 2}


def interaction_rules() -> list[dict[str, Any]]:
    rules = load_yaml(INTERACTIONS_PATH).get("interactions") or []
    for i, rule in enumerate(rules):
        for key in ("id", "a", "b", "severity", "message", "source"):
            if not rule.get(key):
                raise ConfigError(f"missing {key!r}", source=str(INTERACTIONS_PATH), field=f"interactions[{i}]")
    return rules


def _severity(rule: dict[str, Any], a: Entry, b: Entry, facts: Facts, regimen: Regimen) -> str:
    severity = rule["severity"]
    if rule.get("unless_b_reduced") and regimen.reduced(b):
        return severity
    for step in rule.get("escalate") or []:
        started = "start" in (a.action, b.action)
        if step.get("started") and not started:
            continue
        if not holds(step.get("when"), facts):
            continue
        if _RANK[step["severity"]] > _RANK[severity]:
            severity = step["severity"]
    return severity


def interactions(regimen: Regimen, facts: Facts) -> list[Finding]:
    """One finding per interacting pair where at least one drug is a plan order that is not stopped."""
    plan = regimen.plan_active()
    others = regimen.active()
    findings: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    for rule in interaction_rules():
        for a in others:
            if not targets(rule["a"], a):
                continue
            for b in others:
                if a.key == b.key or not targets(rule["b"], b):
                    continue
                if a not in plan and b not in plan:
                    continue  # neither drug is part of this plan: not this plan's decision
                limit = rule.get("b_daily_dose_above")
                if limit is not None and not ((b.daily() or 0) > limit):
                    continue
                pair = (rule["id"], a.label, b.label)
                if pair in seen:
                    continue
                seen.add(pair)
                findings.append(
                    Finding(
                        rule_id=f"interaction.{rule['id']}",
                        severity=_severity(rule, a, b, facts, regimen),
                        drugs=[a.label, b.label],
                        message=render(rule["message"], facts, a, a=a.label, b=b.label),
                        source=rule["source"],
                    )
                )
    return findings
