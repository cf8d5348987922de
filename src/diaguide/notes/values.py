"""Laboratory values written in the notes: "eGFR 24 last week", "空腹血糖2.8mmol/L", "C肽0.3 ng/ml (2025-01-10)".

Each value is converted to the canonical unit of records/units.py (glucose mg/dL, creatinine mg/dL, eGFR
mL/min/1.73m2, HbA1c %) and dated from the words around it (an explicit date, "3 months ago", "上周"); an undated
value in the chief complaint or present illness is taken as of the visit, one in the past history as undated.
The analytes, their names in both languages and their units are data (notes/values.yaml).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from diaguide import clinical_data

VALUES_YAML = clinical_data.path("notes/values.yaml")
_NUMBER = r"(\d+(?:\.\d+)?)"
# what may stand between an analyte's name and its number: linking words only, so "血糖控制不佳，HbA1c 9.2%" gives
# no glucose of 1 (the digit of HbA1c) and "glucose was high, creatinine 2.1" no glucose of 2.1
_GAP = (
    r"(?:\s+|[:：=（(]|(?:level|value|result|reading)s?|of|was|were|is|at|about|around|approximately|as low as|"
    r"as high as|down to|up to|dropped to|fell to|rose to|measured|recorded|only|为|是|约|达|仅|最低|最高|低至|高达|降至|"
    r"升至|波动于|波动在|在|测得?|示|查|复查)*?"
)
_COMPARATOR = r"([<>＜＞≤≥]|below|under|above|over|less than|more than|低于|小于|高于|大于|不足|超过)?\s*"
# a number followed by one of these is a duration or a count, not a result ("2 months ago", "3次")
_NOT_A_RESULT = re.compile(
    r"\s*(?:days?|weeks?|months?|years?|yrs?|times?|天|日|周|个月|月|年|次|岁|分钟|小时|h\b)", re.I
)

_DATE = re.compile(r"(20\d{2}|19\d{2})\s*[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*日?)?")
_AGO = re.compile(r"(\d+)\s*(days?|weeks?|months?|years?|天|日|周|个月|月|年)\s*(?:ago|前|之前)", re.I)
_RELATIVE = {  # words that date a value relative to the visit, in days
    "yesterday": 1, "昨天": 1, "昨日": 1, "today": 0, "今天": 0, "今日": 0, "this week": 3, "本周": 3, "last week": 7,
    "上周": 7, "last month": 30, "上月": 30, "上个月": 30, "last year": 365, "去年": 365,
}  # fmt: skip
_DAYS = {"day": 1, "天": 1, "日": 1, "week": 7, "周": 7, "month": 30, "个月": 30, "月": 30, "year": 365, "年": 365}


@functools.cache
def analytes() -> dict[str, Any]:
    spec = clinical_data.read(VALUES_YAML)["analytes"]
    for entry in spec.values():
        names = "|".join(f"(?:{n})" for n in entry["names"])
        # the name, a few linking words (was, of, :, 为, 最低 ...), then the number (a range keeps its low end)
        entry["rx"] = re.compile(
            rf"(?:{names}){_GAP}{_COMPARATOR}{_NUMBER}(?:\s*[-~～至到]\s*{_NUMBER})?\s*({entry['unit_pattern']})?",
            re.I | re.ASCII,
        )
    return spec


def date_near(text: str, visit_date: dt.date | None) -> dt.date | None:
    """The date a clause gives: written out, or counted back from the visit."""
    m = _DATE.search(text)
    if m:
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3) or 15)
        try:
            return dt.date(year, month, day)
        except ValueError:
            return None
    if visit_date is None:
        return None
    m = _AGO.search(text)
    if m:
        unit = m.group(2).lower().rstrip("s")
        return visit_date - dt.timedelta(days=int(m.group(1)) * _DAYS.get(unit, 1))
    lowered = text.lower()
    for word, days in _RELATIVE.items():
        if word in lowered:
            return visit_date - dt.timedelta(days=days)
    return None


def _convert(entry: dict[str, Any], value: float, unit: str) -> tuple[float, str] | None:
    """The value in the analyte's canonical unit; None when it is implausible there."""
    unit_l = unit.lower().replace("μ", "u").replace("µ", "u").replace(" ", "")
    factor = None
    for written, f in (entry.get("units") or {}).items():
        if unit_l.startswith(written):
            factor = f
            break
    if factor is None:  # no unit written: the unit a clinician would mean by the size of the number
        for rule in entry.get("unitless") or []:
            if value <= rule["at_most"]:
                factor = rule["factor"]
                break
        else:
            factor = 1.0
    canonical = round(value * factor, 2)
    low, high = entry["plausible"]
    return (canonical, entry["unit"]) if low <= canonical <= high else None


def find_values(text: str) -> list[tuple[str, float, str, int, int]]:
    """(analyte, value in canonical unit, canonical unit, start, end) for every value written in a text."""
    found = []
    for name, entry in analytes().items():
        for m in entry["rx"].finditer(text):
            comparator, first, second, unit = m.group(1), m.group(2), m.group(3), m.group(4)
            if _NOT_A_RESULT.match(text, m.end(3) if second else m.end(2)):
                continue
            raw = min(float(first), float(second)) if second else float(first)
            if comparator:  # "eGFR <30": below the number written, "> 10": above it
                below = comparator.lower() in ("<", "＜", "≤", "below", "under", "less than", "低于", "小于", "不足")
                raw = raw * (0.97 if below else 1.03)
            converted = _convert(entry, raw, unit or "")
            if converted is not None:
                found.append((name, converted[0], converted[1], m.start(), m.end()))
    return found
