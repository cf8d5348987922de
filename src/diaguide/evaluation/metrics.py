"""Part-by-part scores of a predicted Plan against the physician's Plan: pure functions.

Every metric is a ratio of sums of per-visit numbers (`visit_columns`), so a figure over a
set of visits, and each bootstrap resample of it, is `sum(numerator) / sum(denominator)`
(`RATIOS`). The definitions, exactly:

- **Medication classes of a plan**: the set of `drug_class` values of its medication orders
  whose action is start, continue or adjust (stopped drugs are left out). Class `other` is
  left out too: it means "not one of our classes", so two `other` drugs are not a match.
  Current medications the plan does not mention are not counted (the plan is scored on what
  it writes). A class counts once per visit however many drugs of it the plan lists.
- `med_class_precision/recall/f1`: micro-averaged over visits: per visit TP = classes in both
  the prediction and the physician plan, FP = predicted only, FN = physician only; then
  P = ΣTP/(ΣTP+ΣFP), R = ΣTP/(ΣTP+ΣFN), F1 = 2ΣTP/(2ΣTP+ΣFP+ΣFN). A visit without a usable
  prediction contributes its physician classes as FN. Example: prediction {metformin, sglt2i}
  vs physician {metformin, glp1ra}: TP 1, FP 1, FN 1 -> P = R = F1 = 0.5.
- `med_action_accuracy`: over (visit, class) pairs where both plans order that class (any
  action, stop included, `other` excluded): the share where the set of actions given to the
  class is the same in both plans (e.g. {continue} vs {adjust} is a miss).
- `lab_precision/recall/f1`: the same micro F1 over the sets of LOINC codes ordered, each
  code canonicalised with `records.units.canonical_loinc` (59261-8 HbA1c mmol/mol counts as
  4548-4).
- `class_recall.<class>`: visits where the physician plan has the class and the prediction
  too, over visits where the physician plan has it.
- `parse_rate`: visits whose prediction has status ok or partial and a plan.
- `unsafe_proposed_rate`: visits (over all visits) where the checker, run on the parsed plan
  *before* safety, finds a warning or critical finding naming a medication that plan
  proposes (start, continue or adjust).
- `unsafe_unflagged_rate`: visits where the plan that left the engine has a medication
  order and the checker, re-run on that plan, finds a warning or critical finding that is not
  among the plan's attached findings (matched by rule id, severity and drugs). Must be 0.
- `contradiction_rate`: visits (over all visits) where the usable plan says what the visit contradicts
  (`prompts.target.consistency_cautions`: a drug continued, adjusted or stopped that the visit does not list;
  HbA1c called at or above goal against the plan's own goal, or cited other than the value on file). The
  engines show each such contradiction to the physician as a caution; this counts how often they must.
- `guideline_concordance`: visits where the predicted set of glucose-lowering classes equals
  the guideline engine's (`knowledge.guideline.recommend`); a visit without a usable
  prediction is never concordant.
- `bleu4`, `rouge1`, `rouge2`, `rougeL`: see `text_metrics`; means over visits, 0-100.

Drug-level figures (docs/evaluation.md defines them with worked examples):

- **Drugs of a plan**: the set of drugs it starts, continues or adjusts, each named by
  `drug_key`: the formulary's canonical name ('二甲双胍缓释片' and 'Glucophage' are both
  `metformin`; a combination is its ingredients joined by '+'), else the name lower-cased (a
  drug outside the formulary, class `other` included, still counts by its own name).
- `drug_precision/recall/f1`: the micro F1 above over these sets.
- `drug_jaccard`: the CHIP-2025 measure, |P∩T| / |P∪T| per visit, averaged over visits; a visit
  where both sets are empty scores 1.0, a visit without a usable prediction scores 0.0.
- `action_precision/recall/f1.<action>` for start, stop, adjust and continue: the micro F1 over
  the sets of (drug, action) pairs of one action (stop included, drugs named by `drug_key`), so a
  plan that adjusts metformin where the physician continues it misses both `adjust` and `continue`.
  `.change` pools start, stop and adjust: what a do-nothing baseline never gets right.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from diaguide.drugs.formulary import ingredients, normalise_text
from diaguide.evaluation.text_metrics import TEXT_METRICS
from diaguide.records.schema import DRUG_CLASSES, GLUCOSE_LOWERING_CLASSES, Finding, Plan
from diaguide.records.units import canonical_loinc
from diaguide.safety.checker import FLAG_SEVERITIES, flags_on_proposed

ACTIVE_ACTIONS = frozenset({"start", "continue", "adjust"})
SCORED_CLASSES: tuple[str, ...] = tuple(c for c in DRUG_CLASSES if c != "other")
ACTIONS: tuple[str, ...] = ("start", "stop", "adjust", "continue")
CHANGES: tuple[str, ...] = ("start", "stop", "adjust")  # what carry_forward never proposes


def _f1_ratios(name: str, tp: dict[str, float], fp: dict[str, float], fn: dict[str, float]) -> dict:
    """Micro precision, recall and F1 named `<kind>_precision<suffix>` ... from TP/FP/FN column weights."""
    kind, _, suffix = name.partition(".")
    tail = f".{suffix}" if suffix else ""
    twice = {k: 2 * w for k, w in tp.items()}
    return {
        f"{kind}_precision{tail}": (tp, {**tp, **fp}),
        f"{kind}_recall{tail}": (tp, {**tp, **fn}),
        f"{kind}_f1{tail}": (twice, {**twice, **fp, **fn}),
    }


def _action_ratios(action: str, parts: tuple[str, ...]) -> dict:
    return _f1_ratios(
        f"action.{action}",
        {f"{a}_tp": 1 for a in parts},
        {f"{a}_fp": 1 for a in parts},
        {f"{a}_fn": 1 for a in parts},
    )


# metric -> (numerator, denominator), each a linear combination of per-visit columns
RATIOS: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "med_class_precision": ({"med_tp": 1}, {"med_tp": 1, "med_fp": 1}),
    "med_class_recall": ({"med_tp": 1}, {"med_tp": 1, "med_fn": 1}),
    "med_class_f1": ({"med_tp": 2}, {"med_tp": 2, "med_fp": 1, "med_fn": 1}),
    "med_action_accuracy": ({"act_correct": 1}, {"act_total": 1}),
    "lab_precision": ({"lab_tp": 1}, {"lab_tp": 1, "lab_fp": 1}),
    "lab_recall": ({"lab_tp": 1}, {"lab_tp": 1, "lab_fn": 1}),
    "lab_f1": ({"lab_tp": 2}, {"lab_tp": 2, "lab_fp": 1, "lab_fn": 1}),
    "parse_rate": ({"parsed": 1}, {"n": 1}),
    "unsafe_proposed_rate": ({"unsafe_proposed": 1}, {"n": 1}),
    "unsafe_unflagged_rate": ({"unsafe_unflagged": 1}, {"n": 1}),
    "guideline_concordance": ({"concordant": 1}, {"n": 1}),
    "contradiction_rate": ({"contradicts": 1}, {"n": 1}),
    **_f1_ratios("drug", {"drug_tp": 1}, {"drug_fp": 1}, {"drug_fn": 1}),
    "drug_jaccard": ({"drug_jaccard": 1}, {"n": 1}),
    **{k: v for a in ACTIONS for k, v in _action_ratios(a, (a,)).items()},
    **_action_ratios("change", CHANGES),
    **{name: ({name: 1}, {"n": 1}) for name in TEXT_METRICS},
    **{f"class_recall.{c}": ({f"hit.{c}": 1}, {f"truth.{c}": 1}) for c in SCORED_CLASSES},
}
MAIN_METRICS: tuple[str, ...] = (
    "med_class_f1",
    "drug_f1",
    "drug_jaccard",
    "action_f1.change",
    "med_action_accuracy",
    "lab_f1",
    "parse_rate",
    "guideline_concordance",
    "unsafe_proposed_rate",
    "unsafe_unflagged_rate",
    "contradiction_rate",
)


def med_classes(plan: Plan | None) -> set[str]:
    """Classes the plan starts, continues or adjusts (`other` left out)."""
    if plan is None:
        return set()
    return {m.drug_class for m in plan.medications if m.action in ACTIVE_ACTIONS and m.drug_class != "other"}


def class_actions(plan: Plan | None) -> dict[str, frozenset[str]]:
    """Class -> the set of actions the plan gives its drugs (stop included, `other` left out)."""
    out: dict[str, set[str]] = {}
    for m in plan.medications if plan else []:
        if m.drug_class != "other":
            out.setdefault(m.drug_class, set()).add(m.action)
    return {c: frozenset(a) for c, a in out.items()}


def lab_codes(plan: Plan | None) -> set[str]:
    """Canonical LOINC codes the plan orders."""
    return {canonical_loinc(lab.loinc.strip()) for lab in plan.labs if lab.loinc.strip()} if plan else set()


def drug_key(name: str) -> str:
    """The name a drug is scored by: the formulary's generic name(s), else the name lower-cased."""
    found = ingredients(name)
    return "+".join(sorted({d.name for d in found})) if found else normalise_text(name)


def drug_pairs(plan: Plan | None) -> set[tuple[str, str]]:
    """(drug, action) of every order of the plan, drugs named by `drug_key`; blank names left out."""
    return {(drug_key(m.drug), m.action) for m in plan.medications if m.drug.strip()} if plan else set()


def drug_names(plan: Plan | None) -> set[str]:
    """Drugs the plan starts, continues or adjusts, named by `drug_key` (class `other` included)."""
    return {drug for drug, action in drug_pairs(plan) if action in ACTIVE_ACTIONS}


def jaccard(predicted: set[str], truth: set[str]) -> float:
    """|P∩T| / |P∪T|; 1.0 when both are empty (nothing to keep, and nothing kept)."""
    union = predicted | truth
    return len(predicted & truth) / len(union) if union else 1.0


def set_counts(predicted: set[str], truth: set[str]) -> tuple[int, int, int]:
    """(TP, FP, FN) of a predicted set against the true set."""
    return len(predicted & truth), len(predicted - truth), len(truth - predicted)


def action_matches(predicted: Plan | None, truth: Plan | None) -> tuple[int, int]:
    """(classes with the same actions, classes ordered in both plans)."""
    pred, true = class_actions(predicted), class_actions(truth)
    shared = pred.keys() & true.keys()
    return sum(pred[c] == true[c] for c in shared), len(shared)


def _finding_key(f: Finding) -> tuple[str, str, frozenset[str]]:
    return f.rule_id, f.severity, frozenset(d.strip().lower() for d in f.drugs)


def unflagged(plan: Plan | None, rechecked: Iterable[Finding]) -> list[Finding]:
    """Warning/critical findings of a re-check that the output plan does not carry."""
    if plan is None or not plan.medications:
        return []
    attached = {_finding_key(f) for f in plan.findings}
    return [f for f in rechecked if f.severity in FLAG_SEVERITIES and _finding_key(f) not in attached]


def visit_columns(
    *,
    truth: Plan,
    proposed: Plan | None,
    output: Plan | None,
    parsed: bool,
    proposed_findings: Iterable[Finding],
    output_findings: Iterable[Finding],
    guideline: Plan | None,
    text: Mapping[str, float],
    contradictions: int = 0,
) -> dict[str, float]:
    """The per-visit numbers every metric of `RATIOS` is summed from.

    Args:
        truth: the physician's plan.
        proposed: the engine's parsed plan before safety (None: no usable suggestion).
        output: the plan that left the engine, findings attached (None: no suggestion).
        parsed: the prediction's status was ok or partial and it had a plan.
        proposed_findings: the checker's findings on `proposed`.
        output_findings: the checker's findings re-run on `output`.
        guideline: the guideline engine's plan for the visit.
        text: `text_metrics.text_scores` of the prediction text against the target text.
        contradictions: how many things the usable plan says that the visit contradicts (`contradiction_rate`).
    """
    scored = (output if output is not None else proposed) if parsed else None
    pred_classes, true_classes = med_classes(scored), med_classes(truth)
    med_tp, med_fp, med_fn = set_counts(pred_classes, true_classes)
    act_correct, act_total = action_matches(scored, truth)
    lab_tp, lab_fp, lab_fn = set_counts(lab_codes(scored), lab_codes(truth))
    pred_drugs, true_drugs = drug_names(scored), drug_names(truth)
    drug_tp, drug_fp, drug_fn = set_counts(pred_drugs, true_drugs)
    pred_pairs, true_pairs = drug_pairs(scored), drug_pairs(truth)
    glucose = pred_classes & GLUCOSE_LOWERING_CLASSES
    concordant = parsed and guideline is not None and glucose == med_classes(guideline) & GLUCOSE_LOWERING_CLASSES
    columns: dict[str, float] = {
        "n": 1,
        "med_tp": med_tp,
        "med_fp": med_fp,
        "med_fn": med_fn,
        "act_correct": act_correct,
        "act_total": act_total,
        "lab_tp": lab_tp,
        "lab_fp": lab_fp,
        "lab_fn": lab_fn,
        "drug_tp": drug_tp,
        "drug_fp": drug_fp,
        "drug_fn": drug_fn,
        "drug_jaccard": jaccard(pred_drugs, true_drugs) if parsed else 0.0,
        "parsed": int(parsed),
        "unsafe_proposed": int(bool(flags_on_proposed(proposed, proposed_findings))),
        "unsafe_unflagged": int(bool(unflagged(output, output_findings))),
        "concordant": int(concordant),
        "contradicts": int(parsed and contradictions > 0),
        **{name: float(text.get(name, 0.0)) for name in TEXT_METRICS},
    }
    for action in ACTIONS:
        tp, fp, fn = set_counts({p for p in pred_pairs if p[1] == action}, {p for p in true_pairs if p[1] == action})
        columns.update({f"{action}_tp": tp, f"{action}_fp": fp, f"{action}_fn": fn})
    for c in SCORED_CLASSES:
        columns[f"truth.{c}"] = int(c in true_classes)
        columns[f"hit.{c}"] = int(c in true_classes and c in pred_classes)
    return columns


def ratio(sums: Mapping[str, float], metric: str) -> float | None:
    """A metric from summed columns; None when its denominator is 0 (undefined)."""
    num, den = RATIOS[metric]
    d = sum(w * sums.get(k, 0.0) for k, w in den.items())
    if d == 0:
        return None
    return sum(w * sums.get(k, 0.0) for k, w in num.items()) / d


def summarise(rows: Iterable[Mapping[str, float]]) -> dict[str, float | None]:
    """Every metric of `RATIOS` over a set of visits' columns."""
    sums: dict[str, float] = {}
    for row in rows:
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v
    return {metric: ratio(sums, metric) for metric in RATIOS}
