"""Read a dose as written ("1000 mg bid", "0.5g tid", "10 U qd", "早12U 晚8U") into an amount per day or week.

Only what the text states is read: a dose in tablets ("1 片 bid") without the tablet strength,
a weight-based dose, or two strengths in one line ("50/1000 mg") give None, never a guess.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

# unit spelling -> (dimension, factor to the dimension's base: mg, or U)
_UNITS: dict[str, tuple[str, float]] = {
    "g": ("mass", 1000.0),
    "克": ("mass", 1000.0),
    "mg": ("mass", 1.0),
    "毫克": ("mass", 1.0),
    "mcg": ("mass", 0.001),
    "μg": ("mass", 0.001),
    "µg": ("mass", 0.001),
    "ug": ("mass", 0.001),
    "微克": ("mass", 0.001),
    "u": ("units", 1.0),
    "iu": ("units", 1.0),
    "unit": ("units", 1.0),
    "units": ("units", 1.0),
    "单位": ("units", 1.0),
    "ml": ("volume", 1.0),
}
_TARGET: dict[str, tuple[str, float]] = {
    "mg": ("mass", 1.0),
    "mcg": ("mass", 0.001),
    "U": ("units", 1.0),
    "mL": ("volume", 1.0),
}

_AMOUNT = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*(mg|mcg|μg|µg|ug|g|iu|units?|u|ml|毫克|微克|克|单位)(?![a-z])",
    re.IGNORECASE,
)
_PER_KG = re.compile(r"/\s*kg|每公斤|每千克", re.IGNORECASE)
# a concentration ("100 UNT/ML", "6 MG/ML") is not a dose
_CONCENTRATION = re.compile(r"\d+(?:\.\d+)?\s*(?:mg|mcg|μg|µg|ug|g|iu|units?|unt|u)\s*/\s*(?:ml|毫升)", re.IGNORECASE)
_RATIO = re.compile(r"\d\s*/\s*\d")  # "50/1000 mg": a combination's two strengths

# (pattern, administrations per period, period); checked in order, first match wins.
_FREQUENCIES: list[tuple[re.Pattern[str], float, str]] = [
    (re.compile(p, re.IGNORECASE), n, period)
    for p, n, period in [
        (r"\bbiw\b|twice (a |per )?week|每周两次|每周2次|每周二次", 2, "week"),
        (
            r"\bq\.?\s*w(k|eek)?\b|\bq1w\b|once (a |per )?week|\bweekly\b|every week|/\s*w(ee)?k\b|每周|每星期|周一次|1次/周",
            1,
            "week",
        ),
        (r"\bqod\b|every other day|隔日", 0.5, "day"),
        (r"\bq\.?i\.?d\b|four times|\bq6h\b|每日四次|每日4次|一日四次|一日4次|日四次|4次/日", 4, "day"),
        (
            r"\bt\.?i\.?d\b|three times|\bq8h\b|每日三次|每日3次|一日三次|一日3次|日三次|3次/日|三餐前|三餐时|每餐",
            3,
            "day",
        ),
        (
            r"\bb\.?i\.?d\b|twice|\bq12h\b|每日两次|每日二次|每日2次|一日两次|一日二次|一日2次|日两次|2次/日|早晚",
            2,
            "day",
        ),
        (
            r"\bq\.?d\b|\bo\.?d\b|\bqam\b|\bqpm\b|\bq\.?n\b|\bqhs\b|\bhs\b|once|\bdaily\b|every day|\bq24h\b|at bedtime"
            r"|每日一次|每日1次|一日一次|一日1次|每天一次|每晚|睡前|1次/日|qn",
            1,
            "day",
        ),
    ]
]
_TOTAL_PER_DAY = re.compile(
    r"\d\s*(?:mg|mcg|μg|µg|ug|g|iu|units?|u|毫克|克|单位)\s*(?:/\s*(?:d|day|日|天)\b|/\s*[日天]|per day|a day)|每日总量|日总量",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class DoseAmount:
    """A dose total over one period, in the drug's own unit."""

    amount: float
    period: str  # "day" | "week" | "unknown" (no frequency written: one administration)
    unit: str

    def describe(self) -> str:
        per = "" if self.period == "unknown" else f"/{self.period}"
        return f"{self.amount:g} {self.unit}{per}"


# "2 times a day", "3x daily", "每日3次", "一天2次", "2次/日", "once every week" are counted from the number
_COUNT_PER_DAY = re.compile(
    r"(\d)\s*(?:times|x|×)\s*(?:a |per |/\s*)?(?:day|daily|d)\b|(?:每日|每天|一日|一天|日)\s*(\d)\s*次|(\d)\s*次\s*/\s*[日天]",
    re.IGNORECASE,
)
_COUNT_PER_WEEK = re.compile(
    r"(\d)\s*(?:times|x|×)\s*(?:a |per |/\s*)?w(ee)?k|每周\s*(\d)\s*次|(\d)\s*次\s*/\s*周", re.IGNORECASE
)


def _frequency(text: str) -> tuple[float, str] | None:
    for pattern, period in ((_COUNT_PER_WEEK, "week"), (_COUNT_PER_DAY, "day")):
        m = pattern.search(text)
        if m:
            number = next(g for g in m.groups() if g and g.isdigit())
            return float(number), period
    for pattern, count, period in _FREQUENCIES:
        if pattern.search(text):
            return count, period
    return None


def parse_dose(dose: str | None, frequency: str | None, unit: str) -> DoseAmount | None:
    """The total amount over a day or a week, converted to `unit` (mg, mcg, U or mL).

    Returns None when the text does not state an amount in a unit convertible to `unit`.
    """
    text = " ".join(str(t) for t in (dose, frequency) if t)
    if not text or unit not in _TARGET:
        return None
    text = unicodedata.normalize("NFKC", text)
    text = _CONCENTRATION.sub(" ", text)
    if _PER_KG.search(text) or _RATIO.search(text):
        return None
    dimension, base = _TARGET[unit]
    amounts: list[float] = []
    for value, spelled in _AMOUNT.findall(text):
        dim, factor = _UNITS[spelled.lower()]
        if dim != dimension:
            return None
        amounts.append(float(value) * factor / base)
    if not amounts:
        return None
    if _TOTAL_PER_DAY.search(text):
        return DoseAmount(round(sum(amounts), 6), "day", unit)
    freq = _frequency(text)
    if len(amounts) > 1:
        # "早12U 晚8U", "10 U am + 6 U pm": the parts of one day's dose
        return DoseAmount(round(sum(amounts), 6), "day" if freq is None else freq[1], unit)
    if freq is None:
        return DoseAmount(amounts[0], "unknown", unit)
    count, period = freq
    return DoseAmount(round(amounts[0] * count, 6), period, unit)
