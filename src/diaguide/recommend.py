"""`diaguide recommend`: a Plan for one visit, with its safety findings, as JSON on stdout.

The `rules` engine is the guideline engine (knowledge/guideline.py); the `model` engine is the
fine-tuned model (inference/engine.py) where this build has it. Either way the Plan passes the
safety checker before it is printed, so its findings travel with it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

from diaguide.errors import InputError
from diaguide.knowledge import guideline
from diaguide.knowledge.regions import resolve_region
from diaguide.records.io import load_visit
from diaguide.records.schema import Plan, Visit

_MODEL_ENGINE = "diaguide.inference.engine"


def plan_for(visit: Visit, engine: str = "rules", region: str = "ada", adapter: str | None = None) -> Plan:
    """The engine's Plan for a visit, with safety findings attached.

    Raises:
        InputError: unknown engine, or the model engine is not part of this build.
    """
    if engine == "rules":
        plan = guideline.recommend(visit, region=region)
    elif engine == "model":
        if importlib.util.find_spec(_MODEL_ENGINE) is None:
            raise InputError("the model engine is not available in this build (use --engine rules)", field="engine")
        plan = importlib.import_module(_MODEL_ENGINE).recommend_with_model(visit, adapter=adapter, region=region)
    else:
        raise InputError(f"unknown engine {engine!r}; expected rules or model", field="engine")
    from diaguide.safety.checker import apply_safety  # the checker pulls in the formulary and interactions

    return apply_safety(visit, plan, region=region)


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
