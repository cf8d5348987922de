"""Name normalisation, allergies, duplicates, dose ceilings, unknown drugs, insulin cuts."""

from __future__ import annotations

import pytest

from diaguide.safety.checker import check
from diaguide.safety.dose import parse_dose


@pytest.mark.parametrize(
    "name",
    [
        "metformin",
        "Glucophage",
        "格华止",
        "二甲双胍缓释片",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
        "860975",
    ],
)
def test_plan_names_are_normalised_before_checking(visit_factory, plan_factory, name) -> None:
    findings = check(visit_factory(egfr=25), plan_factory((name, "continue")))
    hit = [f for f in findings if f.rule_id == "metformin_egfr_below_30"]
    assert hit and hit[0].drugs == [name] and hit[0].severity == "critical"


@pytest.mark.parametrize(
    ("name", "drug_class"), [("拜糖平", "agi"), ("诺和灵30R", "premixed_insulin"), ("Lantus", "basal_insulin")]
)
def test_chinese_and_brand_names_reach_class_rules(visit_factory, plan_factory, name, drug_class) -> None:
    """A class-level rule sees the brand: two drugs of the class are a duplicate."""
    other = {"agi": "voglibose", "premixed_insulin": "Humalog Mix 75/25", "basal_insulin": "insulin degludec"}[
        drug_class
    ]
    findings = check(visit_factory(meds=(other,)), plan_factory((name, "start")))
    assert any(f.rule_id == f"duplicate.{drug_class}" for f in findings)


def test_unknown_drug_gives_info_not_silence(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(), plan_factory(("Zorblamycin 5 mg", "start"), ("metformin", "continue")))
    unknown = [f for f in findings if f.rule_id == "unknown_drug"]
    assert len(unknown) == 1 and unknown[0].severity == "info"
    assert unknown[0].drugs == ["Zorblamycin 5 mg"] and "not in formulary" in unknown[0].message


def test_unknown_drug_keeps_its_written_class(visit_factory, plan_factory) -> None:
    """A drug the formulary lacks but the plan classes as a TZD still meets the heart-failure rule."""
    from diaguide.records.schema import MedicationOrder

    plan = plan_factory()
    plan.medications.append(MedicationOrder(drug="lobeglitazone", drug_class="tzd", action="start"))
    rule_ids = {f.rule_id for f in check(visit_factory(dx=("E11.9", "I50.9")), plan)}
    assert {"unknown_drug", "tzd_heart_failure"} <= rule_ids


# ------------------------------------------------------------------ allergies
@pytest.mark.parametrize(
    ("allergy", "plan_drug", "rule", "severity"),
    [
        ({"substance": "metformin", "reaction": "rash"}, "格华止", "allergy", "critical"),
        ({"substance": "二甲双胍"}, "Glucophage", "allergy", "critical"),
        ({"substance": "sulfonylureas"}, "glipizide", "allergy", "critical"),
        ({"substance": "DPP-4 inhibitors", "reaction": "angioedema"}, "linagliptin", "allergy", "critical"),
        ({"substance": "x", "drug_class": "statin"}, "atorvastatin", "allergy", "critical"),
        ({"substance": "glipizide"}, "glimepiride", "allergy.same_class", "warning"),
        ({"substance": "sulfa drugs", "reaction": "hives"}, "glimepiride", "allergy.cross", "warning"),
        ({"substance": "磺胺"}, "格列美脲", "allergy.cross", "warning"),
        ({"substance": "liraglutide", "reaction": "anaphylaxis"}, "tirzepatide", "allergy.cross", "warning"),
        ({"substance": "lisinopril", "reaction": "angioedema"}, "losartan", "allergy.cross", "warning"),
        ({"substance": "metformin", "reaction": "GI intolerance, diarrhoea"}, "metformin", "intolerance", "warning"),
        ({"substance": "二甲双胍", "reaction": "胃肠道反应"}, "二甲双胍", "intolerance", "warning"),
        ({"substance": "lisinopril", "reaction": "dry cough"}, "lisinopril", "intolerance", "warning"),
    ],
)
def test_allergy_by_substance_class_and_cross_class(
    visit_factory, plan_factory, allergy, plan_drug, rule, severity
) -> None:
    findings = check(visit_factory(allergies=(allergy,)), plan_factory((plan_drug, "start")))
    hit = [f for f in findings if f.rule_id == rule]
    assert hit, [f.rule_id for f in findings]
    assert hit[0].severity == severity and hit[0].drugs == [plan_drug]


@pytest.mark.parametrize(
    ("allergy", "plan_drug"),
    [("penicillin", "metformin"), ("lisinopril", "losartan"), ("carbamazepine", "losartan"), ("insulin", "metformin")],
)
def test_unrelated_allergy_is_quiet(visit_factory, plan_factory, allergy, plan_drug) -> None:
    findings = check(visit_factory(allergies=(allergy,)), plan_factory((plan_drug, "start")))
    assert not [f for f in findings if f.rule_id.startswith(("allergy", "intolerance"))]


# ------------------------------------------------------------------ duplicates
@pytest.mark.parametrize(
    ("current", "orders", "rule"),
    [
        (("glipizide 5 mg qd",), [("glimepiride", "start")], "duplicate.sulfonylurea"),
        ((), [("gliclazide", "start"), ("格列美脲", "continue")], "duplicate.sulfonylurea"),
        (("sitagliptin",), [("liraglutide", "start")], "duplicate.dpp4i_with_glp1"),
        (("linagliptin",), [("Mounjaro", "start")], "duplicate.dpp4i_with_glp1"),
        (("semaglutide 1 mg weekly",), [("tirzepatide", "start")], "duplicate.glp1ra_with_tirzepatide"),
        (("lisinopril",), [("losartan", "start")], "duplicate.acei_with_arb"),
        (("atorvastatin",), [("rosuvastatin", "start")], "duplicate.statin"),
        ((), [("metformin", "continue", "500 mg bid"), ("Janumet 50/1000 mg bid", "start")], "duplicate.metformin"),
        (("glimepiride",), [("repaglinide", "start")], "duplicate.sulfonylurea_with_glinide"),
        (("Humulin 70/30",), [("insulin glargine", "start")], "duplicate.premixed_with_basal"),
        (("insulin glargine 20 U qd",), [("Tresiba", "start")], "duplicate.basal_insulin"),
    ],
)
def test_duplicate_or_pointless_combination(visit_factory, plan_factory, current, orders, rule) -> None:
    findings = check(visit_factory(meds=current), plan_factory(*orders))
    hit = [f for f in findings if f.rule_id == rule]
    assert hit and hit[0].severity == "warning" and len(hit[0].drugs) >= 2


def test_switch_within_a_class_is_not_a_duplicate(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(meds=("glipizide",)), plan_factory(("glipizide", "stop"), ("gliclazide", "start")))
    assert not [f for f in findings if f.rule_id.startswith("duplicate")]


def test_same_drug_current_and_plan_is_not_a_duplicate(visit_factory, plan_factory) -> None:
    findings = check(
        visit_factory(meds=("Glucophage 500 mg bid",)), plan_factory(("二甲双胍", "adjust", "1000 mg bid"))
    )
    assert not [f for f in findings if f.rule_id.startswith("duplicate")]


# ------------------------------------------------------------------ doses
@pytest.mark.parametrize(
    ("dose", "freq", "unit", "amount", "period"),
    [
        ("1000 mg bid", None, "mg", 2000, "day"),
        ("0.5g tid", None, "mg", 1500, "day"),
        ("10 U qd", None, "U", 10, "day"),
        ("0.5g", "每日3次", "mg", 1500, "day"),
        ("早12U 晚8U", None, "U", 20, "day"),
        ("0.5 mg weekly", None, "mg", 0.5, "week"),
        ("10 mcg bid", None, "mcg", 20, "day"),
        ("2550 mg/day", None, "mg", 2550, "day"),
        ("500mg 2 times a day", None, "mg", 1000, "day"),
        ("850 mg 3x daily", None, "mg", 2550, "day"),
        ("0.5g", "一天2次", "mg", 1000, "day"),
        ("每次0.5g，每日3次", None, "mg", 1500, "day"),
        ("2 mg", "1次/周", "mg", 2, "week"),
        ("0.5g 3次/日", None, "mg", 1500, "day"),
        ("1500mg/日", None, "mg", 1500, "day"),
    ],
)
def test_dose_text_is_read(dose, freq, unit, amount, period) -> None:
    parsed = parse_dose(dose, freq, unit)
    assert parsed is not None and parsed.amount == pytest.approx(amount) and parsed.period == period


@pytest.mark.parametrize("dose", ["1 片 bid", "0.2 U/kg", "50/1000 mg bid", "", None, "as directed", "2 ml"])
def test_unreadable_dose_is_not_guessed(dose) -> None:
    assert parse_dose(dose, None, "mg") is None


@pytest.mark.parametrize(
    ("drug", "dose", "region", "rule"),
    [
        ("metformin", "1000 mg tid", "ada", "dose_above_max"),
        ("metformin", "1000 mg bid", "ada", None),
        ("metformin", "850 mg tid", "ada", None),
        ("metformin", "850 mg tid", "cds", "dose_above_max"),
        ("二甲双胍", "0.5g tid", "cds", None),
        ("二甲双胍", "1 片 bid", "cds", None),
        ("glimepiride", "8 mg bid", "ada", "dose_far_above_max"),
        ("semaglutide", "2 mg weekly", "ada", None),
        ("Ozempic", "3 mg weekly", "ada", "dose_above_max"),
        ("Rybelsus", "14 mg qd", "ada", None),
        ("sitagliptin", "150 mg qd", "ada", "dose_above_max"),
        ("insulin glargine", "60 U qd", "ada", None),
        ("dulaglutide", "1.5 mg qd", "ada", "dose_far_above_max"),
        ("Trulicity", "1.5 mg weekly", "ada", None),
    ],
)
def test_dose_above_maximum(visit_factory, plan_factory, drug, dose, region, rule) -> None:
    findings = [
        f
        for f in check(visit_factory(), plan_factory((drug, "continue", dose)), region)
        if f.rule_id.startswith("dose_")
    ]
    if rule is None:
        assert findings == []
    else:
        assert [f.rule_id for f in findings] == [rule] and findings[0].drugs == [drug]


def test_over_basalisation_is_info(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(weight_kg=70), plan_factory(("insulin glargine", "adjust", "40 U qd")))
    over = [f for f in findings if f.rule_id == "basal_over_basalisation"]
    assert over and over[0].severity == "info" and "0.57" in over[0].message


# ------------------------------------------------------------------ SGLT2i with an insulin cut
@pytest.mark.parametrize(("new_dose", "fires"), [("20 U qd", True), ("25 U qd", False), ("24 U qd", False)])
def test_sglt2i_with_sharp_insulin_cut(visit_factory, plan_factory, new_dose, fires) -> None:
    visit = visit_factory(meds=(("insulin glargine", "30 U qd"),))
    plan = plan_factory(("empagliflozin", "start"), ("insulin glargine", "adjust", new_dose))
    hit = [f for f in check(visit, plan) if f.rule_id == "sglt2i_insulin_cut"]
    assert bool(hit) is fires
    if fires:
        assert hit[0].severity == "warning" and "ketoacidosis" in hit[0].message


@pytest.mark.parametrize(
    ("line", "drug_class", "visit_kw", "rule"),
    [
        ("GLP-1 RA weekly", "glp1ra", {"dx": ("E11.9", "E31.22")}, "glp1_men2_mtc"),
        ("basal insulin 10 U qhs", "basal_insulin", {"dx": ("E11.9", "E16.0")}, "hypoglycaemia_recent"),
        ("SGLT2 inhibitor", "sglt2i", {"egfr": 15}, "sglt2i_start_egfr_below_20"),
        ("磺脲类", "sulfonylurea", {"dx": ("E10.9",), "meds": ("insulin glargine",)}, "type1_sulfonylurea"),
    ],
)
def test_class_named_instead_of_drug_is_checked_by_class(
    visit_factory, plan_factory, line, drug_class, visit_kw, rule
) -> None:
    findings = check(visit_factory(**visit_kw), plan_factory((line, "start")))
    ids = {f.rule_id for f in findings}
    assert rule in ids and "class_only" in ids and "unknown_drug" not in ids


def test_type1_plan_saying_just_insulin_is_not_oral_only(visit_factory, plan_factory) -> None:
    findings = check(visit_factory(dx=("E10.9",)), plan_factory(("insulin", "continue"), ("metformin", "start")))
    assert "type1_no_insulin" not in {f.rule_id for f in findings}


def test_secretagogue_with_alcohol_abuse(visit_factory, plan_factory) -> None:
    visit = visit_factory(dx=("E11.9", "F10.20"))
    assert any(f.rule_id == "sulfonylurea_alcohol" for f in check(visit, plan_factory(("glimepiride", "start"))))
