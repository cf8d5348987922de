"""summary.json and agreement.json: what a reader of the cohort report sees."""

from __future__ import annotations

import io
import json

import pytest

from diaguide.cohort.generate import build_cohort, cohort_command
from diaguide.cohort.report import jaccard
from diaguide.records.schema import MedicationOrder, Plan, kept_glucose_classes


def test_jaccard_and_kept_glucose_classes():
    plan = Plan(
        medications=[
            MedicationOrder(drug="metformin", drug_class="metformin", action="continue"),
            MedicationOrder(drug="glimepiride", drug_class="sulfonylurea", action="stop"),
            MedicationOrder(drug="empagliflozin", drug_class="sglt2i", action="start"),
            MedicationOrder(drug="losartan", drug_class="arb", action="continue"),
        ]
    )
    assert kept_glucose_classes(plan) == {"metformin", "sglt2i"}
    assert jaccard({"metformin", "sglt2i"}, {"metformin", "glp1ra"}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0


def test_summary_and_agreement_counts_add_up(tmp_path):
    # agreement on, as `diaguide cohort` runs by default (the engines take a few ms a visit)
    assert cohort_command(patients=50, seed=9, lang="mixed", out=str(tmp_path)) == 0
    s = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert sum(s["by_type"].values()) == s["patients"] == 50
    assert sum(s["by_style"]["visits"].values()) == s["visits"] == sum(s["by_language"]["visits"].values())
    dev = s["deviations"]
    assert dev["visits"] == sum(dev["by_kind"].values()) == sum(dev["by_style"].values())
    assert dev["documented_rate"] == 0.06
    lines = (tmp_path / "visits.jsonl").read_text(encoding="utf-8").splitlines()
    assert sum(json.loads(line)["deviation"] is not None for line in lines) == dev["visits"]
    rows = json.loads((tmp_path / "agreement.json").read_text(encoding="utf-8"))["by_style"]
    assert rows["all"]["visits"] == s["visits"]
    assert {k: r["visits"] for k, r in rows.items() if k != "all"} == s["by_style"]["visits"]
    assert rows["all"]["deviations"] == dev["visits"]
    assert rows["all"]["deviations_flagged"] <= rows["all"]["flagged_warning_or_critical"]


def test_agreement_report_by_style():
    pytest.importorskip("diaguide.knowledge.guideline")
    pytest.importorskip("diaguide.safety.checker")
    from diaguide.cohort.report import agreement_report

    cohort = build_cohort(12, seed=2, lang="mixed")
    out = io.StringIO()
    report = agreement_report(cohort, out=out)
    rows = report["by_style"]
    assert rows["all"]["visits"] == len(cohort)
    assert sum(r["visits"] for k, r in rows.items() if k != "all") == len(cohort)
    for r in rows.values():
        assert 0 <= r["agreement_exact"] <= r["agreement_jaccard"] <= 1
        assert r["flagged_critical"] <= r["flagged_warning_or_critical"] <= r["visits"]
    assert "jaccard" in report["definition"].lower()
    table = out.getvalue().splitlines()
    assert table[0].split()[:3] == ["style", "visits", "exact"] and table[-1].startswith("all")
