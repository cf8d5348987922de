"""The guideline engine against hand-written outpatient cases and at its thresholds.

Each case in tests/knowledge/cases/*.json is a Visit plus what the guideline requires:
`goal` (HbA1c %), classes that must be started (`start`, or one of each `start_any` group),
continued, adjusted or stopped, classes that must not be given (`absent`: no start, continue
or adjust order), `no_start` (no new glucose-lowering class), labs that must be ordered
(LOINC) and words the prompts must contain.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diaguide.drugs.formulary import lookup
from diaguide.errors import ConfigError
from diaguide.evaluation.cases import concordance_errors
from diaguide.knowledge.guideline import recommend
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Plan, Visit

CASES = sorted((Path(__file__).parent / "cases").glob("*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _actions(plan: Plan, cls: str) -> set[str]:
    return {m.action for m in plan.medications if m.drug_class == cls}


def test_there_are_enough_cases_in_both_languages():
    languages = [_load(p)["visit"].get("language", "en") for p in CASES]
    assert len(CASES) >= 16
    assert languages.count("zh") >= 3 and languages.count("en") >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_engine_is_concordant_with_case(path: Path):
    case = _load(path)
    visit = Visit.model_validate(case["visit"])
    plan = recommend(visit, region=case["region"])
    assert concordance_errors(plan, case["expect"]) == [], case["description"]
    # every decision says why, citing its source
    assert all(m.reason and "(" in m.reason for m in plan.medications)
    assert all(lab.reason for lab in plan.labs)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_orders_name_drugs_the_formulary_knows_and_keep_current_names(path: Path):
    case = _load(path)
    visit = Visit.model_validate(case["visit"])
    plan = recommend(visit, region=case["region"])
    current = [m.drug for m in visit.medications]
    assert [m.drug for m in plan.medications if m.action != "start"] == current
    for order in plan.medications:
        if order.action == "start":
            drug = lookup(order.drug)
            assert drug is not None and drug.drug_class == order.drug_class, order.drug
            assert (drug.names_zh[0] if visit.language == "zh" else drug.name) == order.drug


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_treatment_states_the_goal_in_the_visit_language(path: Path):
    case = _load(path)
    visit = Visit.model_validate(case["visit"])
    plan = recommend(visit, region=case["region"])
    if plan.hba1c_goal is not None:
        assert f"<{plan.hba1c_goal:.1f}%" in plan.treatment
    if visit.language == "zh":
        assert "HbA1c控制目标" in plan.treatment and "治疗：" in plan.treatment
    else:
        assert plan.treatment.startswith("HbA1c goal" if plan.hba1c_goal is not None else "No HbA1c goal")


def test_unknown_region_is_a_config_error():
    visit = Visit.model_validate(_load(CASES[0])["visit"])
    with pytest.raises(ConfigError, match="region"):
        recommend(visit, region="nice")


# --- thresholds: just below and just above ---------------------------------------------

TODAY = "2025-06-15"


def _visit(
    *,
    age: int = 55,
    sex: str = "male",
    bmi: float = 26.0,
    hba1c: float | None = 8.0,
    egfr: float | None = 90,
    uacr: float | None = 10,
    fpg: float | None = None,
    meds: tuple[tuple[str, ...], ...] = (("metformin", "metformin"),),
    history: str = "T2DM for 5 years.",
    past: str = "",
    codes: tuple[str, ...] = ("E11.9",),
    language: str = "en",
) -> Visit:
    labs = [("4548-4", hba1c), ("33914-3", egfr), ("9318-7", uacr), ("1558-6", fpg), ("13457-7", 90)]
    return Visit.model_validate(
        {
            "visit_id": "t",
            "patient_id": "t",
            "date": TODAY,
            "language": language,
            "patient": {"age": age, "sex": sex, "bmi": bmi, "weight_kg": 75},
            "present_illness": history,
            "past_history": past,
            "diagnoses": [{"system": "icd10", "code": c, "icd10": c} for c in codes],
            "labs": [{"loinc": code, "value": v, "date": TODAY} for code, v in labs if v is not None],
            "medications": [{"drug": m[0], "drug_class": m[1], "dose": m[2] if len(m) > 2 else "500 mg"} for m in meds],
        }
    )


def _action(plan: Plan, cls: str) -> str | None:
    actions = _actions(plan, cls)
    return next(iter(sorted(actions))) if actions else None


@pytest.mark.parametrize(("hba1c", "insulin"), [(10.0, False), (10.1, True)])
def test_insulin_starts_above_hba1c_10(hba1c, insulin):
    plan = recommend(_visit(hba1c=hba1c))
    assert (_action(plan, "basal_insulin") == "start") is insulin


@pytest.mark.parametrize(("fpg", "insulin"), [(299, False), (300, True)])
def test_insulin_starts_at_glucose_300(fpg, insulin):
    plan = recommend(_visit(hba1c=8.0, fpg=fpg))
    assert (_action(plan, "basal_insulin") == "start") is insulin


@pytest.mark.parametrize(
    ("region", "egfr", "action"),
    [("ada", 29, "stop"), ("ada", 30, "adjust"), ("ada", 44, "adjust"), ("ada", 45, "continue"),
     ("cds", 44, "stop"), ("cds", 45, "adjust"), ("cds", 59, "adjust"), ("cds", 60, "continue")],
)  # fmt: skip
def test_metformin_by_egfr_when_already_taken(region, egfr, action):
    plan = recommend(_visit(hba1c=6.8, egfr=egfr), region=region)
    assert _action(plan, "metformin") == action


@pytest.mark.parametrize(
    ("dose", "action"), [("1000 mg bid", "adjust"), ("500 mg bid", "continue"), ("500 mg qd", "continue")]
)
def test_metformin_reduction_at_egfr_30_44_never_raises_the_dose(dose, action):
    plan = recommend(_visit(hba1c=6.8, egfr=40, meds=(("metformin", "metformin", dose),)))
    metformin = next(m for m in plan.medications if m.drug_class == "metformin")
    assert metformin.action == action and "1000 mg/day" in metformin.reason
    if action == "adjust":
        assert (metformin.dose, metformin.frequency) == ("500 mg", "twice daily")


@pytest.mark.parametrize(("egfr", "starts"), [(44, False), (45, True)])
def test_metformin_not_started_below_egfr_45(egfr, starts):
    plan = recommend(_visit(meds=(), history="Newly diagnosed T2DM.", egfr=egfr))
    assert (_action(plan, "metformin") == "start") is starts


@pytest.mark.parametrize(("egfr", "starts"), [(19, False), (20, True)])
def test_sglt2i_for_ckd_from_egfr_20(egfr, starts):
    plan = recommend(_visit(hba1c=6.8, egfr=egfr, meds=()))
    assert (_action(plan, "sglt2i") == "start") is starts


@pytest.mark.parametrize(("uacr", "starts"), [(29, False), (30, True)])
def test_albuminuria_from_uacr_30_brings_sglt2i_and_raas(uacr, starts):
    plan = recommend(_visit(hba1c=6.8, uacr=uacr))
    assert (_action(plan, "sglt2i") == "start") is starts
    assert ("start" in _actions(plan, "acei") | _actions(plan, "arb")) is starts


@pytest.mark.parametrize(("age", "goal", "glyburide"), [(64, 7.0, "continue"), (65, 8.0, "stop")])
def test_older_adult_from_65_frail_goal_and_beers(age, goal, glyburide):
    visit = _visit(age=age, hba1c=7.2, meds=(("glyburide", "sulfonylurea"),), past="Frailty, uses a walker.")
    plan = recommend(visit)
    assert plan.hba1c_goal == goal
    assert _action(plan, "sulfonylurea") == glyburide


@pytest.mark.parametrize(
    ("region", "bmi", "glp1"), [("ada", 29.9, False), ("ada", 30.0, True), ("cds", 27.9, False), ("cds", 28.0, True)]
)
def test_obesity_cut_off_by_region_brings_glp1ra(region, bmi, glp1):
    plan = recommend(_visit(age=45, bmi=bmi, hba1c=7.6), region=region)
    assert (_action(plan, "glp1ra") == "start") is glp1


@pytest.mark.parametrize(
    ("hba1c", "fpg", "intensive"),
    [(8.9, 150, False), (9.0, 150, True), (8.0, 199.0, False), (8.0, 11.1 * 18.016, True)],
)
def test_cds_short_term_intensive_insulin_at_diagnosis(hba1c, fpg, intensive):
    visit = _visit(meds=(), history="初诊2型糖尿病", hba1c=hba1c, fpg=fpg, language="zh")
    plan = recommend(visit, region="cds")
    assert ({"start"} <= _actions(plan, "prandial_insulin")) is intensive
    assert ({"start"} <= _actions(plan, "basal_insulin")) is intensive


def test_ada_has_no_intensive_insulin_rule_at_hba1c_9_5():
    plan = recommend(_visit(meds=(), history="Newly diagnosed T2DM.", hba1c=9.5), region="ada")
    assert not _actions(plan, "prandial_insulin") and not _actions(plan, "basal_insulin")
    assert _action(plan, "metformin") == "start"


@pytest.mark.parametrize(("hba1c", "agents"), [(8.4, 1), (8.5, 2)])
def test_early_combination_when_1_5_above_goal_at_diagnosis(hba1c, agents):
    plan = recommend(_visit(age=45, meds=(), history="Newly diagnosed T2DM.", hba1c=hba1c))
    started = [
        m.drug_class for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES
    ]
    assert "metformin" in started
    assert len(started) == agents


@pytest.mark.parametrize(("age", "statin"), [(39, False), (40, True), (75, True), (76, False)])
def test_statin_for_ages_40_to_75(age, statin):
    plan = recommend(_visit(age=age, hba1c=6.8))
    assert (_action(plan, "statin") == "start") is statin


def test_cds_prefers_acarbose_as_second_agent_and_ada_does_not():
    visit = _visit(age=45, hba1c=7.6)
    assert _action(recommend(visit, region="cds"), "agi") == "start"
    assert _action(recommend(visit, region="ada"), "agi") is None


def test_older_adult_with_hypoglycaemia_stops_sulfonylurea_and_reduces_insulin():
    visit = _visit(
        age=78,
        hba1c=7.0,
        meds=(("gliclazide", "sulfonylurea", "60 mg"), ("insulin glargine", "basal_insulin", "20 U")),
        history="Hypoglycaemia twice last month.",
    )
    plan = recommend(visit)
    assert _action(plan, "sulfonylurea") == "stop"
    insulin = next(m for m in plan.medications if m.drug_class == "basal_insulin")
    assert (insulin.action, insulin.dose) == ("adjust", "17 U")  # 10-20% less (ADA §6)


def test_negated_history_is_not_a_diagnosis():
    plan = recommend(_visit(hba1c=6.8, past="No heart failure, denies coronary disease. 否认冠心病。"))
    assert _action(plan, "sglt2i") is None and _action(plan, "glp1ra") is None


def test_above_goal_adds_classes_up_to_four_then_basal_insulin():
    two = recommend(
        _visit(hba1c=8.6, meds=(("metformin", "metformin", "1000 mg bid"), ("semaglutide", "glp1ra", "2 mg")))
    )  # semaglutide at its top dose: nothing left to titrate
    assert _action(two, "sglt2i") == "start" and _action(two, "basal_insulin") is None
    assert _action(two, "dpp4i") is None  # no DPP-4i on top of a GLP-1 RA
    four = (("metformin", "metformin", "1000 mg bid"), ("semaglutide", "glp1ra"), ("empagliflozin", "sglt2i"),
            ("glipizide", "sulfonylurea"))  # fmt: skip
    plan = recommend(_visit(hba1c=8.6, meds=four))
    assert _action(plan, "basal_insulin") == "start"
    assert {m.drug_class for m in plan.medications if m.action == "start"} <= {"basal_insulin", "statin"}


@pytest.mark.parametrize(("dose", "raised"), [("500 mg bid", True), ("0.5 g tid", True), ("1000 mg bid", False)])
def test_submaximal_metformin_is_raised_before_adding_a_class(dose, raised):
    plan = recommend(_visit(hba1c=7.6, meds=(("metformin", "metformin", dose),)))
    metformin = next(m for m in plan.medications if m.drug_class == "metformin")
    new = [m.drug_class for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES]
    if raised:
        assert (metformin.action, metformin.dose) == ("adjust", "1000 mg") and not new
    else:
        assert metformin.action == "continue" and new == ["sglt2i"]


@pytest.mark.parametrize(
    ("drug", "dose", "raised_to"),
    [("semaglutide", "0.5 mg", "1 mg"), ("dulaglutide", "0.75 mg", "1.5 mg"), ("司美格鲁肽", "2 mg", None)],
)
def test_glp1ra_below_its_top_dose_is_raised_before_another_class_or_insulin(drug, dose, raised_to):
    meds = (("metformin", "metformin", "1000 mg bid"), (drug, "glp1ra", dose), ("empagliflozin", "sglt2i", "10 mg"))
    plan = recommend(_visit(hba1c=7.6, meds=meds))
    glp1 = next(m for m in plan.medications if m.drug_class == "glp1ra")
    new = [m.drug_class for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES]
    if raised_to:
        assert (glp1.action, glp1.dose) == ("adjust", raised_to) and not new
    else:
        assert glp1.action == "continue" and new


def test_two_drugs_of_one_class_keep_the_first():
    plan = recommend(_visit(hba1c=6.8, meds=(("glimepiride", "sulfonylurea"), ("glipizide", "sulfonylurea"))))
    assert [(m.drug, m.action) for m in plan.medications if m.drug_class == "sulfonylurea"] == [
        ("glimepiride", "continue"),
        ("glipizide", "stop"),
    ]


def test_above_goal_on_premixed_insulin_titrates_it():
    plan = recommend(_visit(hba1c=8.4, meds=(("metformin", "metformin"), ("NovoMix 30", "premixed_insulin", "20 U"))))
    assert _action(plan, "premixed_insulin") == "adjust"
    assert not [m for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES]


# --- robustness: any visit gets a plan, every order is explained ------------------------

_TEXTS = ["", "No CAD. Denies HF.", "MI 2019, CABG", "心衰，NYHA III", "怀孕12周", "MEN2A", "frail, falls", "dementia",
          "lost 5 kg", "初诊", "hypoglycaemia x2", "alcohol abuse", "cirrhosis", "Crohn disease", "胰腺炎病史"]  # fmt: skip
_CLASSES = ["metformin", "sglt2i", "glp1ra", "dpp4i", "sulfonylurea", "tzd", "agi", "basal_insulin",
            "prandial_insulin", "premixed_insulin", "acei", "arb", "statin", "other"]  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    age=st.integers(18, 99),
    sex=st.sampled_from(["male", "female", "unknown"]),
    bmi=st.one_of(st.none(), st.floats(15, 60)),
    hba1c=st.one_of(st.none(), st.floats(4.5, 16)),
    egfr=st.one_of(st.none(), st.floats(5, 130)),
    uacr=st.one_of(st.none(), st.floats(0, 3000)),
    fpg=st.one_of(st.none(), st.floats(40, 600)),
    text=st.sampled_from(_TEXTS),
    codes=st.lists(
        st.sampled_from(["E10.9", "E11.9", "I50.9", "I25.2", "N18.4", "K76.0", "E31.22", "O24.1"]), max_size=3
    ),
    classes=st.lists(st.sampled_from(_CLASSES), max_size=5),
    language=st.sampled_from(["en", "zh"]),
    region=st.sampled_from(["ada", "cds"]),
)
def test_any_visit_gets_an_explained_plan(
    age, sex, bmi, hba1c, egfr, uacr, fpg, text, codes, classes, language, region
):
    meds = tuple((f"drug-{c}", c, "10 mg") for c in classes)
    visit = _visit(age=age, sex=sex, bmi=26.0, hba1c=hba1c, egfr=egfr, uacr=uacr, fpg=fpg, meds=meds, past=text,
                   codes=tuple(codes), language=language)  # fmt: skip
    visit.patient.bmi = bmi
    plan = recommend(visit, region=region)
    assert all(m.reason.endswith(")") for m in plan.medications)  # every decision cites a source
    assert all(lab.loinc and lab.reason for lab in plan.labs)
    assert len(plan.medications) >= len(classes)  # every current drug is accounted for
    started = [m.drug_class for m in plan.medications if m.action == "start"]
    assert len(started) == len(set(started))
    # a pregnancy code on a man, or past child-bearing age, is not read as one
    if sex != "male" and age < 55 and ("O24.1" in codes or "怀孕" in text):
        assert not {"acei", "arb", "statin", "sglt2i", "glp1ra"} & set(started)
