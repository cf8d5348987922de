"""`diaguide recommend`: a Plan for one visit, with its safety findings, as JSON on stdout.

The `rules` engine is the guideline engine (knowledge/guideline.py); the `model` engine is the fine-tuned model
through the recommend pipeline (inference/pipeline.py). Either way the Plan passes the safety checker exactly once
before it is printed, so its findings travel with it: here for the guideline's plan, in the pipeline for the
model's (docs/design.md, "The flow").
"""

from __future__ import annotations

import json
import sys

from diaguide.errors import InputError
from diaguide.inference import pipeline
from diaguide.knowledge import guideline
from diaguide.knowledge.conditions import facts_once
from diaguide.knowledge.regions import resolve_region
from diaguide.records.io import load_visit
from diaguide.records.schema import Plan, Visit
from diaguide.safety import checker


def plan_for(visit: Visit, engine: str = "rules", region: str = "ada", adapter: str | None = None) -> Plan:
    """The engine's Plan for a visit, with safety findings attached; the patient's facts are read once.

    Raises:
        InputError: unknown engine.
        ModelError: the model cannot be loaded or gave no usable suggestion.
    """
    if engine not in ("rules", "model"):
        raise InputError(f"unknown engine {engine!r}; expected rules or model", field="engine")
    with facts_once():
        if engine == "model":
            return pipeline.recommend_with_model(visit, adapter=adapter, region=region)  # checked in the pipeline
        return checker.apply_safety(visit, guideline.recommend(visit, region=region), region=region)


def recommend_command(
    engine: str = "rules",
    input: str = "",  # noqa: A002 - the CLI option is --input
    fmt: str = "visit",
    region: str | None = None,
    adapter: str | None = None,
) -> int:
    """Print the Plan JSON (findings included) for the visit in `input`; 0 on success."""
    visit = load_visit(input, fmt)
    plan = plan_for(visit, engine=engine, region=resolve_region(region), adapter=adapter)
    json.dump(plan.model_dump(mode="json"), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
