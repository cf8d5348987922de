"""Plan -> target text: the fixed, line-based format the model learns to write.

    GOAL: HbA1c <7.0%
    TREATMENT: <one or two sentences>
    MED: start | metformin | metformin | 500 mg | bid | first line
    LAB: 4548-4 | HbA1c | <reason>
    CAUTION: <text>
    END

One fact per line, so text cut off by a token limit loses only its last line (`parse.py`
drops it) and `END` tells a whole answer from a truncated one. Keys are ASCII in every
language; values are in the visit's language. Findings are not written: the safety check
runs on whatever the model generates, so the model is never taught to imitate it.
"""

from __future__ import annotations

import re

from diaguide.prompts.templates import load_template
from diaguide.prompts.text import field, shorten
from diaguide.records.schema import Plan

KEYS = ("GOAL", "TREATMENT", "MED", "LAB", "CAUTION", "END")
MAX_CAUTIONS = 2  # cautions are prose; more would push the target past ~200 tokens
NO_VALUE = "-"
# "HbA1c goal <7.0%." opening a treatment text restates the GOAL line: dropped from the target. A goal
# sentence that goes on to say why ("HbA1c goal <8.0%: older adult with ...") is kept whole.
_GOAL_SENTENCE = re.compile(
    r"^[^.。;；]{0,30}(?:goal|target|目标)[^。;；:：]{0,12}?[<＜≤]\s*\d+(?:\.\d+)?\s*[%％]\s*(?:[.。;；]\s*|$)", re.I
)


def goal_text(goal: float | None) -> str:
    return f"HbA1c <{goal:.1f}%" if goal is not None else NO_VALUE


def _trim(fields: list[str]) -> list[str]:
    """Drop an empty last field (`| -`): two tokens a line the parser does not need."""
    return fields[:-1] if fields[-1] == NO_VALUE else fields


def plan_to_text(plan: Plan, lang: str) -> str:
    """The target text of a plan in language `lang` (`en` or `zh`); ends with `END`."""
    t = load_template(lang)
    cut = t.limits

    def short(text: str | None, key: str) -> str:
        return field(shorten(text, cut[key], t.ellipsis, t.sentence_ends))

    lines = [f"GOAL: {goal_text(plan.hba1c_goal)}"]
    treatment = plan.treatment.strip()
    if plan.hba1c_goal is not None:
        treatment = _GOAL_SENTENCE.sub("", treatment, count=1)
    if treatment:
        lines.append(f"TREATMENT: {short(treatment, 'treatment')}")
    for m in plan.medications:
        # A `continue` line carries no reason: physicians write boilerplate there ("continue
        # current therapy"), and on a ten-drug list it would double the target's length.
        reason = NO_VALUE if m.action == "continue" else short(m.reason, "reason")
        fields = [m.action, field(m.drug), m.drug_class, field(m.dose), field(m.frequency), reason]
        lines.append("MED: " + " | ".join(_trim(fields)))
    for lab in plan.labs:
        lines.append("LAB: " + " | ".join(_trim([field(lab.loinc), field(lab.name), short(lab.reason, "reason")])))
    for text in plan.prompts[:MAX_CAUTIONS]:
        if text.strip():
            lines.append(f"CAUTION: {short(text, 'caution')}")
    lines.append("END")
    return "\n".join(lines)
