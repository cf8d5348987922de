"""Drug-level F1, Jaccard and F1 by action against examples worked out by hand (docs/evaluation.md)."""

from __future__ import annotations

import pytest

from diaguide.evaluation.bootstrap import intervals
from diaguide.evaluation.metrics import drug_key, drug_names, drug_pairs, jaccard, summarise, visit_columns
from diaguide.records.schema import Plan


def plan(*meds: tuple[str, str, str]) -> Plan:
    """meds: (drug, class, action) triples."""
    return Plan.model_validate({"medications": [{"drug": d, "drug_class": c, "action": a} for d, c, a in meds]})


def columns(pred: Plan | None, truth: Plan) -> dict:
    return visit_columns(
        truth=truth,
        proposed=pred,
        output=pred,
        parsed=pred is not None,
        proposed_findings=[],
        output_findings=[],
        guideline=None,
        text={},
    )


def test_drugs_are_named_by_the_formulary_else_by_their_own_name_lower_cased():
    assert drug_key("二甲双胍缓释片 0.5g") == drug_key("Glucophage") == drug_key("METFORMIN") == "metformin"
    assert drug_key("西格列汀") == "sitagliptin"
    # a combination is its ingredients, whichever name the record used
    assert drug_key("Entresto") == drug_key("沙库巴曲缬沙坦") == "sacubitril+valsartan"
    assert drug_key("  Xuezhikang  Capsule ") == "xuezhikang capsule"  # not in the formulary: its own name
    assert drug_key("复方丹参滴丸") == "复方丹参滴丸"


def test_drug_sets_keep_other_class_and_leave_stopped_drugs_out():
    p = plan(
        ("Glucophage", "metformin", "adjust"), ("glipizide", "sulfonylurea", "stop"), ("复方丹参滴丸", "other", "start")
    )
    assert drug_names(p) == {"metformin", "复方丹参滴丸"}
    assert drug_pairs(p) == {("metformin", "adjust"), ("glipizide", "stop"), ("复方丹参滴丸", "start")}
    assert drug_names(None) == set() and drug_pairs(None) == set()


def test_jaccard_of_two_empty_sets_is_one():
    assert jaccard(set(), set()) == 1.0
    assert jaccard({"a"}, set()) == 0.0
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)


# Five visits; per visit: drugs TP/FP/FN, Jaccard, and (drug, action) pairs per action.
# 1 (English): physician adjusts metformin, starts empagliflozin, stops glipizide, continues atorvastatin;
#   engine continues metformin, starts dapagliflozin, stops glipizide, continues atorvastatin.
#   drugs {metformin, empagliflozin, atorvastatin} vs {metformin, dapagliflozin, atorvastatin}: TP 2 FP 1 FN 1,
#   Jaccard 2/4. Classes are all right (metformin, sglt2i, statin): class F1 1 where drug F1 is 2/3.
#   start: FP 1 FN 1; stop: TP 1; adjust: FN 1; continue: TP 1 (atorvastatin) FP 1 (metformin).
# 2 (Chinese names, a drug outside the formulary): physician continues 二甲双胍缓释片 and 复方丹参滴丸, starts
#   西格列汀; engine continues Glucophage and 复方丹参滴丸, starts 阿卡波糖.
#   drugs: TP 2 (metformin, 复方丹参滴丸) FP 1 (acarbose) FN 1 (sitagliptin), Jaccard 2/4.
#   start: FP 1 FN 1; continue: TP 2.
# 3: both plans keep no drug: Jaccard 1.
# 4: no usable answer; the physician adjusts insulin glargine: drugs FN 1, Jaccard 0; adjust FN 1.
# 5: the engine starts Lantus where the physician keeps nothing: drugs FP 1, Jaccard 0; start FP 1.
# Pooled: drugs TP 4 FP 3 FN 3 -> P = R = F1 = 4/7; Jaccard (0.5 + 0.5 + 1 + 0 + 0) / 5 = 0.4.
# start TP 0 FP 3 FN 2 -> 0; stop TP 1 -> 1; adjust TP 0 FP 0 FN 2 -> precision undefined, recall 0, F1 0;
# continue TP 3 FP 1 FN 0 -> P 3/4, R 1, F1 6/7; change (start+stop+adjust) TP 1 FP 3 FN 4 -> P 1/4, R 1/5, F1 2/9.
VISITS = [
    (
        plan(
            ("Metformin", "metformin", "continue"),
            ("dapagliflozin", "sglt2i", "start"),
            ("glipizide", "sulfonylurea", "stop"),
            ("atorvastatin", "statin", "continue"),
        ),
        plan(
            ("metformin", "metformin", "adjust"),
            ("empagliflozin", "sglt2i", "start"),
            ("Glipizide XL", "sulfonylurea", "stop"),
            ("Lipitor", "statin", "continue"),
        ),
    ),
    (
        plan(
            ("Glucophage", "metformin", "continue"), ("复方丹参滴丸", "other", "continue"), ("阿卡波糖", "agi", "start")
        ),
        plan(
            ("二甲双胍缓释片", "metformin", "continue"),
            ("复方丹参滴丸", "other", "continue"),
            ("西格列汀", "dpp4i", "start"),
        ),
    ),
    (plan(), plan()),
    (None, plan(("insulin glargine", "basal_insulin", "adjust"))),
    (plan(("Lantus", "basal_insulin", "start")), plan()),
]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [columns(pred, truth) for pred, truth in VISITS]


def test_per_visit_counts(rows: list[dict]):
    assert [(r["drug_tp"], r["drug_fp"], r["drug_fn"]) for r in rows] == [
        (2, 1, 1),
        (2, 1, 1),
        (0, 0, 0),
        (0, 0, 1),
        (0, 1, 0),
    ]
    assert [r["drug_jaccard"] for r in rows] == [0.5, 0.5, 1.0, 0.0, 0.0]
    assert (rows[0]["med_tp"], rows[0]["med_fp"], rows[0]["med_fn"]) == (3, 0, 0)  # classes all right
    first = {
        a: (rows[0][f"{a}_tp"], rows[0][f"{a}_fp"], rows[0][f"{a}_fn"]) for a in ("start", "stop", "adjust", "continue")
    }
    assert first == {"start": (0, 1, 1), "stop": (1, 0, 0), "adjust": (0, 0, 1), "continue": (1, 1, 0)}


def test_pooled_drug_jaccard_and_action_figures(rows: list[dict]):
    m = summarise(rows)
    assert m["drug_precision"] == pytest.approx(4 / 7)
    assert m["drug_recall"] == pytest.approx(4 / 7)
    assert m["drug_f1"] == pytest.approx(4 / 7)
    assert m["drug_jaccard"] == pytest.approx(0.4)
    assert (m["action_precision.start"], m["action_recall.start"], m["action_f1.start"]) == (0.0, 0.0, 0.0)
    assert m["action_f1.stop"] == 1.0
    assert m["action_precision.adjust"] is None and m["action_recall.adjust"] == 0.0 and m["action_f1.adjust"] == 0.0
    assert m["action_precision.continue"] == pytest.approx(3 / 4)
    assert m["action_recall.continue"] == 1.0
    assert m["action_f1.continue"] == pytest.approx(6 / 7)
    assert m["action_precision.change"] == pytest.approx(1 / 4)
    assert m["action_recall.change"] == pytest.approx(1 / 5)
    assert m["action_f1.change"] == pytest.approx(2 / 9)


def test_bootstrap_gives_the_new_figures_intervals(rows: list[dict]):
    cells = intervals(rows, ["drug_f1", "drug_jaccard", "action_f1.change"], resamples=200, seed=1)
    assert cells["drug_jaccard"]["value"] == pytest.approx(0.4)
    for cell in cells.values():
        assert cell["low"] <= cell["value"] <= cell["high"]
        assert cell["low"] < cell["high"]  # five unlike visits: resampling moves the figure


def test_carry_forward_scores_nothing_on_changes_and_everything_it_continues():
    # a plan that continues what the patient was on is right on `continue` and can never be right on a change
    truth = plan(("metformin", "metformin", "continue"), ("empagliflozin", "sglt2i", "start"))
    carried = plan(("metformin", "metformin", "continue"))
    m = summarise([columns(carried, truth)])
    assert m["action_f1.continue"] == 1.0
    assert m["action_f1.change"] == 0.0
    assert m["drug_jaccard"] == pytest.approx(0.5)
