"""Labs due and glycaemic goals: intervals from the visit's own labs and its history."""

from __future__ import annotations

import datetime as dt

import pytest

from diaguide.knowledge.monitoring import glycaemic_goal, labs_due
from diaguide.records.schema import Visit

TODAY = dt.date(2025, 6, 15)
HBA1C, EGFR, CREAT, UACR, LDL, B12, ALT, K = (
    "4548-4",
    "33914-3",
    "2160-0",
    "9318-7",
    "13457-7",
    "2132-9",
    "1742-6",
    "2823-3",
)


def _ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


def _visit(labs: dict[str, tuple[float, int]] | None = None, **extra) -> Visit:
    """A type 2 visit; `labs` maps LOINC -> (value, days ago)."""
    labs = {HBA1C: (6.6, 0), EGFR: (90, 30), UACR: (10, 30), LDL: (90, 30)} if labs is None else labs
    patient = extra.pop("patient", {"age": 55, "sex": "female", "bmi": 25})
    return Visit.model_validate(
        {
            "visit_id": "m",
            "patient_id": "m",
            "date": TODAY.isoformat(),
            "patient": patient,
            "diagnoses": [{"system": "icd10", "code": "E11.9"}],
            "labs": [{"loinc": code, "value": v, "date": _ago(d)} for code, (v, d) in labs.items()],
            "medications": extra.pop("medications", [{"drug": "metformin", "drug_class": "metformin"}]),
            **extra,
        }
    )


def _ordered(visit: Visit, **kw) -> dict[str, str]:
    return {lab.loinc: lab.reason for lab in labs_due(visit, **kw)}


def test_hba1c_every_6_months_at_goal_and_stable_every_3_otherwise():
    stable = _ordered(_visit())
    assert "every 6 months" in stable[HBA1C]
    assert "due by 2025-12-14" in stable[HBA1C]
    above = _ordered(_visit({HBA1C: (7.9, 0), EGFR: (90, 30), UACR: (10, 30), LDL: (90, 30)}))
    assert "every 3 months" in above[HBA1C] and "due by 2025-09-14" in above[HBA1C]
    changed = _ordered(_visit(), changes={"sglt2i"})
    assert "every 3 months" in changed[HBA1C]


def test_therapy_change_since_the_last_visit_shortens_the_hba1c_interval():
    history = [{"date": _ago(90), "hba1c": 7.2, "medications": [{"drug": "glipizide", "drug_class": "sulfonylurea"}]}]
    assert "every 3 months" in _ordered(_visit(history=history))[HBA1C]
    same = [{"date": _ago(90), "hba1c": 6.7, "medications": [{"drug": "metformin", "drug_class": "metformin"}]}]
    assert "every 6 months" in _ordered(_visit(history=same))[HBA1C]


@pytest.mark.parametrize(("days_ago", "due"), [(100, False), (151, False), (152, True), (400, True)])
def test_uacr_yearly_when_stable_due_before_the_next_review(days_ago, due):
    # stable: next review in 182 days, labs drawn up to 31 days before it -> due from 365 - 213 = 152 days old
    visit = _visit({HBA1C: (6.6, 0), EGFR: (90, days_ago), UACR: (10, days_ago), LDL: (90, 0)})
    assert (UACR in _ordered(visit)) is due
    assert (EGFR in _ordered(visit)) is due


def test_missing_kidney_labs_are_ordered_now():
    orders = _ordered(_visit({HBA1C: (6.6, 0)}))
    assert "no result on file" in orders[EGFR] and CREAT in orders and UACR in orders and LDL in orders


def test_kidney_labs_every_4_months_in_ckd_g3b():
    visit = _visit({HBA1C: (6.6, 0), EGFR: (38, 0), UACR: (40, 0), LDL: (90, 0)}, medications=[])
    orders = _ordered(visit)
    assert "every 4 months" in orders[EGFR] and "every 4 months" in orders[UACR]


def test_history_results_count_for_intervals():
    history = [{"date": _ago(20), "egfr": 88, "uacr": 12, "ldl": 95, "hba1c": 6.5, "medications": []}]
    orders = _ordered(_visit({HBA1C: (6.6, 0)}, history=history, medications=[]))
    assert EGFR not in orders and UACR not in orders and LDL not in orders


@pytest.mark.parametrize(("since_years", "b12"), [(2, False), (4.1, True)])
def test_b12_on_long_term_metformin(since_years, b12):
    since = (TODAY - dt.timedelta(days=int(since_years * 365.25))).isoformat()
    visit = _visit(medications=[{"drug": "metformin", "drug_class": "metformin", "since": since}])
    assert (B12 in _ordered(visit)) is b12


def test_b12_from_metformin_in_the_history():
    history = [{"date": _ago(5 * 365), "medications": [{"drug": "metformin", "drug_class": "metformin"}]}]
    assert "long-term metformin" in _ordered(_visit(history=history))[B12]


def test_alt_with_masld_or_pioglitazone():
    assert ALT not in _ordered(_visit())
    masld = _visit(diagnoses=[{"system": "icd10", "code": "E11.9"}, {"system": "icd10", "code": "K76.0"}])
    assert "MASLD" in _ordered(masld)[ALT]
    assert "pioglitazone" in _ordered(_visit(), started={"tzd"})[ALT]


def test_new_statin_and_new_acei_bring_their_checks():
    orders = _ordered(_visit(), started={"statin", "acei"})
    assert "after starting a statin" in orders[LDL]
    assert "ACE inhibitor" in orders[K]


def test_orders_use_canonical_loinc_and_the_visit_language():
    visit = _visit({"17856-6": (6.6, 0)}, language="zh")
    orders = labs_due(visit)
    hba1c = next(o for o in orders if o.loinc == HBA1C)
    assert hba1c.name == "糖化血红蛋白" and "复查" in hba1c.reason
    assert "尚无结果" in next(o for o in orders if o.loinc == EGFR).reason


@pytest.mark.parametrize(
    ("region", "patient", "text", "goal"),
    [
        ("ada", {"age": 50}, "", 7.0),
        ("ada", {"age": 30, "sex": "female", "pregnant": True}, "", 6.0),
        ("ada", {"age": 70}, "", 7.5),
        ("ada", {"age": 70}, "frail, recurrent falls", 8.0),
        ("ada", {"age": 84}, "nursing home resident with dementia", None),
        ("cds", {"age": 84}, "长期卧床，痴呆", 9.0),
        ("cds", {"age": 35}, "", 6.5),
        ("cds", {"age": 60}, "冠心病支架术后", 8.0),
        ("ada", {"age": 60}, "severe hypoglycaemia requiring assistance last year", 8.0),
    ],
)
def test_glycaemic_goal(region, patient, text, goal):
    visit = _visit(patient={"sex": "male", **patient}, past_history=text)
    value, reason = glycaemic_goal(visit, region)
    assert value == goal
    assert "(" in reason and reason.endswith(")")  # cites its source


def test_goal_reason_in_chinese_for_chinese_visits():
    _, reason = glycaemic_goal(_visit(language="zh", patient={"age": 70, "sex": "male"}), "cds")
    assert "老年" in reason
