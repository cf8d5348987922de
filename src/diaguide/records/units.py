"""Canonical units, conversions from SI/IFCC units, and plausibility ranges.

Canonical units are the ones US guidelines quote (ADA): glucose mg/dL, HbA1c % (NGSP),
creatinine mg/dL, lipids mg/dL, eGFR mL/min/1.73m2, UACR mg/g. Chinese hospitals report
mmol/L, mmol/mol and umol/L; every value is converted on the way in, and a value outside
its plausibility range is rejected by name rather than passed on.

Conversion factors: docs/clinical.md ("Units"), from the ADA Standards and IFCC-NGSP master equation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from diaguide.errors import InputError

Convert = Callable[[float], float]


def _scale(factor: float) -> Convert:
    return lambda x: x * factor


@dataclasses.dataclass(frozen=True)
class Analyte:
    key: str
    name: str
    loincs: tuple[str, ...]  # the first one is the canonical code written out
    unit: str  # canonical unit
    low: float  # plausibility range in the canonical unit (values outside are errors, not results)
    high: float
    units: dict[str, Convert]  # normalised unit spelling -> conversion to the canonical unit


_IDENT = _scale(1.0)
_GLUCOSE = {"mg/dl": _IDENT, "mmol/l": _scale(18.016)}
_CHOL = {"mg/dl": _IDENT, "mmol/l": _scale(38.67)}
_ENZYME = {"u/l": _IDENT, "iu/l": _IDENT, "ukat/l": _scale(60.0)}  # 1 ukat/L = 60 U/L
_BP = {"mmhg": _IDENT}

ANALYTES: dict[str, Analyte] = {
    a.key: a
    for a in [
        # IFCC mmol/mol -> NGSP %: % = mmol/mol / 10.929 + 2.15 (docs/clinical.md)
        Analyte(
            "hba1c",
            "HbA1c",
            ("4548-4", "17856-6", "4549-2", "59261-8"),
            "%",
            3.0,
            20.0,
            {"%": _IDENT, "mmol/mol": lambda x: x / 10.929 + 2.15},
        ),
        Analyte("fasting_glucose", "Fasting glucose", ("1558-6", "14771-0", "76629-5"), "mg/dL", 10, 1500, _GLUCOSE),
        Analyte(
            "glucose",
            "Glucose",
            ("2345-7", "2339-0", "41653-7", "14749-6", "15074-8", "2341-6"),
            "mg/dL",
            10,
            1500,
            _GLUCOSE,
        ),
        Analyte(
            "creatinine",
            "Creatinine",
            ("2160-0", "38483-4", "14682-9"),
            "mg/dL",
            0.1,
            25.0,
            {"mg/dl": _IDENT, "umol/l": _scale(1 / 88.4), "mmol/l": _scale(1000 / 88.4)},
        ),
        Analyte(
            "egfr",
            "eGFR",
            ("33914-3", "62238-1", "98979-8", "48642-3", "48643-1", "69405-9", "50044-7"),
            "mL/min/1.73m2",
            1,
            200,
            {"ml/min/1.73m2": _IDENT, "ml/min": _IDENT},
        ),
        # albumin/creatinine: 1 mg/mmol = 8.84 mg/g (creatinine 113.12 g/mol)
        Analyte(
            "uacr",
            "Urine albumin/creatinine",
            ("9318-7", "14959-1", "14958-3", "32294-1"),
            "mg/g",
            0,
            10000,
            {"mg/g": _IDENT, "ug/mg": _IDENT, "mg/mmol": _scale(8.84), "g/mol": _scale(8.84)},
        ),
        Analyte("ldl", "LDL cholesterol", ("13457-7", "18262-6", "2089-1", "22748-8"), "mg/dL", 5, 500, _CHOL),
        Analyte("hdl", "HDL cholesterol", ("2085-9", "14646-4"), "mg/dL", 5, 200, _CHOL),
        Analyte("total_cholesterol", "Total cholesterol", ("2093-3", "14647-2"), "mg/dL", 30, 1000, _CHOL),
        Analyte(
            "triglycerides",
            "Triglycerides",
            ("2571-8", "14927-8"),
            "mg/dL",
            10,
            10000,
            {"mg/dl": _IDENT, "mmol/l": _scale(88.57)},
        ),
        Analyte("alt", "ALT", ("1742-6", "1743-4", "76625-3"), "U/L", 1, 10000, _ENZYME),
        Analyte("ast", "AST", ("1920-8",), "U/L", 1, 10000, _ENZYME),
        Analyte("potassium", "Potassium", ("2823-3", "6298-4"), "mmol/L", 1.5, 10, {"mmol/l": _IDENT, "meq/l": _IDENT}),
        # B12: 1 pmol/L = 1.355 pg/mL (molar mass 1355 g/mol)
        Analyte(
            "b12",
            "Vitamin B12",
            ("2132-9", "14685-2"),
            "pg/mL",
            20,
            5000,
            {"pg/ml": _IDENT, "ng/l": _IDENT, "pmol/l": _scale(1.355)},
        ),
        Analyte("bmi", "BMI", ("39156-5",), "kg/m2", 10, 90, {"kg/m2": _IDENT}),
        Analyte(
            "weight",
            "Body weight",
            ("29463-7", "3141-9"),
            "kg",
            2,
            400,
            {"kg": _IDENT, "g": _scale(0.001), "lb": _scale(0.45359237), "lbav": _scale(0.45359237)},
        ),
        Analyte(
            "height",
            "Body height",
            ("8302-2",),
            "cm",
            30,
            260,
            {"cm": _IDENT, "m": _scale(100.0), "in": _scale(2.54), "ini": _scale(2.54)},
        ),
        Analyte("systolic_bp", "Systolic blood pressure", ("8480-6",), "mmHg", 50, 300, _BP),
        Analyte("diastolic_bp", "Diastolic blood pressure", ("8462-4",), "mmHg", 20, 200, _BP),
        Analyte("heart_rate", "Heart rate", ("8867-4",), "/min", 20, 250, {"/min": _IDENT, "bpm": _IDENT}),
    ]
}

_BY_LOINC: dict[str, Analyte] = {code: a for a in ANALYTES.values() for code in a.loincs}

# LOINC groups the engines look labs up by (canonical code first).
HBA1C = ANALYTES["hba1c"].loincs
FASTING_GLUCOSE = ANALYTES["fasting_glucose"].loincs
GLUCOSE = ANALYTES["glucose"].loincs
CREATININE = ANALYTES["creatinine"].loincs
EGFR = ANALYTES["egfr"].loincs
UACR = ANALYTES["uacr"].loincs
LDL = ANALYTES["ldl"].loincs
ALT = ANALYTES["alt"].loincs
B12 = ANALYTES["b12"].loincs
POTASSIUM = ANALYTES["potassium"].loincs


def normalise_unit(unit: str | None) -> str:
    """Spelling-insensitive unit key: `mmol/L`, `mmol/l ` and `MMOL/L` are one unit; UCUM
    annotations (`{creat}`) and brackets (`mm[Hg]`, `{1.73_m2}`) are dropped."""
    u = (unit or "").strip().lower()
    u = u.replace("µ", "u").replace("μ", "u").replace("²", "2").replace("％", "%")
    u = re.sub(r"\{[a-z' ]*\}", "", u)
    u = re.sub(r"[\s{}\[\]_^]", "", u)
    return {"beats/min": "/min", "beats/minute": "/min", "1/min": "/min", "kg/m^2": "kg/m2"}.get(u, u)


def analyte_for(code_or_key: str) -> Analyte | None:
    """The analyte for a LOINC code or an analyte key (`hba1c`), or None when unknown."""
    return ANALYTES.get(code_or_key) or _BY_LOINC.get(code_or_key)


def to_canonical(code_or_key: str, value: float, unit: str | None) -> tuple[float, str]:
    """Convert `value` in `unit` to the analyte's canonical unit and check it is plausible.

    Unknown analytes pass through unchanged. An empty unit is read as the canonical unit.

    Raises:
        InputError: unknown unit for a known analyte, or a value outside the plausible range.
    """
    analyte = analyte_for(code_or_key)
    number = _number(value, analyte.name if analyte else code_or_key)
    if analyte is None:
        return number, unit or ""
    key = normalise_unit(unit)
    if key == "":
        convert = _IDENT
    else:
        convert = analyte.units.get(key)
        if convert is None:
            raise InputError(
                f"unknown unit {unit!r} for {analyte.name} ({code_or_key}); "
                f"expected one of {', '.join(sorted(analyte.units))}",
                field="unit",
            )
    converted = convert(number)
    check_plausible(analyte, converted, shown=f"{value} {unit or analyte.unit}".strip())
    return round(converted, 4), analyte.unit


def _number(value: object, name: str) -> float:
    # Values arrive as strings from CSV exports; "7,2" or "" must be a named error, not a ValueError.
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} value {value!r} is not a number", field="value") from None


def check_plausible(analyte: Analyte, value: float, shown: str | None = None) -> None:
    """Raise InputError when a canonical value lies outside the analyte's plausibility range."""
    if value != value or not analyte.low <= value <= analyte.high:  # NaN fails too
        raise InputError(
            f"implausible {analyte.name} {shown or value} (plausible {analyte.low:g}-{analyte.high:g} {analyte.unit})",
            field="value",
        )


def canonical_loinc(code: str) -> str:
    """The canonical LOINC code of the analyte a code belongs to (itself when unknown).

    Unit-specific codes (59261-8 HbA1c mmol/mol, 14749-6 glucose mmol/L ...) become the
    code of the canonical unit once their value is converted.
    """
    analyte = _BY_LOINC.get(code)
    return analyte.loincs[0] if analyte else code
