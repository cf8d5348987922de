"""The candidates of an evaluation by name: `rules`, `carry_forward` (the do-nothing baseline), or a model candidate
(`base`, `lora`, `ptuning_v2`; `model_candidates.py`). Kept apart from `candidates.py`, which the model candidates
build on, so neither imports the other in a circle (docs/design.md, "Layers")."""

from __future__ import annotations

from diaguide.evaluation import model_candidates
from diaguide.evaluation.candidates import (
    CANDIDATES,
    MODEL_CANDIDATES,
    Candidate,
    CandidateUnavailable,
    CarryForwardCandidate,
    RulesCandidate,
)


def build_candidate(name: str, region: str = "ada") -> Candidate:
    """The candidate of that name, loaded.

    Raises:
        CandidateUnavailable: an unknown name, or a model candidate whose model, adapter or backend is missing.
    """
    if name == "rules":
        return RulesCandidate(region=region)
    if name == "carry_forward":
        return CarryForwardCandidate(region=region)
    if name in MODEL_CANDIDATES:
        return model_candidates.model_candidate(name, region=region)
    raise CandidateUnavailable(name, f"unknown engine; expected one of {', '.join(CANDIDATES)}")
