"""Every interaction pair of knowledge/interactions.yaml, matched by drug or by class, both ways round."""

from __future__ import annotations

import pytest

from diaguide.safety.checker import check
from diaguide.safety.interactions import interaction_rules

_RANK = {"info": 0, "warning": 1, "critical": 2}

# (plan drug started, current drug, visit kwargs, rule id, lowest severity expected)
PAIRS = [
    ("repaglinide", "gemfibrozil 600 mg bid", {}, "repaglinide_gemfibrozil", "critical"),
    ("诺和龙", "吉非罗齐", {}, "repaglinide_gemfibrozil", "critical"),
    ("repaglinide", "Plavix 75 mg", {}, "repaglinide_clopidogrel", "warning"),
    ("glimepiride", "fluconazole 150 mg", {}, "sulfonylurea_azole", "warning"),
    ("glipizide", "voriconazole", {}, "sulfonylurea_azole", "warning"),
    ("gliclazide", "miconazole oral gel", {}, "sulfonylurea_azole", "warning"),
    ("glyburide", "gemfibrozil", {}, "sulfonylurea_gemfibrozil", "warning"),
    ("glyburide", "fenofibrate 145 mg", {}, "sulfonylurea_other_fibrate", "warning"),
    ("glimepiride", "ciprofloxacin 500 mg bid", {}, "sulfonylurea_fluoroquinolone", "warning"),
    ("glipizide", "levofloxacin", {}, "sulfonylurea_fluoroquinolone", "warning"),
    ("glipizide", "Bactrim DS", {}, "sulfonylurea_sulfonamide", "warning"),
    ("glimepiride", "phenelzine", {}, "sulfonylurea_maoi", "warning"),
    ("glimepiride", ("aspirin", "1000 mg tid"), {}, "sulfonylurea_high_dose_salicylate", "warning"),
    ("insulin glargine", "propranolol 40 mg bid", {}, "nonselective_beta_blocker_hypoglycaemia", "warning"),
    ("glimepiride", "metoprolol", {"age": 78}, "cardioselective_beta_blocker_hypoglycaemia", "warning"),
    ("metformin", "prednisone 40 mg qd", {}, "corticosteroid_hyperglycaemia", "warning"),
    ("sitagliptin", "dexamethasone", {}, "corticosteroid_hyperglycaemia", "warning"),
    ("insulin glargine", "olanzapine", {}, "antipsychotic_hyperglycaemia", "warning"),
    ("metformin", "quetiapine", {}, "antipsychotic_hyperglycaemia", "warning"),
    ("metformin", "niacin ER", {}, "niacin_hyperglycaemia", "warning"),
    ("metformin", "hydrochlorothiazide 25 mg", {}, "thiazide_hyperglycaemia", "info"),
    ("insulin glargine", "bisoprolol", {}, "cardioselective_beta_blocker_hypoglycaemia", "warning"),
    ("metformin", "iodinated contrast (CT angiography)", {"egfr": 50}, "metformin_iodinated_contrast", "warning"),
    ("metformin", "cimetidine", {}, "metformin_oct2_inhibitor", "warning"),
    ("metformin", "dolutegravir", {}, "metformin_oct2_inhibitor", "warning"),
    ("metformin", "ranolazine", {}, "metformin_oct2_inhibitor", "warning"),
    ("metformin", "trimethoprim", {}, "metformin_oct2_inhibitor", "warning"),
    ("pioglitazone", "insulin glargine", {}, "pioglitazone_insulin", "warning"),
    ("Entresto 49/51 mg bid", "lisinopril 10 mg", {}, "acei_sacubitril", "critical"),
    ("sitagliptin", "glimepiride", {}, "dpp4i_or_sglt2i_with_sulfonylurea_or_insulin", "warning"),
    ("empagliflozin", "insulin glargine", {}, "dpp4i_or_sglt2i_with_sulfonylurea_or_insulin", "warning"),
    ("empagliflozin", "furosemide 40 mg", {}, "sglt2i_diuretic_volume", "info"),
]


def _current(drug):
    return drug if isinstance(drug, tuple) else (drug, None)


@pytest.mark.parametrize(
    ("new", "current", "visit_kw", "rule", "severity"), PAIRS, ids=[f"{p[0]}+{p[1]}" for p in PAIRS]
)
def test_pair_found_when_plan_starts_a_drug(
    visit_factory, plan_factory, new, current, visit_kw, rule, severity
) -> None:
    visit = visit_factory(meds=(_current(current),), **visit_kw)
    findings = [f for f in check(visit, plan_factory((new, "start"))) if f.rule_id == f"interaction.{rule}"]
    assert findings, f"{rule} not found"
    assert _RANK[findings[0].severity] >= _RANK[severity]
    assert new in findings[0].drugs
    assert findings[0].source


@pytest.mark.parametrize(
    ("new", "current", "visit_kw", "rule", "severity"), PAIRS[:12], ids=[f"{p[1]}" for p in PAIRS[:12]]
)
def test_pair_found_the_other_way_round(visit_factory, plan_factory, new, current, visit_kw, rule, severity) -> None:
    """The interacting drug is the new one; the diabetes drug is already taken."""
    drug, dose = _current(current)
    visit = visit_factory(meds=(new,), **visit_kw)
    findings = check(visit, plan_factory((drug, "start", dose)))
    assert any(f.rule_id == f"interaction.{rule}" for f in findings)


def test_every_table_entry_is_exercised() -> None:
    tested = {p[3] for p in PAIRS}
    table = {r["id"] for r in interaction_rules()}
    assert table - tested <= {"glp1ra_with_sulfonylurea_or_insulin"}


def test_thiazide_warns_only_when_it_is_the_new_drug(visit_factory, plan_factory) -> None:
    started = check(
        visit_factory(meds=("metformin 500 mg bid",)), plan_factory(("hydrochlorothiazide", "start", "12.5 mg qd"))
    )
    assert [f.severity for f in started if "thiazide" in f.rule_id] == ["warning"]
    kept = check(visit_factory(meds=("hydrochlorothiazide 25 mg",)), plan_factory(("metformin", "start")))
    assert [f.severity for f in kept if "thiazide" in f.rule_id] == ["info"]


def test_low_dose_aspirin_with_sulfonylurea_is_not_flagged(visit_factory, plan_factory) -> None:
    visit = visit_factory(meds=(("aspirin", "81 mg qd"),))
    assert not [f for f in check(visit, plan_factory(("glimepiride", "start"))) if "salicylate" in f.rule_id]


def test_long_standing_combination_is_info_new_one_warns(visit_factory, plan_factory) -> None:
    visit = visit_factory(meds=("glimepiride 2 mg qd", "sitagliptin 100 mg qd"))
    cont = check(visit, plan_factory(("glimepiride", "continue"), ("sitagliptin", "continue")))
    pair = [f for f in cont if "sulfonylurea_or_insulin" in f.rule_id]
    assert pair and pair[0].severity == "info"
    reduced = check(
        visit_factory(meds=(("glimepiride", "4 mg qd"),)),
        plan_factory(("sitagliptin", "start"), ("glimepiride", "adjust", "2 mg qd")),
    )
    assert [f.severity for f in reduced if "sulfonylurea_or_insulin" in f.rule_id] == ["info"]


def test_metformin_contrast_with_normal_kidneys_is_info(visit_factory, plan_factory) -> None:
    visit = visit_factory(egfr=90, meds=("iohexol",))
    found = [f for f in check(visit, plan_factory(("metformin", "continue"))) if "contrast" in f.rule_id]
    assert [f.severity for f in found] == ["info"]


def test_stopped_drug_does_not_interact(visit_factory, plan_factory) -> None:
    visit = visit_factory(meds=("gemfibrozil",))
    findings = check(visit, plan_factory(("repaglinide", "stop")))
    assert not [f for f in findings if f.rule_id.startswith("interaction.")]


def test_pair_of_current_drugs_not_in_the_plan_is_raised_only_when_contraindicated(visit_factory, plan_factory) -> None:
    plan = plan_factory(("lisinopril", "start"))
    found = check(visit_factory(meds=("repaglinide", "gemfibrozil")), plan)
    assert [f.severity for f in found if f.rule_id.startswith("interaction.")] == ["critical"]
    quiet = check(visit_factory(meds=("glimepiride", "fluconazole")), plan)
    assert not [f for f in quiet if f.rule_id.startswith("interaction.")]


@pytest.mark.parametrize(
    ("where", "text", "fires"),
    [
        ("treatment", "Continue metformin; coronary angiography next week.", True),
        ("treatment", "拟行冠脉造影", True),
        ("lab", "CT angiography", True),
        ("notes", "Scheduled for contrast-enhanced CT of the abdomen on Monday.", True),
        ("notes", "s/p PCI 2019, stable angina.", False),
        ("notes", "History of coronary angiography in 2015.", False),
        ("treatment", "No contrast study needed.", False),
    ],
)
def test_contrast_study_in_plan_or_notes_meets_metformin(visit_factory, plan_factory, where, text, fires) -> None:
    from diaguide.records.schema import LabOrder

    visit = visit_factory(egfr=50, present_illness=text if where == "notes" else "")
    plan = plan_factory(("metformin", "continue", "1000 mg bid"))
    if where == "treatment":
        plan.treatment = text
    if where == "lab":
        plan.labs.append(LabOrder(loinc="x", name=text, reason="chest pain"))
    found = [f for f in check(visit, plan) if f.rule_id == "interaction.metformin_iodinated_contrast"]
    assert bool(found) is fires
    if fires:
        assert found[0].severity == "warning" and "metformin" in found[0].drugs
