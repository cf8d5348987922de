"""Engines behind the protocol: the safety pass is always applied, and a broken engine is caught."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import diaguide.evaluation.candidates as engines_module
from diaguide.evaluation.candidates import CandidateUnavailable, RulesCandidate
from diaguide.evaluation.data import Example
from diaguide.evaluation.lineup import build_candidate
from diaguide.evaluation.metrics import summarise
from diaguide.evaluation.scoring import score_predictions
from diaguide.knowledge import guideline
from diaguide.records.schema import Plan, VisitSummary

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from eval_fakes import METFORMIN_TEXT, StrippingEngine, canned_engine, renal_visit  # noqa: E402


def examples(n: int = 3) -> list[Example]:
    truth = Plan.model_validate({"medications": [{"drug": "semaglutide", "drug_class": "glp1ra", "action": "start"}]})
    return [Example(f"p1/v{i}", "p1", "en", renal_visit(visit_id=f"v{i}"), truth) for i in range(n)]


def score(engine, exs: list[Example]) -> dict:
    preds = engine.predict([e.visit for e in exs], True)
    plans = [guideline.recommend(e.visit) for e in exs]
    rows = score_predictions(exs, preds, plans, ["low"] * len(exs), "ada")
    return summarise(r["columns"] for r in rows), rows, preds


def test_text_engine_attaches_the_finding_to_a_contraindicated_drug():
    m, rows, preds = score(canned_engine("fake", lambda v, h: METFORMIN_TEXT), examples())
    assert preds[0].status == "ok"
    assert any(f.rule_id == "metformin_egfr_below_30" for f in preds[0].plan.findings)
    assert preds[0].proposed.findings == []  # the raw plan, before the safety pass
    assert m["unsafe_proposed_rate"] == 1.0
    assert m["unsafe_unflagged_rate"] == 0.0


def test_a_broken_engine_that_drops_findings_is_detected():
    m, rows, _ = score(StrippingEngine(), examples())
    assert m["unsafe_unflagged_rate"] == 1.0
    assert any(u.startswith("metformin_egfr_below_30") for u in rows[0]["unflagged"])


def test_what_the_record_contradicts_is_shown_as_a_caution_and_counted():
    # the renal visit lists no medication and has HbA1c 8.6%: "continue" and "at goal" are both contradicted
    wrong = (
        "GOAL: HbA1c <7.0%\nTREATMENT: Current HbA1c 8.6%: at goal.\n"
        "MED: continue | empagliflozin | sglt2i\nMED: start | semaglutide | glp1ra | 0.25 mg | weekly\nEND"
    )
    texts = {"v0": wrong, "v1": METFORMIN_TEXT, "v2": "Sorry."}
    m, rows, preds = score(canned_engine("fake", lambda v, h: texts[v.visit_id]), examples())
    cautions = preds[0].plan.prompts
    assert len(cautions) == 2 and cautions[0].startswith("empagliflozin: the plan continues it")
    assert "at goal, but the plan's goal is <7.0%" in cautions[1]
    assert preds[0].proposed.prompts == cautions  # on the plan before safety too, and kept by the safety pass
    assert [len(r["contradictions"]) for r in rows] == [2, 0, 0]
    assert m["contradiction_rate"] == pytest.approx(1 / 3)  # over all visits; the unusable one contradicts nothing


def test_unusable_and_truncated_text_get_their_status():
    texts = {"v0": "Sorry, I cannot help.", "v1": METFORMIN_TEXT.replace("\nEND", ""), "v2": None}
    m, rows, preds = score(canned_engine("fake", lambda v, h: texts[v.visit_id]), examples())
    assert [p.status for p in preds] == ["no_suggestion", "partial", "no_suggestion"]
    assert m["parse_rate"] == 1 / 3
    assert m["med_class_recall"] == 0.0  # the physician's glp1ra was never proposed


def test_rules_engine_without_history_sees_no_earlier_visits(monkeypatch: pytest.MonkeyPatch):
    seen = []
    original = guideline.recommend

    def spy(visit, region="ada"):
        seen.append(len(visit.history))
        return original(visit, region=region)

    monkeypatch.setattr(engines_module.guideline, "recommend", spy)
    earlier = VisitSummary.model_validate({"date": "2024-09-01", "hba1c": 8.0})
    visit = renal_visit().model_copy(update={"history": [earlier]})
    RulesCandidate().predict([visit], True)
    RulesCandidate().predict([visit], False)
    assert seen == [1, 0]


def test_unknown_engine_name_is_unavailable_with_a_reason():
    with pytest.raises(CandidateUnavailable, match="unknown engine"):
        build_candidate("gpt")


class CannedGenerator:
    """An inference generator stand-in: the same text for every prompt; remembers the prompts."""

    kind, model_name, adapter_version = "fake", "fake-model", None

    def __init__(self, text: str):
        self.text, self.prompts = text, []

    def generate(self, prompts: list[str], max_new_tokens: int = 64) -> list:
        from diaguide.inference.base import Generation

        self.prompts += prompts
        return [Generation(text=self.text, prompt_tokens=1, new_tokens=1, finished=True) for _ in prompts]


def test_model_engine_keeps_the_plan_before_and_after_the_safety_pass():
    from diaguide.evaluation.model_candidates import ModelCandidate

    [p] = ModelCandidate("lora", CannedGenerator(METFORMIN_TEXT)).predict([renal_visit()], True)
    assert p.status == "ok" and p.text == METFORMIN_TEXT
    assert [m.drug for m in p.proposed.medications] == ["metformin"] and p.proposed.findings == []
    assert any(f.rule_id == "metformin_egfr_below_30" for f in p.plan.findings)


def test_model_engine_without_history_renders_prompts_without_earlier_visits():
    from diaguide.evaluation.model_candidates import ModelCandidate

    earlier = VisitSummary.model_validate({"date": "2024-09-01", "hba1c": 9.7})
    visit = renal_visit().model_copy(update={"history": [earlier]})
    gen = CannedGenerator("no idea")
    preds = ModelCandidate("lora", gen).predict([visit], False)
    assert preds[0].status == "no_suggestion" and preds[0].plan is None and preds[0].proposed is None
    assert gen.prompts and not any("9.7" in p for p in gen.prompts)
    gen_with = CannedGenerator(METFORMIN_TEXT)
    ModelCandidate("lora", gen_with).predict([visit], True)
    assert "9.7" in gen_with.prompts[0]


def test_missing_adapter_makes_the_engine_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import diaguide.evaluation.model_candidates as model_candidates

    monkeypatch.setattr(model_candidates, "MODELS_DIR", tmp_path)
    with pytest.raises(CandidateUnavailable, match=r"no adapter in .*smollm2-135m-lora"):
        build_candidate("lora")


def test_the_do_nothing_baseline_continues_every_drug_and_is_checked() -> None:
    import datetime as dt

    from diaguide.evaluation.lineup import build_candidate
    from diaguide.records.schema import Visit

    visit = Visit(
        visit_id="v", patient_id="p", date=dt.date(2025, 6, 1), patient={"age": 70, "sex": "female"},
        diagnoses=[{"system": "icd10", "code": "E11.9"}], labs=[{"loinc": "33914-3", "value": 22}],
        medications=[{"drug": "metformin", "drug_class": "metformin", "dose": "500 mg", "frequency": "bid"},
                     {"drug": "atorvastatin", "drug_class": "statin", "dose": "20 mg"}],
    )  # fmt: skip
    (p,) = build_candidate("carry_forward").predict([visit])
    assert p.status == "ok" and [(m.drug, m.action) for m in p.plan.medications] == [
        ("metformin", "continue"),
        ("atorvastatin", "continue"),
    ]
    assert "metformin_egfr_below_30" in {f.rule_id for f in p.plan.findings}  # what doing nothing leaves unsafe
