"""The candidates an evaluation compares, behind one small protocol.

A candidate has a `name` and `predict(visits, include_history) -> list[Prediction]`. A
Prediction keeps the three things the metrics need apart: the raw text (None for the rules
candidate), the parsed plan *before* the safety pass (for `unsafe_proposed_rate`) and the plan
that left the candidate with its findings attached (for everything else), plus a status.

Candidates: `RulesCandidate` (the guideline engine), `CarryForwardCandidate` (the do-nothing baseline), `TextCandidate`
(any text writer, read and checked by the recommend pipeline's `check_answer`; the tests' fake model is one) and the
model candidates `base`, `lora` and `ptuning_v2` on the inference pipeline (`model_candidates.py`); `lineup.py`
builds one by name. Each runs the safety pass once per visit, and reads the visit's facts once
(`conditions.facts_once`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from diaguide.inference.pipeline import check_answer
from diaguide.knowledge import guideline
from diaguide.knowledge.conditions import derive, facts_once
from diaguide.knowledge.monitoring import labs_due, screening_labs
from diaguide.prompts import parse_plan
from diaguide.records.schema import LabOrder, MedicationOrder, Plan, Visit
from diaguide.safety import checker

Status = Literal["ok", "partial", "no_suggestion"]
MODEL_CANDIDATES: tuple[str, ...] = ("base", "lora", "ptuning_v2")
CANDIDATES: tuple[str, ...] = (*MODEL_CANDIDATES, "rules", "carry_forward")
NO_HISTORY = "@no_history"


@dataclasses.dataclass
class Prediction:
    """One candidate's answer for one visit."""

    text: str | None  # what the model wrote; None for the rules candidate
    proposed: Plan | None  # the parsed plan before the safety pass
    plan: Plan | None  # the plan that left the candidate, findings attached
    status: Status
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def usable(self) -> bool:
        """ok or partial, with a plan: what `parse_rate` counts."""
        return self.status in ("ok", "partial") and (self.plan is not None or self.proposed is not None)


class Candidate(Protocol):
    name: str

    def predict(self, visits: list[Visit], include_history: bool) -> list[Prediction]: ...


class CandidateUnavailable(Exception):
    """A candidate that cannot run here; `reason` says why in one line."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"{name}: {reason}")


def without_history(visit: Visit) -> Visit:
    """The visit as the no-history ablation shows it: earlier visits left out."""
    return visit.model_copy(update={"history": []})


class RulesCandidate:
    """The guideline engine (`knowledge.guideline.recommend`), then the safety pass."""

    def __init__(self, region: str = "ada", name: str = "rules"):
        self.name, self.region = name, region

    def predict(self, visits: list[Visit], include_history: bool = True) -> list[Prediction]:
        out = []
        with facts_once():
            for visit in visits:
                seen = visit if include_history else without_history(visit)
                proposed = guideline.recommend(seen, region=self.region)
                out.append(Prediction(None, proposed, checker.apply_safety(visit, proposed, region=self.region), "ok"))
        return out


class CarryForwardCandidate:
    """The do-nothing baseline: every current drug continued as it is, the labs that are due ordered
    (`knowledge.monitoring`: monitoring for diabetes, testing for it otherwise), no goal, then the safety pass.
    On longitudinal records most visits continue what was there, so it is strong; a model is worth serving only
    above it (docs/evaluation.md, baselines)."""

    name = "carry_forward"

    def __init__(self, region: str = "ada"):
        self.region = region

    def predict(self, visits: list[Visit], include_history: bool = True) -> list[Prediction]:
        out = []
        with facts_once():
            for visit in visits:
                orders = [
                    MedicationOrder(
                        drug=m.drug, drug_class=m.drug_class, action="continue", dose=m.dose, frequency=m.frequency
                    )
                    for m in visit.medications
                ]
                proposed = Plan(medications=orders, labs=due_labs(visit, self.region))
                out.append(Prediction(None, proposed, checker.apply_safety(visit, proposed, region=self.region), "ok"))
        return out


def due_labs(visit: Visit, region: str = "ada") -> list[LabOrder]:
    """The labs due at a visit where nothing changes: diabetes monitoring (`monitoring.labs_due`) for a patient
    with diabetes on record, the diabetes tests (`monitoring.screening_labs`) for one without."""
    facts = derive(visit, region)
    if facts.diabetes_status == "diabetes":
        return labs_due(visit, region, facts=facts)
    return screening_labs(visit, region, facts=facts)


def prediction_from_text(visit: Visit, text: str | None, region: str = "ada") -> Prediction:
    """Model text as a Prediction: parsed, then read against the visit and checked by the recommend pipeline
    (`pipeline.check_answer`); the safety pass runs on the full visit. Any parsed plan counts (ok, or partial when
    cut off or a line was unread)."""
    if text is None or not text.strip():
        return Prediction(text, None, None, "no_suggestion", ["empty output"])
    result = parse_plan(text)
    if result.plan is None:
        return Prediction(text, None, None, "no_suggestion", list(result.errors))
    status: Status = "ok" if result.whole else "partial"
    proposed, checked = check_answer(visit, result.plan, region)
    return Prediction(text, proposed, checked, status, list(result.errors))


class TextCandidate:
    """Any text writer behind the protocol: `generate(visits, include_history) -> texts`."""

    def __init__(
        self,
        name: str,
        generate: Callable[[list[Visit], bool], Sequence[str | None]],
        region: str = "ada",
    ):
        self.name, self.region, self._generate = name, region, generate

    def predict(self, visits: list[Visit], include_history: bool = True) -> list[Prediction]:
        texts = list(self._generate(visits, include_history))
        if len(texts) != len(visits):
            raise RuntimeError(f"candidate {self.name} returned {len(texts)} texts for {len(visits)} visits")
        with facts_once():
            return [prediction_from_text(v, t, self.region) for v, t in zip(visits, texts, strict=True)]
