"""The clinical metrics against examples worked out by hand."""

from __future__ import annotations

import pytest

from diaguide.evaluation.metrics import (
    action_matches,
    flags_on_proposed,
    lab_codes,
    med_classes,
    summarise,
    unflagged,
    visit_columns,
)
from diaguide.records.schema import Finding, Plan


def plan(*meds: tuple[str, str, str], labs: tuple[str, ...] = ()) -> Plan:
    """meds: (drug, class, action) triples; labs: LOINC codes."""
    return Plan.model_validate(
        {
            "medications": [{"drug": d, "drug_class": c, "action": a} for d, c, a in meds],
            "labs": [{"loinc": code} for code in labs],
        }
    )


def columns(pred: Plan | None, truth: Plan, guideline: Plan | None = None, parsed: bool = True) -> dict:
    return visit_columns(
        truth=truth,
        proposed=pred,
        output=pred,
        parsed=parsed and pred is not None,
        proposed_findings=[],
        output_findings=[],
        guideline=guideline,
        text={},
    )


def finding(rule: str, severity: str, *drugs: str) -> Finding:
    return Finding(rule_id=rule, severity=severity, drugs=list(drugs), message="m", source="s")


def test_class_f1_of_one_visit_is_a_half():
    # prediction {metformin, sglt2i} vs physician {metformin, glp1ra}: TP 1, FP 1, FN 1
    pred = plan(("metformin", "metformin", "continue"), ("empagliflozin", "sglt2i", "start"))
    truth = plan(("metformin", "metformin", "continue"), ("semaglutide", "glp1ra", "start"))
    m = summarise([columns(pred, truth)])
    assert m["med_class_precision"] == pytest.approx(0.5)
    assert m["med_class_recall"] == pytest.approx(0.5)
    assert m["med_class_f1"] == pytest.approx(0.5)


def test_micro_average_pools_counts_over_visits():
    # visit 1: pred {metformin} vs truth {metformin, glp1ra}: TP 1, FN 1
    # visit 2: pred {metformin, sglt2i, dpp4i} vs truth {metformin}: TP 1, FP 2
    # pooled: TP 2, FP 2, FN 1 -> P 2/4, R 2/3, F1 4/7 (the mean of per-visit F1s would be (2/3 + 1/2)/2)
    v1 = columns(
        plan(("metformin", "metformin", "continue")), plan(("m", "metformin", "continue"), ("s", "glp1ra", "start"))
    )
    v2 = columns(
        plan(("m", "metformin", "continue"), ("e", "sglt2i", "start"), ("s", "dpp4i", "start")),
        plan(("m", "metformin", "adjust")),
    )
    m = summarise([v1, v2])
    assert m["med_class_precision"] == pytest.approx(0.5)
    assert m["med_class_recall"] == pytest.approx(2 / 3)
    assert m["med_class_f1"] == pytest.approx(4 / 7)


def test_stopped_drugs_and_other_class_do_not_count_as_classes():
    p = plan(("glipizide", "sulfonylurea", "stop"), ("metformin", "metformin", "adjust"), ("aspirin", "other", "start"))
    assert med_classes(p) == {"metformin"}
    assert med_classes(None) == set()


def test_action_accuracy_compares_classes_in_both_plans():
    # shared classes: metformin (continue vs adjust: miss), sulfonylurea (stop vs stop: hit); sglt2i only predicted
    pred = plan(
        ("metformin", "metformin", "continue"), ("gliclazide", "sulfonylurea", "stop"), ("e", "sglt2i", "start")
    )
    truth = plan(("metformin", "metformin", "adjust"), ("glimepiride", "sulfonylurea", "stop"))
    assert action_matches(pred, truth) == (1, 2)
    assert summarise([columns(pred, truth)])["med_action_accuracy"] == pytest.approx(0.5)


def test_lab_f1_uses_canonical_loinc_codes():
    # 59261-8 (HbA1c in mmol/mol) is the same test as 4548-4 (HbA1c %)
    assert lab_codes(plan(labs=("59261-8", "33914-3"))) == {"4548-4", "33914-3"}
    # pred {HbA1c, eGFR} vs truth {HbA1c, UACR, LDL}: TP 1, FP 1, FN 2 -> F1 = 2/(2+1+2) = 0.4
    m = summarise([columns(plan(labs=("59261-8", "33914-3")), plan(labs=("4548-4", "9318-7", "13457-7")))])
    assert m["lab_precision"] == pytest.approx(0.5)
    assert m["lab_recall"] == pytest.approx(1 / 3)
    assert m["lab_f1"] == pytest.approx(0.4)


def test_no_suggestion_counts_every_physician_class_as_missed_and_is_not_concordant():
    truth = plan(("metformin", "metformin", "continue"), ("s", "glp1ra", "start"))
    c = columns(None, truth, guideline=plan())
    assert (c["med_tp"], c["med_fp"], c["med_fn"]) == (0, 0, 2)
    assert c["parsed"] == 0 and c["concordant"] == 0
    m = summarise([c])
    assert m["med_class_f1"] == 0.0
    assert m["med_class_precision"] is None  # nothing predicted: undefined, not 0


def test_per_class_recall():
    # metformin in truth of 2 visits, predicted in 1; glp1ra in truth of 1 visit, predicted in 1
    v1 = columns(plan(("m", "metformin", "continue")), plan(("m", "metformin", "continue")))
    v2 = columns(plan(("s", "glp1ra", "start")), plan(("m", "metformin", "continue"), ("s", "glp1ra", "start")))
    m = summarise([v1, v2])
    assert m["class_recall.metformin"] == pytest.approx(0.5)
    assert m["class_recall.glp1ra"] == pytest.approx(1.0)
    assert m["class_recall.tzd"] is None


def test_guideline_concordance_looks_at_glucose_lowering_classes_only():
    guideline = plan(("metformin", "metformin", "continue"), ("atorvastatin", "statin", "start"))
    same = columns(plan(("metformin", "metformin", "adjust")), plan(), guideline=guideline)  # statin left out: fine
    differs = columns(
        plan(("metformin", "metformin", "continue"), ("e", "sglt2i", "start")), plan(), guideline=guideline
    )
    assert same["concordant"] == 1
    assert differs["concordant"] == 0
    assert summarise([same, differs])["guideline_concordance"] == pytest.approx(0.5)


def test_flags_on_proposed_only_count_warnings_on_drugs_the_plan_keeps():
    p = plan(("Metformin", "metformin", "start"), ("glipizide", "sulfonylurea", "stop"))
    found = [
        finding("metformin_egfr_below_30", "critical", "metformin"),
        finding("unknown_drug", "info", "metformin"),
        finding("su_hypo", "warning", "glipizide"),  # stopped: not proposed
        finding("other_current", "warning", "lisinopril"),  # a current drug the plan did not mention
    ]
    assert [f.rule_id for f in flags_on_proposed(p, found)] == ["metformin_egfr_below_30"]


def test_unflagged_finds_a_warning_missing_from_the_output():
    critical = finding("metformin_egfr_below_30", "critical", "metformin")
    carried = plan(("metformin", "metformin", "start")).model_copy(update={"findings": [critical]})
    stripped = plan(("metformin", "metformin", "start"))
    assert unflagged(carried, [critical]) == []
    assert unflagged(stripped, [critical]) == [critical]
    assert unflagged(stripped, [finding("unknown_drug", "info", "metformin")]) == []  # info is not a flag
    assert unflagged(None, [critical]) == []
