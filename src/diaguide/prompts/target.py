"""Plan -> target text: the fixed, line-based format the model learns to write.

    GOAL: HbA1c <7.0%
    TREATMENT: <one or two sentences>
    MED: stop | glyburide | sulfonylurea | - | - | hypoglycaemia risk
    MED: start | metformin | metformin | 500 mg | bid | first line
    MED: continue | losartan | arb
    LAB: 4548-4 | HbA1c | <reason>
    CAUTION: <text>
    END

One fact per line, so text cut off by a token limit loses only its last line (`parse.py`
drops it) and `END` tells a whole answer from a truncated one. Keys are ASCII in every
language; values are in the visit's language. Findings are not written: the safety check
runs on whatever the model generates, so the model is never taught to imitate it.

MED lines come in a fixed order of actions, stop, start, adjust, continue (the order of the guideline
line in a guided prompt, `guidance.py`): the decisions that change something come first, and an
answer cut off by the token limit loses a kept drug, not a stop. A `continue` line names the drug
and class only: its dose is the one the patient takes, which the visit's medication list holds
(`against_visit` puts it back after parsing), and on a ten-drug list the doses would add ~35
tokens to every answer.
"""

from __future__ import annotations

import re

from diaguide.drugs.formulary import lookup
from diaguide.prompts.templates import load_template
from diaguide.prompts.text import field, shorten
from diaguide.records.schema import MedicationOrder, Plan, Visit

KEYS = ("GOAL", "TREATMENT", "MED", "LAB", "CAUTION", "END")
ACTION_ORDER = ("stop", "start", "adjust", "continue")
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


def as_written(plan: Plan) -> list[MedicationOrder]:
    """The plan's orders as its target writes them: in `ACTION_ORDER` (stable within an action), a continued
    drug without dose, frequency and reason (the dose is the visit's; physicians write boilerplate reasons
    there, "continue current therapy", which on a ten-drug list would double the target's length)."""
    ordered = sorted(plan.medications, key=lambda m: ACTION_ORDER.index(m.action))
    return [
        m.model_copy(update={"dose": None, "frequency": None, "reason": ""}) if m.action == "continue" else m
        for m in ordered
    ]


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
    for m in as_written(plan):
        if m.action == "continue":
            fields = [m.action, field(m.drug), m.drug_class]
        else:
            fields = [
                m.action,
                field(m.drug),
                m.drug_class,
                field(m.dose),
                field(m.frequency),
                short(m.reason, "reason"),
            ]
        lines.append("MED: " + " | ".join(_trim(fields)))
    for lab in plan.labs:
        lines.append("LAB: " + " | ".join(_trim([field(lab.loinc), field(lab.name), short(lab.reason, "reason")])))
    for text in plan.prompts[:MAX_CAUTIONS]:
        if text.strip():
            lines.append(f"CAUTION: {short(text, 'caution')}")
    lines.append("END")
    return "\n".join(lines)


def _key(drug: str) -> str:
    """What makes two orders the same drug: the formulary's generic name (brand, Chinese or English name
    alike, as `safety.regimen.Entry.key` reads them), else the written name, case and spacing aside."""
    found = lookup(drug)
    return found.name if found else " ".join(drug.lower().split())


def against_visit(plan: Plan, visit: Visit, region: str = "ada") -> Plan:
    """A parsed plan read against the visit (what every engine does before the safety pass).

    * A drug ordered twice with different actions (a small model's slip: "continue metformin" and "start
      metformin") keeps one order: for a drug the visit lists, its first continue/adjust/stop order; for one it
      does not list, its first start (nothing can be continued that is not taken). A drug ordered once is kept
      as written, whatever its action: the safety checker and the physician judge it.
    * A continued drug written without a dose (as targets write them, `as_written`) gets the dose and frequency
      the visit lists for it (the same drug by the formulary: "贝那普利" continues the visit's benazepril).
    * What the plan says that the visit contradicts becomes a caution the physician sees (`consistency_cautions`):
      a drug continued, adjusted or stopped that the visit's medication list does not have, and a treatment
      text that calls HbA1c at or above goal against its own goal or cites another HbA1c than the one on file.
      The model's words are left as written; the caution says what to check.
    """
    current = {_key(m.drug): m for m in visit.medications}
    positions: dict[str, list[int]] = {}  # drug -> positions of its orders
    for i, m in enumerate(plan.medications):
        positions.setdefault(_key(m.drug), []).append(i)
    keep = set()
    for key, same in positions.items():
        fits = [i for i in same if (plan.medications[i].action != "start") == (key in current)]
        keep.add((fits or same)[0])
    meds = []
    for i, m in enumerate(plan.medications):
        if i not in keep:
            continue
        now = current.get(_key(m.drug))
        if m.action == "continue" and now is not None and m.dose is None and m.frequency is None:
            m = m.model_copy(update={"dose": now.dose, "frequency": now.frequency})
        meds.append(m)
    read = plan.model_copy(update={"medications": meds})
    cautions = [c for c in consistency_cautions(read, visit, region) if c not in read.prompts]
    return read.model_copy(update={"prompts": [*read.prompts, *cautions]}) if cautions else read


# "Current HbA1c 6.4%: above goal." / "目前HbA1c 6.4%，未达标。" (plan_builder.treatment_text), and the physicians'
# "HbA1c 8.3% (prev 7.9), above goal." (cohort.planwriter): the value and what the text calls it
_STATUS = re.compile(
    r"HbA1c\s*(\d+(?:\.\d+)?)\s*[%％](?:[^.。;；]|\.\d){0,30}?(above goal|at goal|not at goal|未达标|已达标|达标)", re.I
)
_UNLISTED = {
    "en": "{drug}: the plan {verb} it, but this visit's medication list does not have it; check what the patient takes.",
    "zh": "{drug}：建议{verb}，但本次用药清单中没有该药，请核对患者实际用药。",
}
_VERBS = {
    "en": {"continue": "continues", "adjust": "adjusts", "stop": "stops"},
    "zh": {"continue": "继续使用", "adjust": "调整剂量", "stop": "停用"},
}
_WRONG_STATUS = {
    ("en", True): "The text calls HbA1c {value:g}% above goal, but it is below the plan's goal of <{goal:.1f}%.",
    ("en", False): "The text calls HbA1c {value:g}% at goal, but the plan's goal is <{goal:.1f}%.",
    ("zh", True): "文中称HbA1c {value:g}%未达标，但已低于本方案目标<{goal:.1f}%。",
    ("zh", False): "文中称HbA1c {value:g}%已达标，但本方案目标为<{goal:.1f}%。",
}
_OTHER_VALUE = {
    "en": "The text cites HbA1c {value:g}%; the latest result on file is {actual:g}%.",
    "zh": "文中HbA1c为{value:g}%，而最近一次结果为{actual:g}%。",
}


def consistency_cautions(plan: Plan, visit: Visit, region: str = "ada") -> list[str]:
    """Cautions, in the visit's language, for what a (model-written) plan says that the visit contradicts."""
    from diaguide.knowledge.conditions import derive  # the guideline's own reading of the visit's HbA1c

    lang = "zh" if visit.language == "zh" else "en"
    listed = {_key(m.drug) for m in visit.medications}
    out = [
        _UNLISTED[lang].format(drug=m.drug, verb=_VERBS[lang][m.action])
        for m in plan.medications
        if m.action != "start" and _key(m.drug) not in listed
    ]
    claim = _STATUS.search(plan.treatment or "")
    if claim is not None:
        value, said = float(claim.group(1)), claim.group(2).lower()
        above = said in ("above goal", "not at goal", "未达标")
        goal = plan.hba1c_goal
        if goal is not None and above != (value >= goal):
            out.append(_WRONG_STATUS[lang, above].format(value=value, goal=goal))
        actual = derive(visit, region).hba1c
        if actual is not None and abs(actual - value) > 0.05:
            out.append(_OTHER_VALUE[lang].format(value=value, actual=round(actual, 1)))
    return out
