"""Hand-written cases: an engine's plans checked against what the guideline requires."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from diaguide.errors import InputError
from diaguide.evaluation.candidates import RulesCandidate
from diaguide.evaluation.cases import ALL_PARTS, load_cases, score_cases

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from eval_fakes import METFORMIN_TEXT, StrippingEngine, canned_engine  # noqa: E402

CASES = Path(__file__).parents[1] / "knowledge" / "cases"


def test_the_guideline_engine_meets_every_case():
    result = score_cases(RulesCandidate(), load_cases(CASES), parts=ALL_PARTS)
    assert result["n"] == 20
    assert result["concordant"] == 20, [r for r in result["cases"] if not r["concordant"]]
    assert result["unsafe_unflagged"] == 0


def test_metformin_for_everyone_is_flagged_where_contraindicated_and_never_unflagged():
    cases = load_cases(CASES)
    result = score_cases(canned_engine("m", lambda v, h: METFORMIN_TEXT), cases)
    rows = {r["id"]: r for r in result["cases"]}
    # eGFR 25: metformin is contraindicated; the checker flags it and the finding rides along
    assert rows["05_egfr25_on_metformin"]["unsafe_proposed"]
    assert not rows["05_egfr25_on_metformin"]["avoids_forbidden"]
    assert not rows["05_egfr25_on_metformin"]["concordant"]
    assert result["unsafe_unflagged"] == 0
    assert result["unsafe_proposed"] >= 1
    # case 01 (new type 2, normal kidneys) wants metformin and a statin: half right is not concordant
    assert any("statin not started" in e for e in rows["01_new_t2dm_normal_kidneys"]["errors"])
    assert rows["01_new_t2dm_normal_kidneys"]["goal_met"]


def test_an_engine_that_drops_findings_is_caught():
    result = score_cases(StrippingEngine(), load_cases(CASES))
    rows = {r["id"]: r for r in result["cases"]}
    assert rows["05_egfr25_on_metformin"]["unsafe_unflagged"]
    assert result["unsafe_unflagged"] >= 1


def test_the_engine_region_follows_the_case_and_is_restored():
    seen: dict[str, str] = {}
    engine = RulesCandidate(region="ada")
    original = engine.predict

    def spy(visits, include_history=True):
        seen.update({v.visit_id: engine.region for v in visits})
        return original(visits, include_history)

    engine.predict = spy
    cases = load_cases(CASES)
    score_cases(engine, cases)
    assert seen == {c["visit"].visit_id: c["region"] for c in cases}
    assert "cds" in seen.values()
    assert engine.region == "ada"


def test_a_bad_case_file_is_named(tmp_path: Path):
    shutil.copy(CASES / "01_new_t2dm_normal_kidneys.json", tmp_path)
    (tmp_path / "02_broken.json").write_text(json.dumps({"id": "x", "expect": {}}), encoding="utf-8")
    with pytest.raises(InputError, match="02_broken.json") as err:
        load_cases(tmp_path)
    assert "visit" in str(err.value)
    with pytest.raises(InputError, match="no case files"):
        load_cases(tmp_path / "nowhere")


def test_evaluate_checks_the_cases_and_the_report_shows_them(tmp_path: Path, small_dataset: Path):
    from diaguide.evaluation.run import evaluate

    out = tmp_path / "eval"
    metrics = evaluate(out, engines=["rules"], dataset=small_dataset, limit=3, resamples=100, cases=CASES)
    only = evaluate(
        tmp_path / "e2", engines=["rules"], dataset=small_dataset, limit=3, resamples=50, cases=CASES, cases_engines=[]
    )
    assert "cases" not in only["engines"]["rules"]
    cases = metrics["engines"]["rules"]["cases"]
    assert cases["n"] == 20 and cases["concordant"] == 20
    assert metrics["config"]["cases"] == str(CASES)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Hand-written cases" in html and "05_egfr25_on_metformin" in html


def test_case_predictions_are_saved_and_reused(tmp_path: Path):
    cases = load_cases(CASES)[:3]
    saved = tmp_path / "m.cases.jsonl"
    first = score_cases(canned_engine("m", lambda v, h: METFORMIN_TEXT), cases, saved=saved, stamp="s")
    again = score_cases(canned_engine("m", lambda v, h: pytest.fail("generated again")), cases, saved=saved, stamp="s")
    assert again == first
