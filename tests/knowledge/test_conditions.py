"""Patient facts from codes and free text (English and Chinese), with negation and family history."""

from __future__ import annotations

import pytest

from diaguide.errors import ConfigError
from diaguide.knowledge.conditions import ckd_epi_2021, ckd_stage, derive, region_config, threshold
from diaguide.records.schema import Visit


def _visit(text: str = "", codes: tuple[str, ...] = ("E11.9",), **extra) -> Visit:
    return Visit.model_validate(
        {
            "visit_id": "c",
            "patient_id": "c",
            "date": "2025-06-15",
            "patient": extra.pop("patient", {"age": 60, "sex": "male", "bmi": 26}),
            "past_history": text,
            "diagnoses": [{"system": "icd10", "code": c} for c in codes],
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("text", "ascvd"),
    [
        ("CAD s/p PCI 2020", True),
        ("No CAD.", False),
        ("Denies stroke or MI.", False),
        ("No chest pain but known CAD", True),
        ("Family history of CAD (father).", False),
        ("冠心病，支架术后", True),
        ("否认冠心病、脑梗死病史", False),
        ("无明显诱因出现胸痛，诊断冠心病", True),
    ],
)
def test_ascvd_from_text_with_negation(text, ascvd):
    assert derive(_visit(text)).ascvd is ascvd


def test_family_history_counts_for_men2_only():
    assert derive(_visit("Mother had medullary thyroid carcinoma.")).men2_mtc
    assert derive(_visit("家族史：其母甲状腺髓样癌")).men2_mtc
    assert not derive(_visit("Father had heart failure.")).heart_failure


def test_codes_snomed_and_text_give_the_diabetes_type():
    assert derive(_visit(codes=("E10.9",))).diabetes_type == "1"
    snomed = _visit(codes=(), diagnoses=[{"system": "http://snomed.info/sct", "code": "44054006"}])
    assert derive(snomed).diabetes_type == "2"
    assert derive(_visit("1型糖尿病10年", codes=())).diabetes_type == "1"
    assert derive(_visit("", codes=())).diabetes_type is None


def test_ckd_epi_2021_matches_published_values():
    # Inker 2021 equation; a 50-year-old man with creatinine 1.0 mg/dL is about 92 mL/min/1.73m2
    assert ckd_epi_2021(1.0, 50, "male") == pytest.approx(91.7, abs=0.3)
    assert ckd_epi_2021(1.0, 50, "female") < 70
    assert ckd_epi_2021(2.0, 70, "male") == pytest.approx(35, abs=1)


@pytest.mark.parametrize("creatinine", [0.0, -1.2, float("nan"), float("inf")])
def test_ckd_epi_2021_gives_no_egfr_for_an_impossible_creatinine(creatinine):
    # 0 used to raise ZeroDivisionError and a negative value gave a complex number
    assert ckd_epi_2021(creatinine, 60, "male") is None
    assert ckd_epi_2021(creatinine, 60, "female") is None


def test_zero_creatinine_leaves_egfr_unknown_instead_of_crashing():
    f = derive(_visit(labs=[{"loinc": "2160-0", "value": 0.0}], patient={"age": 70, "sex": "male"}))
    assert f.egfr is None and not f.egfr_estimated


def test_guideline_yaml_reads_the_same_with_the_c_and_the_python_loader():
    import yaml

    from diaguide.knowledge.conditions import GUIDELINE_YAML, knowledge

    text = GUIDELINE_YAML.read_text(encoding="utf-8")
    assert knowledge() == yaml.load(text, Loader=yaml.SafeLoader)


def test_egfr_is_estimated_from_creatinine_when_missing():
    f = derive(
        _visit(labs=[{"loinc": "2160-0", "value": 2.0, "date": "2025-06-15"}], patient={"age": 70, "sex": "male"})
    )
    assert f.egfr_estimated and 34 <= f.egfr <= 36 and f.ckd and f.ckd_stage == "G3b"
    unknown_sex = derive(_visit(labs=[{"loinc": "2160-0", "value": 2.0}], patient={"age": 70}))
    assert unknown_sex.egfr is None  # no guess without the patient's sex


@pytest.mark.parametrize(
    ("egfr", "stage"), [(90, "G1"), (89.9, "G2"), (45, "G3a"), (44, "G3b"), (29, "G4"), (14, "G5")]
)
def test_kdigo_stage(egfr, stage):
    assert ckd_stage(egfr) == stage


def test_ckd_stage_from_n18_code_when_no_egfr():
    f = derive(_visit(codes=("E11.22", "N18.4")))
    assert f.ckd and f.ckd_stage == "G4"


def test_weight_loss_from_text_or_history():
    assert derive(_visit("体重下降5kg")).weight_loss
    assert not derive(_visit("No weight loss.")).weight_loss
    history = [{"date": "2025-03-15", "weight_kg": 80}]
    assert derive(_visit(history=history, patient={"age": 60, "sex": "male", "weight_kg": 75})).weight_loss
    assert not derive(_visit(history=history, patient={"age": 60, "sex": "male", "weight_kg": 77})).weight_loss


def test_recent_hypoglycaemia_from_labs_history_and_text():
    low = [{"loinc": "2345-7", "value": 62, "date": "2025-06-01"}]
    assert derive(_visit(labs=low)).recent_hypo
    assert derive(_visit(history=[{"date": "2025-04-01", "events": ["hypoglycaemia"]}])).recent_hypo
    assert not derive(_visit(history=[{"date": "2023-04-01", "events": ["hypoglycaemia"]}])).recent_hypo
    assert not derive(_visit("Denies hypoglycaemia.")).recent_hypo


def test_older_adult_health_status():
    old = {"age": 78, "sex": "female"}
    assert derive(_visit("", patient=old)).health_status == "healthy"
    assert derive(_visit("frail", patient=old)).health_status == "complex"
    assert derive(_visit("HTN. COPD. Osteoarthritis.", patient=old)).health_status == "complex"  # 3 chronic illnesses
    assert derive(_visit("Lives in a nursing home", patient=old)).health_status == "very_complex"


def test_new_diagnosis_needs_no_drugs_no_history_and_no_duration():
    assert derive(_visit("Newly diagnosed.")).new_diagnosis
    assert derive(_visit("")).new_diagnosis
    assert not derive(_visit("T2DM x9y, diet only.")).new_diagnosis
    assert not derive(_visit("", medications=[{"drug": "metformin", "drug_class": "metformin"}])).new_diagnosis


def test_a_man_is_never_pregnant_and_bmi_cut_offs_follow_the_region():
    assert not derive(_visit("pregnant?", codes=("O24.1",))).pregnant
    f_ada, f_cds = (
        derive(_visit(patient={"age": 50, "sex": "female", "bmi": 28.5}), "ada"),
        derive(_visit(patient={"age": 50, "sex": "female", "bmi": 28.5}), "cds"),
    )
    assert not f_ada.obesity and f_ada.overweight and f_cds.obesity


def test_region_settings_inherit_and_override():
    assert threshold("ada", "metformin_stop_below_egfr") == 30
    assert threshold("cds", "metformin_stop_below_egfr") == 45
    assert threshold("cds", "sglt2i_start_min_egfr") == 20  # inherited from ada
    assert region_config("cds")["agents"]["metformin"]["drug"] == "metformin"
    with pytest.raises(ConfigError):
        derive(_visit(), "who")


def test_every_threshold_goal_agent_and_rule_has_a_source():
    for region in ("ada", "cds"):
        cfg = region_config(region)
        assert all(t["source"] for t in cfg["thresholds"].values())
        assert all(g["source"] and g["en"] and g["zh"] for g in cfg["goals"])
        assert all(a["source"] for a in cfg["agents"].values())
    from diaguide.knowledge.conditions import knowledge

    assert all(r["source"] and r["en"] and r["zh"] for r in knowledge()["rules"].values())
    assert all(c["source"] for c in knowledge()["conditions"].values())


@pytest.mark.parametrize(
    ("text", "age", "pregnant"),
    [
        ("Pregnant, 10 weeks gestation", 31, True),
        ("孕12周", 29, True),
        ("History of gestational diabetes in 2015.", 44, False),
        ("既往妊娠期糖尿病史", 44, False),
        ("Pregnant?", 61, False),  # a text mention past child-bearing age is not believed
    ],
)
def test_pregnancy_is_current_not_past(text, age, pregnant):
    assert derive(_visit(text, patient={"age": age, "sex": "female"})).pregnant is pregnant


def test_recent_history_results_stand_in_for_missing_labs():
    recent = [{"date": "2025-04-15", "hba1c": 8.2, "egfr": 64, "uacr": 40}]
    f = derive(_visit(history=recent))
    assert (f.hba1c, f.egfr, f.uacr, f.albuminuria) == (8.2, 64, 40, True)
    old = [{"date": "2024-09-15", "hba1c": 8.2, "egfr": 64}]
    f = derive(_visit(history=old))
    assert f.hba1c is None and f.egfr == 64  # HbA1c older than 4 months is not today's; eGFR within a year is
