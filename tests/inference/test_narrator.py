"""The page's model narrative: the checked model plan, every finding on it, or a plain 'no suggestion'."""

from __future__ import annotations

from diaguide.inference import narrator
from diaguide.records.schema import Plan

from .test_pipeline import UNSAFE, Scripted


def test_narrative_shows_the_flagged_drug_with_its_finding(ckd, monkeypatch) -> None:
    monkeypatch.setattr("diaguide.inference.registry.generator_for", lambda *a, **k: Scripted(UNSAFE))
    text = narrator.model_narrator(ckd(), Plan())
    assert "glyburide" in text
    finding_lines = [line for line in text.splitlines() if line.startswith("FINDING")]
    assert finding_lines and any("glyburide" in line for line in finding_lines)
    assert "adapter abc123" in text


def test_unreadable_model_output_says_so(ckd, monkeypatch) -> None:
    monkeypatch.setattr("diaguide.inference.registry.generator_for", lambda *a, **k: Scripted("lorem ipsum"))
    visit = ckd()
    assert narrator.model_narrator(visit, Plan()) == narrator._NO_SUGGESTION[visit.language]


def test_every_caution_is_written_whole(ckd, monkeypatch) -> None:
    # three drugs the visit does not list (it lists linagliptin only): three cautions, more than the target keeps
    answer = (
        "GOAL: HbA1c <7.0%\nMED: continue | metformin | metformin\nMED: continue | glimepiride | sulfonylurea\n"
        "MED: stop | pioglitazone | tzd\nMED: continue | linagliptin | dpp4i\nEND\n"
    )
    monkeypatch.setattr("diaguide.inference.registry.generator_for", lambda *a, **k: Scripted(answer))
    text = narrator.model_narrator(ckd(), Plan())
    unlisted = [line for line in text.splitlines() if line.endswith("check what the patient takes.")]  # not cut
    assert [c.split(":")[1].strip() for c in unlisted] == ["metformin", "glimepiride", "pioglitazone"]
    assert all(c.startswith("CAUTION: ") for c in unlisted)
