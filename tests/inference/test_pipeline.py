"""The recommendation path every engine shares: strict retry, ok/partial/no_suggestion, safety always applied."""

from __future__ import annotations

import pytest

from diaguide.errors import ModelError
from diaguide.inference.base import Generation, Generator
from diaguide.inference.hf_generator import HFGenerator
from diaguide.inference.pipeline import (
    PARTIAL_NOTE,
    ModelResult,
    recommend,
    recommend_many,
    recommend_with_model,
)
from diaguide.prompts import render_prompt

UNSAFE = "GOAL: HbA1c <8.0%\nMED: start | glyburide | sulfonylurea | 5 mg | qd | add-on\nEND\n"
SAFE = "GOAL: HbA1c <7.0%\nTREATMENT: Continue.\nMED: continue | linagliptin | dpp4i | 5 mg | qd\nEND\n"


class Scripted:
    """An engine whose replies are given: the n-th call answers replies[n] (the last one repeats)."""

    kind = "scripted"
    model_name = "script"
    adapter_version = "abc123"

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.prompts: list[list[str]] = []

    def generate(self, prompts: list[str], max_new_tokens: int = 640) -> list[Generation]:
        text = self.replies[min(len(self.prompts), len(self.replies) - 1)]
        self.prompts.append(list(prompts))
        return [Generation(text, 10, 20, text.rstrip().endswith("END")) for _ in prompts]


class Recording:
    """Wraps a real engine and keeps the prompts it was asked."""

    def __init__(self, inner):
        self.inner, self.prompts = inner, []
        self.kind, self.model_name, self.adapter_version = inner.kind, inner.model_name, inner.adapter_version

    def generate(self, prompts, max_new_tokens=640):
        self.prompts.append(list(prompts))
        return self.inner.generate(prompts, max_new_tokens)


def test_unsafe_medication_comes_back_with_its_finding(ckd) -> None:
    visit = ckd()
    result = recommend(visit, Scripted(UNSAFE))
    assert result.status == "ok" and result.attempts == 1
    assert [m.drug for m in result.plan.medications] == ["glyburide"]
    flagged = {d for f in result.plan.findings for d in f.drugs}
    assert "glyburide" in flagged
    assert any(f.rule_id == "glyburide_ckd" for f in result.plan.findings)
    # the CLI path (`diaguide recommend --engine model`) carries the same findings
    plan = recommend_with_model(visit, generator=Scripted(UNSAFE))
    assert any("glyburide" in f.drugs for f in plan.findings)


def test_partial_answer_is_marked_and_still_checked(ckd) -> None:
    cut = UNSAFE.replace("END\n", "LAB: 4548-")  # cut off mid-line by the token limit
    engine = Scripted(cut)
    result = recommend(ckd(), engine)
    assert result.status == "partial"
    assert result.attempts == 2  # a truncated answer gets the strict retry too
    assert any("glyburide" in f.drugs for f in result.plan.findings)
    assert result.plan.labs == []  # the cut-off line is dropped, not half-read
    plan = recommend_with_model(ckd("zh"), generator=Scripted(cut))
    assert plan.prompts[0] == PARTIAL_NOTE["zh"]
    assert any("glyburide" in f.drugs for f in plan.findings)


def test_an_answer_with_an_unreadable_line_is_retried_and_never_passed_off_as_whole(ckd) -> None:
    looped = UNSAFE.replace("END\n", "MED: continue | continue | adjust | stop | 20 mg | qd\nEND\n")
    result = recommend(ckd(), Scripted(looped))
    assert result.status == "partial" and result.attempts == 2  # END came, but a line could not be read
    assert [m.drug for m in result.plan.medications] == ["glyburide"]
    assert any("glyburide" in f.drugs for f in result.plan.findings)
    assert recommend_with_model(ckd(), generator=Scripted(looped)).prompts[0] == PARTIAL_NOTE["en"]
    rescued = recommend(ckd(), Scripted(looped, SAFE))
    assert rescued.status == "ok" and rescued.attempts == 2 and rescued.raw_text == SAFE


def test_strict_retry_can_rescue_an_unreadable_answer(ckd) -> None:
    visit = ckd()
    engine = Scripted("I think the patient should see a doctor.", SAFE)
    result = recommend(visit, engine)
    assert result.status == "ok" and result.attempts == 2
    assert engine.prompts == [[render_prompt(visit)], [render_prompt(visit, strict=True)]]
    assert [m.drug for m in result.plan.medications] == ["linagliptin"]
    assert result.raw_text == SAFE


def test_treatment_prose_alone_is_no_suggestion(ckd) -> None:
    result = recommend(ckd(), Scripted("TREATMENT: keep going.\nEND\n"))
    assert result.status == "no_suggestion" and result.plan is None and result.attempts == 2


def test_tiny_model_garbage_retries_strict_then_no_suggestion(lively, tok, ckd) -> None:
    visit = ckd()
    engine = Recording(HFGenerator(model=lively, tokenizer=tok))
    result = recommend(visit, engine, max_new_tokens=12)
    assert isinstance(result, ModelResult)
    assert result.status == "no_suggestion" and result.plan is None
    assert result.attempts == 2 and result.raw_text  # the model did write something, just nothing usable
    assert engine.prompts == [[render_prompt(visit)], [render_prompt(visit, strict=True)]]
    with pytest.raises(ModelError, match="no usable suggestion"):
        recommend_with_model(visit, generator=Scripted("???"))


def test_batch_results_keep_visit_order_and_record_the_model(ckd) -> None:
    visits = [ckd(), ckd("zh")]
    engine = Scripted(UNSAFE)
    results = recommend_many(visits, engine)
    assert isinstance(engine, Generator)
    assert engine.prompts == [[render_prompt(v) for v in visits]]  # one batch, in visit order
    assert [r.status for r in results] == ["ok", "ok"]
    for r in results:
        assert (r.engine, r.model, r.adapter_version) == ("scripted", "script", "abc123")
        assert set(r.timings) == {"generate", "parse", "safety", "total"} and r.timings["total"] >= 0
        assert r.new_tokens == 20


def test_a_guided_adapter_gets_the_guideline_line_in_every_attempt(ckd) -> None:
    from diaguide.knowledge.guideline import recommend as guideline
    from diaguide.prompts.guidance import PromptStyle

    visit = ckd()
    engine = Scripted("not a plan", SAFE)
    engine.prompt_style = PromptStyle(guidance=True)
    result = recommend(visit, engine, region="cds")
    assert result.status == "ok"
    reference = guideline(visit, region="cds")  # the region asked for, not the default
    assert engine.prompts == [
        [render_prompt(visit, guidance=reference)],
        [render_prompt(visit, strict=True, guidance=reference)],
    ]
    assert "Guideline: GOAL" in engine.prompts[0][0]


class Echoing:
    """A base model's habit: it writes its prompt back, then (maybe) an answer."""

    kind, model_name, adapter_version = "echo", "echo", None

    def __init__(self, answer: str = ""):
        self.answer = answer

    def generate(self, prompts: list[str], max_new_tokens: int = 640) -> list[Generation]:
        return [Generation(p + "\n" + self.answer, 10, 20, self.answer.rstrip().endswith("END")) for p in prompts]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_prompt_written_back_is_not_the_models_answer(ckd, language) -> None:
    visit = ckd(language)
    assert "linagliptin" in render_prompt(visit)  # the prompt's medication line names the drug the patient takes
    copied = recommend(visit, Echoing())
    assert copied.status == "no_suggestion" and copied.plan is None  # not "continue linagliptin"
    answered = recommend(visit, Echoing("MED: stop | linagliptin | dpp4i | - | - | hypoglycaemia\nEND\n"))
    assert [(m.drug, m.action) for m in answered.plan.medications] == [("linagliptin", "stop")]
