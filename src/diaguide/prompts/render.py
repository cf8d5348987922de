"""Visit -> prompt text, in the visit's language.

The prompt is what the fine-tuned model sees, so it is compact (a typical visit renders to
~150-450 SmolLM2 tokens), lists facts in a fixed order with their units and dates, and ends
with the exact output format the target uses (`target.py`), or, for an adapter trained with the
guideline line, with that line (it learnt the format from its targets). Long free text is cut at a
sentence end. History (when asked for) is a trend line and the medication changes, not the
earlier visits in full: the seed system missed goals because it saw one visit at a time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict

from diaguide.prompts.guidance import guidance_text
from diaguide.prompts.templates import Template, load_template
from diaguide.prompts.text import number, shorten, squash
from diaguide.records.schema import Lab, Medication, Plan, Visit, VisitSummary
from diaguide.records.units import analyte_for

# Labs shown, in this order (analyte keys of units.py). Body measures and BP are vitals.
# HDL, total cholesterol and triglycerides are left out: no rule here turns on them, and
# each costs ~10 tokens. A stand-in is shown only when the main value is missing.
LAB_ORDER = (
    "hba1c",
    "fasting_glucose",
    "glucose",
    "egfr",
    "creatinine",
    "uacr",
    "ldl",
    "alt",
    "ast",
    "potassium",
    "b12",
)
STAND_INS = {"glucose": "fasting_glucose", "creatinine": "egfr"}
_NOT_LABS = {"bmi", "weight", "height", "systolic_bp", "diastolic_bp", "heart_rate"}
MAX_OTHER_LABS = 3  # labs outside LAB_ORDER (rarely decisive; each costs ~8 tokens)
MAX_DIAGNOSES = 6
MAX_MEDICATIONS = 14  # polypharmacy beyond this is rare; the list is cut so a prompt stays bounded
MAX_CHANGES = 4


def render_prompt(
    visit: Visit,
    include_history: bool = True,
    strict: bool = False,
    guidance: Plan | None = None,
    notes: list[str] | None = None,
) -> str:
    """The prompt for one visit.

    Args:
        visit: the visit; its `language` picks the template.
        include_history: add the trend of earlier visits and their medication changes.
        strict: add a stricter format instruction (the retry after a parse failure).
        guidance: the guideline engine's plan for the visit, shown as one line (`guidance.py`);
            only for a model trained with that line, which learnt the output format from its targets:
            such a prompt ends with the line, without the format instruction (the strict retry keeps it).
        notes: the facts read in the notes (`guidance.notes_facts`), shown as one line before the guideline line;
            only for a model trained with that line (`PromptStyle.notes_facts`).
    """
    t = load_template(visit.language)
    lines = [t.header.format(date=visit.date.isoformat())]
    lines.append(_line(t, "patient", _patient(t, visit)))
    for key, text in (("complaint", visit.chief_complaint), ("illness", visit.present_illness),
                      ("past", visit.past_history)):  # fmt: skip
        if squash(text):
            lines.append(_line(t, key, _cut(t, text, key)))
    lines.append(_line(t, "allergies", _allergies(t, visit)))
    lines.append(_line(t, "diagnoses", _diagnoses(t, visit)))
    lines.append(_line(t, "labs", _labs(t, visit.labs)))
    vitals = _vitals(t, visit)
    if vitals:
        lines.append(_line(t, "vitals", vitals))
    meds = [_med(m) for m in visit.medications]
    if len(meds) > MAX_MEDICATIONS:
        meds = [*meds[:MAX_MEDICATIONS], f"+{len(meds) - MAX_MEDICATIONS}"]
    lines.append(_line(t, "medications", t.sep.join(meds) or t.none))
    if include_history and visit.history:
        lines.extend(_history(t, visit))
    if notes:
        lines.append(_line(t, "notes", t.sep.join(notes)))
    if guidance is not None:
        lines.append(_line(t, "guideline", guidance_text(guidance)))
    if strict:
        lines.append(t.strict)
    if guidance is None or strict:
        # a guided adapter learnt the format from its targets (~75 prompt tokens saved); the retry spells it out
        lines.append(t.instruction)
    return "\n".join(lines)


def _line(t: Template, key: str, value: str) -> str:
    colon = "：" if t.language == "zh" else ": "
    return f"{t.labels[key]}{colon}{value}"


def _cut(t: Template, text: str | None, key: str) -> str:
    return shorten(text, t.limits[key], t.ellipsis, t.sentence_ends)


def _patient(t: Template, visit: Visit) -> str:
    p = visit.patient
    parts = []
    if p.age is not None:
        parts.append(t.words["age"].format(age=p.age))
    parts.append(t.words[p.sex])
    bmi = p.bmi or visit.vitals.bmi
    if bmi is None and p.height_cm and p.weight_kg:
        bmi = p.weight_kg / (p.height_cm / 100) ** 2
    if bmi:
        parts.append(t.words["bmi"].format(bmi=number(bmi, 1)))
    if p.pregnant:
        parts.append(t.words["pregnant"])
    return ", ".join(parts) if t.language == "en" else "，".join(parts)


def _allergies(t: Template, visit: Visit) -> str:
    items = []
    for a in visit.allergies:
        text = squash(a.substance)
        if a.reaction:
            text += f"（{squash(a.reaction)}）" if t.language == "zh" else f" ({squash(a.reaction)})"
        items.append(text)
    return t.sep.join(items) or t.none


def _diagnoses(t: Template, visit: Visit) -> str:
    seen: OrderedDict[str, str] = OrderedDict()
    for d in visit.diagnoses:
        code = (d.icd10 or d.code or "").strip()
        # an English title in a Chinese visit (ICD-10 displays often are) gets the English budget
        rules = load_template("en") if d.display.isascii() else t
        display = shorten(_short_display(rules, d.display), rules.limits["diagnosis"], t.ellipsis, rules.sentence_ends)
        key = code or display
        if key and key not in seen:
            seen[key] = f"{code} {display}".strip()
    # Z codes (status: insulin use, allergy status ...) mostly restate other lines: last, so
    # they are the ones cut when the list is long.
    items = sorted(seen.values(), key=lambda text: text.startswith("Z"))
    if len(items) > MAX_DIAGNOSES:
        items = [*items[:MAX_DIAGNOSES], f"+{len(items) - MAX_DIAGNOSES}"]
    return t.sep.join(items) or t.none


def _short_display(t: Template, display: str) -> str:
    """`Essential (primary) hypertension` -> `Essential hypertension`; `Hyperlipidemia,
    unspecified` -> `Hyperlipidemia`: ICD-10 qualifiers the code already carries."""
    text = re.sub(r"\s*[(（][^()（）]*[)）]", "", squash(display))
    text = re.split(r"\s*[,，]\s*", text, maxsplit=1)[0]
    for long, short in t.abbreviations.items():
        text = re.sub(re.escape(long), short, text, flags=re.IGNORECASE)
    return text


def lab_value(t: Template, key: str | None, lab: Lab) -> str:
    """`HbA1c 8.4%`, `eGFR 52 mL/min/1.73m2`, or in the template's display unit."""
    name = t.lab_names.get(key or "", "") or _short_lab_name(lab.name) or lab.loinc
    value, unit = lab.value, lab.unit
    shown = t.display_units.get(key or "")
    if shown:
        value, unit = value / shown.divide_by, shown.unit
        text = number(value, shown.decimals)
    else:
        text = number(value, 1, strip=False) if key == "hba1c" else number(value)
    if unit == "%":
        return f"{name} {text}%"
    return f"{name} {text} {unit}".rstrip()


def _short_lab_name(name: str) -> str:
    """`Sodium [Moles/volume] in Serum or Plasma` -> `Sodium`: LOINC long names are mostly
    property and specimen, ~15 tokens the model does not need."""
    head = re.split(r"\s*[\[,(]", squash(name), maxsplit=1)[0]
    return shorten(head, 24)


def _labs(t: Template, labs: list[Lab]) -> str:
    latest: dict[str, Lab] = {}
    others: list[tuple[str, Lab]] = []
    for lab in labs:
        analyte = analyte_for(lab.loinc)
        if analyte is None:
            others.append((lab.loinc, lab))
            continue
        if analyte.key in _NOT_LABS or analyte.key not in LAB_ORDER:
            continue
        held = latest.get(analyte.key)
        if held is None or (lab.date or dt.date.min) >= (held.date or dt.date.min):
            latest[analyte.key] = lab
    chosen = [(k, latest[k]) for k in LAB_ORDER if k in latest and STAND_INS.get(k) not in latest]
    newest_other: dict[str, Lab] = {}
    for code, lab in others:
        if code not in newest_other or (lab.date or dt.date.min) >= (newest_other[code].date or dt.date.min):
            newest_other[code] = lab
    chosen += [(None, lab) for lab in list(newest_other.values())[:MAX_OTHER_LABS]]
    if not chosen:
        return t.none
    # One date per group of labs drawn that day: dates cost ~6 tokens each.
    groups: OrderedDict[dt.date | None, list[str]] = OrderedDict()
    for key, lab in sorted(chosen, key=lambda kl: kl[1].date or dt.date.min, reverse=True):
        groups.setdefault(lab.date, []).append(lab_value(t, key, lab))
    parts = []
    for date, values in groups.items():
        joined = ", ".join(values) if t.language == "en" else "，".join(values)
        parts.append(f"({date.isoformat()}) {joined}" if date else joined)
    return t.sep.join(parts)


def _vitals(t: Template, visit: Visit) -> str:
    v, parts = visit.vitals, []
    if v.systolic_bp is not None and v.diastolic_bp is not None:
        parts.append(t.words["bp"].format(sys=number(v.systolic_bp, 0), dia=number(v.diastolic_bp, 0)))
    if v.heart_rate is not None:
        parts.append(t.words["hr"].format(hr=number(v.heart_rate, 0)))
    weight = v.weight_kg or visit.patient.weight_kg
    if weight is not None:
        parts.append(t.words["weight"].format(weight=number(weight, 1)))
    return ", ".join(parts) if t.language == "en" else "，".join(parts)


def _med(m: Medication) -> str:
    return " ".join(squash(x) for x in (m.drug, m.dose, m.frequency) if squash(x))


def _month(d: dt.date) -> str:
    return d.isoformat()[:7]


def _history(t: Template, visit: Visit) -> list[str]:
    past = sorted(visit.history, key=lambda s: s.date)[-t.limits["history_visits"] :]
    lines = []
    trend = _trend(t, past, visit)
    if trend:
        lines.append(_line(t, "trend", trend))
    changes = _changes(t, past, visit)[-MAX_CHANGES:]
    if changes:
        lines.append(_line(t, "changes", t.sep.join(text for _, text, _ in changes)))
    events = _events(past, {label: named for label, _, named in changes})[-MAX_CHANGES:]
    if events:
        lines.append(_line(t, "events", t.sep.join(events)))
    return lines


# Trended values: (label, VisitSummary field, analyte key, decimals, unit suffix)
TRENDS = (("HbA1c", "hba1c", "hba1c", 1, "%"), ("eGFR", "egfr", "egfr", 0, ""), ("UACR", "uacr", "uacr", 0, ""))


def _trend(t: Template, past: list[VisitSummary], visit: Visit) -> str:
    """`(2024-06 → 2024-11 → now) HbA1c 7.6 → 8.0 → 8.4%; eGFR 61 → 58 → 52`.

    The dates are written once for all rows: an ISO month is ~7 tokens.
    """

    def known(attr: str, key: str) -> int:
        analyte = analyte_for(key)
        now = analyte is not None and visit.latest_lab(*analyte.loincs) is not None
        return sum(getattr(s, attr) is not None for s in past) + now

    rows = [row for row in TRENDS if known(row[1], row[2]) >= 2]  # one value is no trend
    if not rows:
        return ""
    columns = [s for s in past if any(getattr(s, r[1]) is not None for r in rows)]
    heads = " → ".join([*(_month(s.date) for s in columns), t.now])
    out = []
    for label, attr, key, dec, unit in rows:
        analyte = analyte_for(key)
        now = visit.latest_lab(*analyte.loincs) if analyte else None
        if now is not None and columns and now.date is not None and now.date <= columns[-1].date:
            now = None  # a value carried forward from an earlier visit is not a new point
        values = [getattr(s, attr) for s in columns] + [now.value if now else None]
        out.append(f"{label} " + " → ".join("-" if v is None else number(v, dec, strip=False) for v in values) + unit)
    return f"({heads}) " + t.sep.join(out)


def _changes(t: Template, past: list[VisitSummary], visit: Visit) -> list[tuple[str, str, set[str]]]:
    """Medication changes between consecutive visits, as (month, text, drugs and classes named)."""
    steps = [(s.date, s.medications) for s in past] + [(visit.date, visit.medications)]
    out = []
    for (_, before), (date, after) in zip(steps, steps[1:], strict=False):
        old = {squash(m.drug).lower(): m for m in before}
        new = {squash(m.drug).lower(): m for m in after}
        started = [new[k] for k in new if k not in old]
        stopped = [old[k] for k in old if k not in new]
        changed = [(old[k], new[k]) for k in new if k in old and squash(new[k].dose) != squash(old[k].dose)]
        said = []
        for word, meds in (("started", started), ("stopped", stopped)):
            if meds:
                said.append(t.words[word].format(drugs=", ".join(squash(m.drug) for m in meds)))
        if changed:
            doses = [f"{squash(b.drug)} {squash(a.dose) or '?'}→{squash(b.dose) or '?'}" for a, b in changed]
            said.append(t.words["dose_changed"].format(drugs=", ".join(doses)))
        if said:
            label = t.now if date == visit.date else _month(date)
            named = {x for m in [*started, *stopped, *(b for _, b in changed)] for x in (m.drug.lower(), m.drug_class)}
            out.append((label, f"{label}: {', '.join(said)}", named))
    return out


def _events(past: list[VisitSummary], changed: dict[str, set[str]]) -> list[str]:
    """Earlier events, less those that only restate a medication change already listed."""
    out: list[str] = []
    for s in past:
        month = _month(s.date)
        for event in s.events:
            text = squash(event)
            if not text or any(name in text.lower() for name in changed.get(month, ())):
                continue
            if f"{month}: {text}" not in out:
                out.append(f"{month}: {text}")
    return out
