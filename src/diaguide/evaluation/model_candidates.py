"""The model candidates of an evaluation (`base`, `lora`, `ptuning_v2`) on the recommend pipeline.

Each is checked and loaded before it runs: the base model, and for a fine-tuned candidate its adapter folder under
`models/`. A missing piece raises `CandidateUnavailable` with one line saying which and why; the evaluation goes on
without it.

Generation, the strict retry, parsing and the one safety pass are the pipeline's own (`pipeline.recommend_many`), so
the evaluation scores exactly what a physician would be shown; the plan before the safety pass is the one the
pipeline checked (`ModelResult.proposed`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from diaguide.errors import DiaGuideError
from diaguide.evaluation.candidates import CandidateUnavailable, Prediction
from diaguide.inference.base import Generator
from diaguide.inference.pipeline import ModelResult, recommend_many
from diaguide.inference.registry import generator_for
from diaguide.records.schema import Visit

# repo-root/models/<base>-<method>; $DIAGUIDE_MODELS points elsewhere (an installed copy)
MODELS_DIR = Path(os.environ.get("DIAGUIDE_MODELS") or Path(__file__).resolve().parents[3] / "models")
ADAPTERS: dict[str, str] = {"lora": "smollm2-135m-lora", "ptuning_v2": "smollm2-135m-ptuning_v2"}


def adapter_dir(name: str) -> Path | None:
    """The default adapter folder of a fine-tuned candidate (None for `base`)."""
    return MODELS_DIR / ADAPTERS[name] if name in ADAPTERS else None


def to_prediction(result: ModelResult) -> Prediction:
    """A pipeline `ModelResult` as a Prediction."""
    return Prediction(result.raw_text, result.proposed, result.plan, result.status, list(result.errors))


class ModelCandidate:
    """A generator (transformers, llama.cpp, vLLM) behind the evaluation protocol."""

    def __init__(self, name: str, generator: Generator, region: str = "ada", adapter: Path | None = None):
        self.name, self.generator, self.region = name, generator, region
        # what produced the figures, recorded in metrics.json
        self.info = {
            "generator": getattr(generator, "kind", None),
            "model": getattr(generator, "model_name", None),
            "adapter": str(adapter) if adapter is not None else None,
            "adapter_version": getattr(generator, "adapter_version", None),
            "decoding": getattr(generator, "decoding", None),  # greedy, flash attention, loop stop ...
        }
        # the adapter was trained with the guideline engine's line in its prompts (prompts/guidance.py); kept apart
        # from `info`, which fingerprints saved answers (the adapter version already decides the style)
        style = getattr(generator, "prompt_style", None)
        self.guideline_line = bool(style and style.guidance)

    def predict(self, visits: list[Visit], include_history: bool = True) -> list[Prediction]:
        results = recommend_many(visits, self.generator, region=self.region, include_history=include_history)
        return [to_prediction(r) for r in results]


def model_candidate(name: str, region: str = "ada", kind: str | None = None) -> ModelCandidate:
    """The evaluation candidate for `base`, `lora` or `ptuning_v2`, loaded.

    `kind` picks the backend (`transformers`, `llama.cpp`, `vllm`); None lets the inference registry choose, or
    `$DIAGUIDE_EVAL_GENERATOR`.

    Raises:
        CandidateUnavailable: base model or adapter missing or unloadable, or a backend that is not installed.
    """
    adapter = adapter_dir(name)
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise CandidateUnavailable(name, f"no adapter in {adapter} (train it with `diaguide train`)")
    kind = kind or os.environ.get("DIAGUIDE_EVAL_GENERATOR") or None
    try:
        generator: Any = generator_for(kind=kind, adapter=adapter, base_model=adapter is None)
    except DiaGuideError as exc:
        raise CandidateUnavailable(name, f"cannot load the model: {exc.line()}") from None
    except ImportError as exc:  # an optional backend (torch, llama.cpp, vLLM) that is not installed
        raise CandidateUnavailable(name, f"cannot load the model: {exc.name or exc} is not installed") from None
    return ModelCandidate(name, generator, region=region, adapter=adapter)
