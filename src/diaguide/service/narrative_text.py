"""The model's narrative as a physician reads it.

The model writes the line format it was trained on (`prompts/target.py`: `GOAL:`, `MED: start | metformin | ...`,
`END`). That format is for the parser, not for a person: the page shows each line as a sentence in the visit's
language, and says when the answer was cut off or a line could not be read. Text the parser cannot read at all is
shown as written, line by line, so nothing the model wrote is hidden.
"""

from __future__ import annotations

from diaguide.prompts.parse import parse_plan
from diaguide.records.schema import Plan

_WORDS = {
    "en": {
        "goal": "HbA1c goal below {goal:.1f}%.",
        "start": "Start",
        "continue": "Continue",
        "adjust": "Adjust",
        "stop": "Stop",
        "lab": "Order",
        "caution": "Caution:",
        "cut": "The model's answer was cut off before its end; what follows is what it wrote.",
        "unread": "{n} line(s) of the answer could not be read and are not shown.",
        "because": " — ",
        "end": ".",
    },
    "zh": {
        "goal": "糖化血红蛋白目标 <{goal:.1f}%。",
        "start": "开始",
        "continue": "继续",
        "adjust": "调整",
        "stop": "停用",
        "lab": "检查",
        "caution": "注意：",
        "cut": "模型的回答未写完即被截断；以下是已写出的部分。",
        "unread": "回答中有 {n} 行无法读取，未显示。",
        "because": "：",
        "end": "。",
    },
}


def readable(text: str | None, language: str) -> list[str]:
    """The narrative as sentences in `language` (`en` | `zh`); the raw lines when it is not in the target format."""
    w = _WORDS.get(language, _WORDS["en"])
    result = parse_plan(text)
    if result.plan is None:
        return [line for line in (text or "").splitlines() if line.strip() and line.strip().upper() != "END"]
    notes = [] if result.complete else [w["cut"]]
    if result.unread:
        notes.append(w["unread"].format(n=result.unread))
    return notes + _sentences(result.plan, w)


def _sentences(plan: Plan, w: dict[str, str]) -> list[str]:
    out = [w["goal"].format(goal=plan.hba1c_goal)] if plan.hba1c_goal is not None else []
    if plan.treatment.strip():
        out.append(plan.treatment.strip())
    for m in plan.medications:
        what = " ".join(part for part in (w[m.action], m.drug, m.dose, m.frequency) if part)
        out.append(what + (w["because"] + m.reason if m.reason else "") + w["end"])
    for lab in plan.labs:
        name = f"{lab.name} ({lab.loinc})" if lab.name else lab.loinc
        out.append(f"{w['lab']} {name}" + (w["because"] + lab.reason if lab.reason else "") + w["end"])
    out += [f"{w['caution']} {p}" for p in plan.prompts]
    return out
