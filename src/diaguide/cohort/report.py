"""What a cohort contains (summary.json) and how its physicians compare with the engines (agreement.json).

Agreement, per visit: the glucose-lowering drug classes the physician's plan leaves the patient
on (orders with action start, continue or adjust) against the classes the guideline engine's
reference plan leaves them on. `exact` is 1 when the two sets are equal; `jaccard` is
|A ∩ B| / |A ∪ B| (1 when both are empty). `started_match` compares only the classes each plan
starts. Flags are the safety checker's findings on the physician's plan at warning or critical.
The engine is asked with region "cds" for Chinese visits and "ada" otherwise.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import TYPE_CHECKING

from diaguide.cohort.deviations import DEVIATION_RATE, KINDS, TRAP_RATE, TRAPS
from diaguide.cohort.patients import REFERENCE_DATE
from diaguide.knowledge.guideline import recommend
from diaguide.records.schema import GLUCOSE_LOWERING_CLASSES, Plan, kept_glucose_classes
from diaguide.safety.checker import check
from diaguide.safety.complexity import complexity

if TYPE_CHECKING:
    from diaguide.cohort.generate import Generated


def _count(values) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def summarise(cohort: list[Generated], seed: int, lang: str) -> dict:
    """Counts by diabetes type, practice style, language, complexity, comorbidity and deviation."""
    profiles = list({g.profile.patient_id: g.profile for g in cohort}.values())
    visits = len(cohort)
    deviated = [g for g in cohort if g.deviation]
    by_style_visits = Counter(g.record.style for g in cohort)
    return {
        "seed": seed,
        "lang": lang,
        "reference_date": REFERENCE_DATE.isoformat(),
        "patients": len(profiles),
        "visits": visits,
        "by_type": _count(p.dtype for p in profiles),
        "by_style": {"patients": _count(p.style for p in profiles), "visits": dict(sorted(by_style_visits.items()))},
        "by_language": {
            "patients": _count(p.lang for p in profiles),
            "visits": _count(g.record.visit.language for g in cohort),
        },
        "by_complexity": _complexity(cohort),
        "older_adults": sum(p.age(p.dates[0]) >= 65 for p in profiles),
        "frail": sum(p.frail for p in profiles),
        "comorbidities": {
            "hypertension": sum(p.htn for p in profiles),
            "dyslipidaemia": sum(p.dyslip for p in profiles),
            "ckd": sum(p.ckd for p in profiles),
            "ascvd": sum(bool(p.ascvd) for p in profiles),
            "heart_failure": sum(p.hf for p in profiles),
            "masld": sum(p.masld for p in profiles),
            "retinopathy": sum(p.retinopathy for p in profiles),
            "neuropathy": sum(p.neuropathy for p in profiles),
            "obesity_at_first_visit": len(
                {
                    g.record.visit.patient_id
                    for g in cohort
                    if g.record.visit.visit_id.endswith("-V1") and g.record.visit.has_diagnosis("E66")
                }
            ),
        },
        "deviations": {
            "documented_rate": DEVIATION_RATE,
            "trap_rate": TRAP_RATE,
            "trap_kinds": list(TRAPS),
            "expected_rate": round(sum(g.deviation_chance for g in cohort) / visits, 4) if visits else 0.0,
            "visits": len(deviated),
            "rate": round(len(deviated) / visits, 4) if visits else 0.0,
            "by_kind": {k: sum(g.deviation == k for g in deviated) for k in KINDS},
            "by_style": {s: sum(g.record.style == s for g in deviated) for s in sorted(by_style_visits)},
        },
    }


def _complexity(cohort: list[Generated]) -> dict[str, int]:
    return _count(complexity(g.record.visit).level for g in cohort)


def started_classes(plan: Plan) -> set[str]:
    return {m.drug_class for m in plan.medications if m.action == "start" and m.drug_class in GLUCOSE_LOWERING_CLASSES}


def jaccard(a: set[str], b: set[str]) -> float:
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def agreement_report(cohort: list[Generated], out=sys.stderr) -> dict | None:
    """Physician plans vs the guideline engine and the safety checker, by practice style."""
    rows: dict[str, dict[str, float]] = {}
    for g in cohort:
        visit, plan = g.record.visit, g.record.plan
        region = "cds" if visit.language == "zh" else "ada"
        ref = recommend(visit, region=region)
        doc, eng = kept_glucose_classes(plan), kept_glucose_classes(ref)
        findings = check(visit, plan, region=region)
        severities = {f.severity for f in findings}
        for key in (g.record.style or "unknown", "all"):
            r = rows.setdefault(key, Counter())
            r["visits"] += 1
            r["exact"] += doc == eng
            r["jaccard"] += jaccard(doc, eng)
            r["started_match"] += started_classes(plan) == started_classes(ref)
            r["flagged"] += bool(severities & {"warning", "critical"})
            r["critical"] += "critical" in severities
            r["deviations"] += g.deviation is not None
            r["deviations_flagged"] += g.deviation is not None and bool(severities & {"warning", "critical"})
    report = {"definition": __doc__.split("\n\n", 1)[1].strip(), "by_style": {}}
    for key in sorted(rows, key=lambda k: (k == "all", k)):
        r = rows[key]
        n = r["visits"]
        report["by_style"][key] = {
            "visits": int(n),
            "agreement_exact": round(r["exact"] / n, 4),
            "agreement_jaccard": round(r["jaccard"] / n, 4),
            "started_match": round(r["started_match"] / n, 4),
            "flagged_warning_or_critical": int(r["flagged"]),
            "flagged_critical": int(r["critical"]),
            "deviations": int(r["deviations"]),
            "deviations_flagged": int(r["deviations_flagged"]),
        }
    _print_table(report["by_style"], out)
    return report


def _print_table(rows: dict[str, dict], out) -> None:
    print(f"{'style':<18}{'visits':>7}{'exact':>8}{'jaccard':>9}{'flagged':>9}{'critical':>9}{'dev':>5}", file=out)
    for key, r in rows.items():
        print(
            f"{key:<18}{r['visits']:>7}{r['agreement_exact']:>8.2f}{r['agreement_jaccard']:>9.2f}"
            f"{r['flagged_warning_or_critical']:>9}{r['flagged_critical']:>9}{r['deviations']:>5}",
            file=out,
        )
