"""Whatever a visit and a plan hold, the checker answers: no exception, and every finding has a source."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diaguide.drugs.formulary import all_drugs
from diaguide.records.schema import DRUG_CLASSES, Plan, Visit
from diaguide.safety.checker import apply_safety, check
from diaguide.safety.complexity import complexity

_NAMES = sorted({n for d in all_drugs() for n in d.names()})
_DRUG = st.one_of(
    st.sampled_from(_NAMES), st.text(max_size=30), st.sampled_from(["", " ", "Janumet 50/1000", "860975"])
)
_DOSE = st.one_of(
    st.none(),
    st.sampled_from(
        ["1000 mg bid", "0.5g tid", "10 U qd", "1 片 bid", "2 mg weekly", "0 mg", "99999 g qid", "早12U 晚8U", "mg"]
    ),
    st.text(max_size=20),
)
_LOINCS = ["33914-3", "2160-0", "1742-6", "4548-4", "2345-7", "1558-6", "9318-7", "13457-7", "12345-6"]
_ICD = [
    "E11.9",
    "E10.9",
    "E11.649",
    "E16.0",
    "I50.9",
    "N18.4",
    "N18.6",
    "K85.9",
    "E31.22",
    "O24.4",
    "K74.6",
    "K50.9",
    "I25.10",
    "Z99.2",
]
_TEXT = st.one_of(
    st.sampled_from(
        ["", "CHF NYHA III", "无心衰", "family history of MTC", "hypoglycaemia last week", "低血糖", "胰腺炎病史"]
    ),
    st.text(max_size=40),
)

_visit = st.fixed_dictionaries(
    {
        "visit_id": st.just("v"),
        "patient_id": st.just("p"),
        "date": st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 1, 1)),
        "language": st.sampled_from(["en", "zh"]),
        "patient": st.fixed_dictionaries(
            {
                "age": st.one_of(st.none(), st.integers(0, 130)),
                "sex": st.sampled_from(["male", "female", "other", "unknown"]),
                "pregnant": st.booleans(),
                "weight_kg": st.one_of(st.none(), st.floats(1, 400)),
            }
        ),
        "vitals": st.fixed_dictionaries(
            {},
            optional={
                "weight_kg": st.one_of(st.none(), st.floats(-10, 500)),
                "bmi": st.one_of(st.none(), st.floats(-5, 90)),
                "systolic_bp": st.one_of(st.none(), st.floats(-10, 300)),
            },
        ),
        "past_history": _TEXT,
        "present_illness": _TEXT,
        "diagnoses": st.lists(
            st.fixed_dictionaries({"system": st.just("icd10"), "code": st.sampled_from(_ICD)}), max_size=4
        ),
        "labs": st.lists(
            st.fixed_dictionaries(
                # NaN and infinities are refused by the schema itself (records/schema.py), so never reach the checker
                {"loinc": st.sampled_from(_LOINCS), "value": st.floats(allow_nan=False, allow_infinity=False, width=32)}
            ),
            max_size=5,
        ),
        "medications": st.lists(
            st.fixed_dictionaries(
                {"drug": _DRUG, "dose": _DOSE, "drug_class": st.sampled_from(DRUG_CLASSES)},
                optional={"frequency": st.one_of(st.none(), st.sampled_from(["bid", "qd", "每周一次"]))},
            ),
            max_size=6,
        ),
        "allergies": st.lists(
            st.fixed_dictionaries(
                {"substance": _DRUG},
                optional={"drug_class": st.sampled_from(DRUG_CLASSES), "reaction": st.one_of(st.none(), _TEXT)},
            ),
            max_size=3,
        ),
        "history": st.lists(
            st.fixed_dictionaries(
                {
                    "date": st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 1, 1)),
                    "events": st.lists(_TEXT, max_size=2),
                    "egfr": st.one_of(st.none(), st.floats(-5, 200)),
                    "weight_kg": st.one_of(st.none(), st.floats(-5, 300)),
                    "fasting_glucose": st.one_of(st.none(), st.floats(-5, 900)),
                    "hba1c": st.one_of(st.none(), st.floats(-1, 25)),
                }
            ),
            max_size=2,
        ),
    }
)
_plan = st.fixed_dictionaries(
    {
        "medications": st.lists(
            st.fixed_dictionaries(
                {
                    "drug": _DRUG,
                    "action": st.sampled_from(["start", "continue", "adjust", "stop"]),
                    "dose": _DOSE,
                    "drug_class": st.sampled_from(DRUG_CLASSES),
                },
                optional={"reason": _TEXT, "frequency": st.one_of(st.none(), st.text(max_size=8))},
            ),
            max_size=7,
        )
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(visit=_visit, plan=_plan, region=st.sampled_from(["ada", "cds"]))
def test_check_never_crashes_and_every_finding_has_a_source(visit, plan, region) -> None:
    v, p = Visit.model_validate(visit), Plan.model_validate(plan)
    findings = check(v, p, region)
    for f in findings:
        assert f.source.strip() and f.message.strip() and f.rule_id
        assert f.severity in ("info", "warning", "critical")
        assert all(isinstance(d, str) for d in f.drugs)
    checked = apply_safety(v, p, region)
    assert len([f for f in checked.findings if f.severity == "critical"]) <= len(checked.prompts)
    c = complexity(v, region)
    assert c.score >= 0 and c.level in ("low", "moderate", "high")


def test_empty_plan_and_bare_visit() -> None:
    visit = Visit(visit_id="v", patient_id="p", date=dt.date(2025, 1, 1))
    assert check(visit, Plan()) == []
    assert apply_safety(visit, Plan()).findings == []
    assert complexity(visit).level == "low"
