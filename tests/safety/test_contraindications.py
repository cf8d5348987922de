"""Per-rule thresholds: just below fires, just above does not (rules.yaml)."""

from __future__ import annotations

import pytest

from diaguide.safety.checker import check

# (case, visit kwargs, plan orders, region, rule expected to fire or None, rule that must NOT fire or None)
CASES = [
    # metformin and eGFR (FDA 2016)
    (
        "metformin eGFR 29",
        {"egfr": 29},
        [("metformin", "continue", "500 mg bid")],
        "ada",
        "metformin_egfr_below_30",
        None,
    ),
    (
        "metformin eGFR 30",
        {"egfr": 30},
        [("metformin", "continue", "500 mg bid")],
        "ada",
        None,
        "metformin_egfr_below_30",
    ),
    ("metformin start eGFR 44", {"egfr": 44}, [("metformin", "start")], "ada", "metformin_start_egfr_30_45", None),
    ("metformin start eGFR 45", {"egfr": 45}, [("metformin", "start")], "ada", None, "metformin_start_egfr_30_45"),
    ("metformin eGFR 50 ada", {"egfr": 50}, [("metformin", "continue")], "ada", None, "metformin_cds_egfr_45_59"),
    ("metformin eGFR 50 cds", {"egfr": 50}, [("metformin", "continue")], "cds", "metformin_cds_egfr_45_59", None),
    ("metformin eGFR 59 cds", {"egfr": 59}, [("metformin", "continue")], "cds", "metformin_cds_egfr_45_59", None),
    ("metformin eGFR 60 cds", {"egfr": 60}, [("metformin", "continue")], "cds", None, "metformin_cds_egfr_45_59"),
    (
        "metformin 1000 mg bid eGFR 50 cds",
        {"egfr": 50},
        [("二甲双胍", "continue", "1000 mg bid")],
        "cds",
        "metformin_cds_egfr_45_59",
        None,
    ),
    (
        "metformin 500 mg bid eGFR 50 cds",
        {"egfr": 50},
        [("二甲双胍", "adjust", "500 mg bid")],
        "cds",
        None,
        "metformin_cds_egfr_45_59",
    ),
    ("metformin eGFR 44 cds", {"egfr": 44}, [("metformin", "continue")], "cds", "metformin_cds_egfr_below_45", None),
    # SGLT2i start (ADA §11)
    (
        "empagliflozin start eGFR 19",
        {"egfr": 19},
        [("empagliflozin", "start")],
        "ada",
        "sglt2i_start_egfr_below_20",
        None,
    ),
    (
        "empagliflozin start eGFR 20",
        {"egfr": 20},
        [("empagliflozin", "start")],
        "ada",
        None,
        "sglt2i_start_egfr_below_20",
    ),
    (
        "dapagliflozin continue eGFR 19",
        {"egfr": 19},
        [("dapagliflozin", "continue")],
        "ada",
        None,
        "sglt2i_start_egfr_below_20",
    ),
    ("henagliflozin eGFR 44", {"egfr": 44}, [("恒格列净", "start")], "cds", "henagliflozin_egfr_below_45", None),
    (
        "canagliflozin 300 mg eGFR 59",
        {"egfr": 59},
        [("canagliflozin", "continue", "300 mg qd")],
        "ada",
        "canagliflozin_renal_dose",
        None,
    ),
    (
        "canagliflozin 100 mg eGFR 59",
        {"egfr": 59},
        [("canagliflozin", "continue", "100 mg qd")],
        "ada",
        None,
        "canagliflozin_renal_dose",
    ),
    # sulfonylureas in CKD
    ("glyburide eGFR 59", {"egfr": 59}, [("glyburide", "continue")], "ada", "glyburide_ckd", None),
    ("glyburide eGFR 60", {"egfr": 60}, [("glyburide", "continue")], "ada", None, "glyburide_ckd"),
    ("glimepiride eGFR 29", {"egfr": 29}, [("glimepiride", "continue")], "ada", "sulfonylurea_egfr_below_30", None),
    ("glimepiride eGFR 30", {"egfr": 30}, [("glimepiride", "continue")], "ada", None, "sulfonylurea_egfr_below_30"),
    ("glipizide eGFR 25", {"egfr": 25}, [("glipizide", "continue")], "ada", None, "sulfonylurea_egfr_below_30"),
    # acarbose: creatinine > 2 mg/dL or eGFR < 25
    (
        "acarbose creatinine 2.1",
        {"egfr": None, "creatinine": 2.1, "age": None},
        [("acarbose", "start")],
        "cds",
        "agi_renal",
        None,
    ),
    ("acarbose creatinine 2.0", {"egfr": 40, "creatinine": 2.0}, [("acarbose", "start")], "cds", None, "agi_renal"),
    ("acarbose eGFR 24", {"egfr": 24}, [("拜糖平", "continue")], "cds", "agi_renal", None),
    ("acarbose eGFR 25", {"egfr": 25}, [("拜糖平", "continue")], "cds", None, "agi_renal"),
    # DPP-4i renal doses
    (
        "sitagliptin 100 mg eGFR 40",
        {"egfr": 40},
        [("sitagliptin", "continue", "100 mg qd")],
        "ada",
        "sitagliptin_renal_dose_45",
        None,
    ),
    (
        "sitagliptin 50 mg eGFR 40",
        {"egfr": 40},
        [("sitagliptin", "continue", "50 mg qd")],
        "ada",
        None,
        "sitagliptin_renal_dose_45",
    ),
    (
        "sitagliptin 50 mg eGFR 25",
        {"egfr": 25},
        [("sitagliptin", "continue", "50 mg qd")],
        "ada",
        "sitagliptin_renal_dose_30",
        None,
    ),
    (
        "saxagliptin 5 mg eGFR 45",
        {"egfr": 45},
        [("saxagliptin", "continue", "5 mg qd")],
        "ada",
        "saxagliptin_renal_dose",
        None,
    ),
    (
        "saxagliptin 5 mg eGFR 46",
        {"egfr": 46},
        [("saxagliptin", "continue", "5 mg qd")],
        "ada",
        None,
        "saxagliptin_renal_dose",
    ),
    # hepatic: ALT upper limit 40 U/L
    ("metformin ALT 121", {"alt": 121}, [("metformin", "continue")], "ada", "metformin_hepatic", None),
    ("metformin ALT 120", {"alt": 120}, [("metformin", "continue")], "ada", None, "metformin_hepatic"),
    ("pioglitazone ALT 121", {"alt": 121}, [("pioglitazone", "continue")], "ada", "tzd_alt_above_3x", None),
    ("pioglitazone ALT 120", {"alt": 120}, [("pioglitazone", "continue")], "ada", None, "tzd_alt_above_3x"),
    ("pioglitazone start ALT 101", {"alt": 101}, [("pioglitazone", "start")], "ada", "tzd_start_alt_above_2_5x", None),
    ("metformin cirrhosis", {"dx": ("E11.9", "K74.60")}, [("metformin", "continue")], "ada", "metformin_hepatic", None),
    ("acarbose Crohn", {"dx": ("E11.9", "K50.90")}, [("acarbose", "start")], "cds", "agi_cirrhosis_or_bowel", None),
    # heart failure
    ("pioglitazone HF", {"dx": ("E11.9", "I50.22")}, [("pioglitazone", "start")], "ada", "tzd_heart_failure", None),
    ("pioglitazone no HF", {}, [("pioglitazone", "start")], "ada", None, "tzd_heart_failure"),
    ("saxagliptin HF", {"dx": ("E11.9", "I50.9")}, [("Onglyza", "start")], "ada", "dpp4i_heart_failure", None),
    (
        "alogliptin HF text",
        {"past_history": "CHF, NYHA II"},
        [("alogliptin", "start")],
        "ada",
        "dpp4i_heart_failure",
        None,
    ),
    ("sitagliptin HF", {"dx": ("E11.9", "I50.9")}, [("sitagliptin", "start")], "ada", None, "dpp4i_heart_failure"),
    (
        "metformin decompensated HF",
        {"dx": ("E11.9", "I50.21")},
        [("metformin", "continue")],
        "ada",
        "metformin_hypoxia",
        None,
    ),
    (
        "metformin chronic HF",
        {"dx": ("E11.9", "I50.22")},
        [("metformin", "continue")],
        "ada",
        None,
        "metformin_hypoxia",
    ),
    (
        "metformin hypoxia text",
        {"present_illness": "COPD exacerbation, hypoxic on 2L O2"},
        [("metformin", "continue")],
        "ada",
        "metformin_hypoxia",
        None,
    ),
    (
        "SGLT2i after DKA",
        {"past_history": "DKA 2023"},
        [("empagliflozin", "start")],
        "ada",
        "sglt2i_ketoacidosis_history",
        None,
    ),
    (
        "SGLT2i no DKA",
        {"past_history": "no DKA"},
        [("empagliflozin", "start")],
        "ada",
        None,
        "sglt2i_ketoacidosis_history",
    ),
    # pregnancy
    (
        "pregnant metformin",
        {"sex": "female", "age": 32, "pregnant": True},
        [("metformin", "continue")],
        "ada",
        "pregnancy_crosses_placenta",
        None,
    ),
    (
        "pregnant glyburide",
        {"sex": "female", "age": 32, "pregnant": True},
        [("glyburide", "start")],
        "ada",
        "pregnancy_crosses_placenta",
        None,
    ),
    (
        "pregnant empagliflozin",
        {"sex": "female", "age": 32, "pregnant": True},
        [("empagliflozin", "continue")],
        "ada",
        "pregnancy_contraindicated",
        None,
    ),
    (
        "pregnant liraglutide",
        {"sex": "female", "age": 32, "pregnant": True},
        [("liraglutide", "continue")],
        "ada",
        "pregnancy_contraindicated",
        None,
    ),
    (
        "pregnant lisinopril",
        {"sex": "female", "age": 32, "pregnant": True},
        [("lisinopril", "continue")],
        "ada",
        "pregnancy_contraindicated",
        None,
    ),
    (
        "pregnant losartan",
        {"sex": "female", "age": 32, "dx": ("O24.419",)},
        [("losartan", "continue")],
        "ada",
        "pregnancy_contraindicated",
        None,
    ),
    (
        "pregnant atorvastatin",
        {"sex": "female", "age": 32, "pregnant": True},
        [("atorvastatin", "continue")],
        "ada",
        "pregnancy_contraindicated",
        None,
    ),
    (
        "not pregnant lisinopril",
        {"sex": "female"},
        [("lisinopril", "continue")],
        "ada",
        None,
        "pregnancy_contraindicated",
    ),
    # type 1
    (
        "type 1 glimepiride",
        {"dx": ("E10.9",)},
        [("insulin glargine", "continue"), ("glimepiride", "start")],
        "ada",
        "type1_sulfonylurea",
        None,
    ),
    (
        "type 1 dapagliflozin",
        {"dx": ("E10.9",)},
        [("insulin glargine", "continue"), ("dapagliflozin", "start")],
        "ada",
        "type1_sglt2i",
        None,
    ),
    ("type 1 oral only", {"dx": ("E10.9",)}, [("metformin", "start")], "ada", "type1_no_insulin", None),
    ("type 2 oral only", {}, [("metformin", "start")], "ada", None, "type1_no_insulin"),
    # MEN2 / MTC, pancreatitis
    ("MEN2A semaglutide", {"dx": ("E11.9", "E31.22")}, [("semaglutide", "start")], "ada", "glp1_men2_mtc", None),
    (
        "family MTC tirzepatide",
        {"past_history": "Family history: mother had medullary thyroid carcinoma."},
        [("Mounjaro", "start")],
        "ada",
        "glp1_men2_mtc",
        None,
    ),
    (
        "甲状腺髓样癌 利拉鲁肽",
        {"past_history": "甲状腺髓样癌术后", "language": "zh"},
        [("利拉鲁肽", "start")],
        "cds",
        "glp1_men2_mtc",
        None,
    ),
    ("no MTC liraglutide", {}, [("liraglutide", "start")], "ada", None, "glp1_men2_mtc"),
    (
        "pancreatitis sitagliptin",
        {"dx": ("E11.9", "K85.90")},
        [("sitagliptin", "start")],
        "ada",
        "incretin_pancreatitis",
        None,
    ),
    (
        "pancreatitis dulaglutide",
        {"past_history": "acute pancreatitis 2019"},
        [("dulaglutide", "start")],
        "ada",
        "incretin_pancreatitis",
        None,
    ),
    (
        "denies pancreatitis",
        {"past_history": "Denies pancreatitis."},
        [("dulaglutide", "start")],
        "ada",
        None,
        "incretin_pancreatitis",
    ),
    # hypoglycaemia in older adults
    ("glyburide age 65", {"age": 65}, [("glyburide", "continue")], "ada", "glyburide_older_adult", None),
    ("glyburide age 64", {"age": 64}, [("glyburide", "continue")], "ada", None, "glyburide_older_adult"),
    (
        "glimepiride age 70 HbA1c 6.4",
        {"age": 70, "hba1c": 6.4},
        [("glimepiride", "continue")],
        "ada",
        "overtreatment_older_adult",
        None,
    ),
    (
        "glimepiride age 70 HbA1c 6.5",
        {"age": 70, "hba1c": 6.5},
        [("glimepiride", "continue")],
        "ada",
        None,
        "overtreatment_older_adult",
    ),
    (
        "insulin age 64 HbA1c 6.0",
        {"age": 64, "hba1c": 6.0},
        [("Lantus", "continue")],
        "ada",
        None,
        "overtreatment_older_adult",
    ),
    ("gliclazide recent hypo", {"dx": ("E11.649",)}, [("gliclazide", "continue")], "cds", "hypoglycaemia_recent", None),
    (
        "insulin E16.0",
        {"dx": ("E11.9", "E16.0")},
        [("insulin glargine", "continue", "20 U qd")],
        "ada",
        "hypoglycaemia_recent",
        None,
    ),
    (
        "gliclazide recent hypo reduced",
        {"dx": ("E11.649",), "meds": (("gliclazide", "60 mg qd"),)},
        [("gliclazide", "adjust", "30 mg qd")],
        "cds",
        None,
        "hypoglycaemia_recent",
    ),
    (
        "glimepiride hypo adjust down by reason",
        {"dx": ("E11.649",)},
        [("glimepiride", "adjust", None, "reduce dose after hypoglycaemia")],
        "ada",
        None,
        "hypoglycaemia_recent",
    ),
    # missing labs
    ("metformin start no eGFR", {"egfr": None}, [("metformin", "start")], "ada", "metformin_egfr_missing", None),
    ("SGLT2i start no eGFR", {"egfr": None}, [("empagliflozin", "start")], "ada", "sglt2i_egfr_missing", None),
    (
        "metformin continue no eGFR",
        {"egfr": None},
        [("metformin", "continue")],
        "ada",
        "metformin_continue_egfr_missing",
        "metformin_egfr_missing",
    ),
    (
        "sitagliptin start no eGFR",
        {"egfr": None},
        [("sitagliptin", "start")],
        "ada",
        "renal_dosed_drug_egfr_missing",
        None,
    ),
    ("pioglitazone start no ALT", {"alt": None}, [("pioglitazone", "start")], "ada", "tzd_alt_missing", None),
    (
        "metformin start eGFR from creatinine",
        {"egfr": None, "creatinine": 0.9},
        [("metformin", "start")],
        "ada",
        None,
        "metformin_egfr_missing",
    ),
]


@pytest.mark.parametrize(
    ("visit_kw", "orders", "region", "fires", "silent"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_rule_threshold(visit_factory, plan_factory, visit_kw, orders, region, fires, silent) -> None:
    findings = check(visit_factory(**visit_kw), plan_factory(*orders), region)
    rule_ids = {f.rule_id for f in findings}
    if fires:
        assert fires in rule_ids, [f.rule_id for f in findings]
        hit = next(f for f in findings if f.rule_id == fires)
        assert hit.source and hit.message
        plan_names = {o[0] for o in orders}
        assert set(hit.drugs) & plan_names, "the finding names the plan's drug as written"
    if silent:
        assert silent not in rule_ids


def test_missing_lab_finding_names_the_lab(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(egfr=None), plan_factory("metformin"))
    missing = [f for f in findings if f.rule_id == "metformin_egfr_missing"]
    assert missing and "eGFR" in missing[0].message and "creatinine" in missing[0].message


def test_region_switch_metformin_egfr_50(visit_factory, plan_factory) -> None:
    visit, plan = visit_factory(egfr=50), plan_factory(("metformin", "continue", "1000 mg bid"))
    assert [f for f in check(visit, plan, "ada") if f.severity != "info"] == []
    cds = [f for f in check(visit, plan, "cds") if f.severity == "warning"]
    assert [f.rule_id for f in cds] == ["metformin_cds_egfr_45_59"]
    assert "reduce" in cds[0].message


def test_region_from_environment(monkeypatch, visit_factory, plan_factory) -> None:
    monkeypatch.setenv("DIAGUIDE_REGION", "cds")
    findings = check(visit_factory(egfr=50), plan_factory(("metformin", "continue")), None)
    assert any(f.rule_id == "metformin_cds_egfr_45_59" for f in findings)


def test_stopped_drug_is_not_flagged(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(egfr=25), plan_factory(("metformin", "stop")))
    assert findings == []


def test_hypoglycaemia_coded_on_an_earlier_visit_counts(visit_factory, plan_factory) -> None:
    recent = {"date": "2025-01-10", "diagnoses": ["E11.649"]}
    old = {"date": "2022-01-10", "diagnoses": ["E11.649"]}
    plan = plan_factory(("glimepiride", "continue", "2 mg qd"))
    assert any(f.rule_id == "hypoglycaemia_recent" for f in check(visit_factory(history=(recent,)), plan))
    assert not any(f.rule_id == "hypoglycaemia_recent" for f in check(visit_factory(history=(old,)), plan))


def test_dose_written_in_the_drug_line_is_read(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(egfr=40), plan_factory(("Januvia 100 mg qd", "continue")))
    assert any(f.rule_id == "sitagliptin_renal_dose_45" for f in findings)
    synthea = "Insulin Glargine 100 UNT/ML Injectable Solution [Lantus]"
    quiet = check(visit_factory(weight_kg=60), plan_factory((synthea, "continue")))
    assert not [f for f in quiet if f.rule_id.startswith(("dose_", "basal_over"))], "a concentration is not a dose"


def test_current_drug_the_plan_leaves_in_place_is_checked(visit_factory, plan_factory) -> None:
    visit = visit_factory(egfr=25, meds=(("metformin", "1000 mg bid"),))
    findings = check(visit, plan_factory(("insulin glargine", "start", "10 U qhs")))
    hit = [f for f in findings if f.rule_id == "metformin_egfr_below_30"]
    assert hit and hit[0].drugs == ["metformin"] and "does not address" in hit[0].message
    stopped = check(visit, plan_factory(("insulin glargine", "start"), ("metformin", "stop")))
    assert not [f for f in stopped if f.rule_id == "metformin_egfr_below_30"]


def test_egfr_from_an_earlier_visit_within_a_year(visit_factory, plan_factory) -> None:
    plan = plan_factory(("metformin", "continue"))
    recent = visit_factory(egfr=None, history=({"date": "2024-09-01", "egfr": 27},))
    assert any(f.rule_id == "metformin_egfr_below_30" and "27" in f.message for f in check(recent, plan))
    stale = visit_factory(egfr=None, history=({"date": "2023-01-01", "egfr": 27},))
    rule_ids = {f.rule_id for f in check(stale, plan)}
    assert "metformin_egfr_below_30" not in rule_ids and "metformin_continue_egfr_missing" in rule_ids


def test_creatinine_without_age_or_sex_is_not_a_missing_lab(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(egfr=None, creatinine=0.9, age=None, sex="unknown"), plan_factory("metformin"))
    assert "metformin_egfr_missing" not in {f.rule_id for f in findings}
