"""Helpers of the evaluation tests: a low-eGFR visit and fake engines with canned texts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from diaguide.evaluation.candidates import Prediction, TextCandidate
from diaguide.prompts import plan_to_text
from diaguide.records.schema import Plan, Visit


def renal_visit(egfr: float = 22.0, language: str = "en", visit_id: str = "v1") -> Visit:
    """Type 2 diabetes with eGFR below 30, on nothing yet: starting metformin is contraindicated."""
    return Visit.model_validate(
        {
            "visit_id": visit_id,
            "patient_id": "p1",
            "date": "2025-03-01",
            "language": language,
            "patient": {"age": 66, "sex": "female", "weight_kg": 80},
            "diagnoses": [{"system": "icd10", "code": "E11.9"}, {"system": "icd10", "code": "N18.4"}],
            "labs": [
                {"loinc": "33914-3", "value": egfr, "date": "2025-02-20"},
                {"loinc": "4548-4", "value": 8.6, "date": "2025-02-20"},
            ],
        }
    )


METFORMIN_TEXT = (
    "GOAL: HbA1c <7.0%\nTREATMENT: start metformin\n"
    "MED: start | metformin | metformin | 500 mg | bid | first line\nLAB: 4548-4 | HbA1c | recheck\nEND"
)


def canned_engine(name: str, texts: Callable[[Visit, bool], str | None], region: str = "ada") -> TextCandidate:
    """A model engine stand-in: `texts(visit, include_history)` is what the "model" writes."""

    def generate(visits: Sequence[Visit], include_history: bool) -> list[str | None]:
        return [texts(v, include_history) for v in visits]

    return TextCandidate(name, generate, region=region)


def copy_physician(plans: dict[str, Plan]) -> Callable[[Visit, bool], str | None]:
    """Writes the physician's own plan text (a perfect model) when it sees the history, else nothing usable."""

    def texts(visit: Visit, include_history: bool) -> str | None:
        if not include_history:
            return "I am not sure."
        return plan_to_text(plans[visit.visit_id], visit.language)

    return texts


class StrippingEngine:
    """A broken engine: proposes metformin and drops the safety findings from its output."""

    name = "broken"

    def predict(self, visits: list[Visit], include_history: bool) -> list[Prediction]:
        inner = canned_engine("inner", lambda v, h: METFORMIN_TEXT).predict(visits, include_history)
        out = []
        for p in inner:
            plan = p.plan.model_copy(update={"findings": [], "prompts": []}) if p.plan else None
            out.append(Prediction(p.text, p.proposed, plan, p.status))
        return out
