"""Unit conversion and plausibility: the numbers a physician would check by hand."""

from __future__ import annotations

import math

import pytest

from diaguide.errors import InputError
from diaguide.records import units

# (code or key, value, unit as written, expected canonical value, canonical unit)
CONVERSIONS = [
    # HbA1c: IFCC mmol/mol -> NGSP %: 53 mmol/mol is the familiar 7.0 %, 48 -> 6.5 %, 64 -> 8.0 %
    ("4548-4", 53, "mmol/mol", 7.0, "%"),
    ("hba1c", 48, "mmol/mol", 6.54, "%"),
    ("59261-8", 64, "mmol/mol", 8.0, "%"),
    ("4548-4", 7.2, "%", 7.2, "%"),
    ("4548-4", 7.2, "％", 7.2, "%"),  # full-width percent from Chinese exports
    ("4548-4", 7.2, "", 7.2, "%"),  # no unit: the canonical one
    ("4548-4", 7.2, None, 7.2, "%"),
    # glucose mmol/L x 18.016
    ("2345-7", 7.0, "mmol/L", 126.1, "mg/dL"),
    ("1558-6", 5.6, "mmol/l", 100.9, "mg/dL"),
    ("14749-6", 3.9, "MMOL/L", 70.3, "mg/dL"),
    ("2345-7", 126, "mg/dL", 126.0, "mg/dL"),
    # creatinine umol/L / 88.4
    ("2160-0", 88.4, "umol/L", 1.0, "mg/dL"),
    ("2160-0", 176.8, "µmol/L", 2.0, "mg/dL"),
    ("14682-9", 132.6, "μmol/L", 1.5, "mg/dL"),
    ("2160-0", 0.0884, "mmol/L", 1.0, "mg/dL"),
    # lipids
    ("13457-7", 2.6, "mmol/L", 100.5, "mg/dL"),
    ("2093-3", 5.0, "mmol/L", 193.4, "mg/dL"),
    ("2571-8", 1.7, "mmol/L", 150.6, "mg/dL"),
    # eGFR with UCUM annotations, UACR
    ("98979-8", 55, "mL/min/{1.73_m2}", 55.0, "mL/min/1.73m2"),
    ("33914-3", 55, "mL/min/1.73m²", 55.0, "mL/min/1.73m2"),
    ("9318-7", 3.4, "mg/mmol", 30.1, "mg/g"),
    ("9318-7", 30, "mg/g{creat}", 30.0, "mg/g"),
    # enzymes, vitals
    ("1742-6", 0.5, "ukat/L", 30.0, "U/L"),
    ("29463-7", 154, "[lb_av]", 69.85, "kg"),
    ("8302-2", 1.7, "m", 170.0, "cm"),
    ("8302-2", 65, "[in_i]", 165.1, "cm"),
    ("8480-6", 135, "mm[Hg]", 135.0, "mmHg"),
    ("8867-4", 72, "{beats}/min", 72.0, "/min"),
    ("8867-4", 72, "beats/minute", 72.0, "/min"),
    ("2132-9", 200, "pmol/L", 271.0, "pg/mL"),
]


@pytest.mark.parametrize(("code", "value", "unit", "expected", "canonical"), CONVERSIONS)
def test_converts_to_canonical_unit(code, value, unit, expected, canonical):
    got, got_unit = units.to_canonical(code, value, unit)
    assert got == pytest.approx(expected, abs=0.06)
    assert got_unit == canonical


# (code, value, unit, words the error must contain)
REJECTED = [
    ("4548-4", 80, "%", "implausible HbA1c 80 %"),  # 80 % is a typo for 8.0, or mmol/mol without the unit
    ("4548-4", 53, "", "implausible HbA1c"),
    ("4548-4", 6.5, "mmol/mol", "implausible HbA1c"),  # % mislabelled as mmol/mol -> 2.7 %
    ("2345-7", 180, "mmol/L", "implausible Glucose 180 mmol/L"),
    ("2160-0", 88.4, "mg/dL", "implausible Creatinine"),  # umol/L mislabelled as mg/dL
    ("29463-7", 700, "kg", "implausible Body weight"),
    ("8480-6", 20, "mmHg", "implausible Systolic"),
    ("4548-4", 7.0, "g/dL", "unknown unit 'g/dL'"),
    ("2345-7", 100, "mg", "unknown unit"),
    ("4548-4", float("nan"), "%", "implausible"),
    ("4548-4", float("inf"), "%", "implausible"),
]


@pytest.mark.parametrize(("code", "value", "unit", "words"), REJECTED)
def test_rejects_implausible_values_and_unknown_units_by_name(code, value, unit, words):
    with pytest.raises(InputError) as err:
        units.to_canonical(code, value, unit)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", ["abc", "", None, "7,2%"])
def test_non_numeric_value_is_an_input_error_not_a_crash(value):
    with pytest.raises(InputError) as err:
        units.to_canonical("4548-4", value, "%")
    assert "number" in str(err.value)


def test_numeric_strings_are_read():
    assert units.to_canonical("4548-4", "7.4", "%") == (7.4, "%")


def test_unknown_analyte_passes_through_unchanged():
    assert units.to_canonical("2951-2", 140, "mmol/L") == (140.0, "mmol/L")
    assert units.to_canonical("99999-9", 1.5, None) == (1.5, "")


@pytest.mark.parametrize(
    ("code", "canonical"),
    [
        ("59261-8", "4548-4"),
        ("17856-6", "4548-4"),
        ("14749-6", "2345-7"),
        ("98979-8", "33914-3"),
        ("14682-9", "2160-0"),
        ("14959-1", "9318-7"),
        ("2951-2", "2951-2"),
    ],
)
def test_canonical_loinc(code, canonical):
    assert units.canonical_loinc(code) == canonical


@pytest.mark.parametrize(
    ("unit", "key"),
    [
        ("mmol/L", "mmol/l"),
        (" MMOL/L ", "mmol/l"),
        ("mm[Hg]", "mmhg"),
        ("mL/min/{1.73_m2}", "ml/min/1.73m2"),
        ("mg/g{creat}", "mg/g"),
        ("µmol/L", "umol/l"),
        ("kg/m^2", "kg/m2"),
        ("beats/min", "/min"),
        (None, ""),
    ],
)
def test_normalise_unit(unit, key):
    assert units.normalise_unit(unit) == key


def test_every_analyte_range_is_sane_and_canonical_unit_converts_to_itself():
    for a in units.ANALYTES.values():
        assert a.low < a.high, a.key
        mid = (a.low + a.high) / 2
        value, unit = units.to_canonical(a.key, mid, a.unit)
        assert math.isclose(value, round(mid, 4)), a.key
        assert unit == a.unit
        assert units.canonical_loinc(a.loincs[-1]) == a.loincs[0]


def test_plausibility_bounds_are_inclusive():
    hba1c = units.ANALYTES["hba1c"]
    units.check_plausible(hba1c, hba1c.low)
    units.check_plausible(hba1c, hba1c.high)
    with pytest.raises(InputError):
        units.check_plausible(hba1c, hba1c.high + 0.01)
