"""The model engines of an evaluation (`base`, `lora`, `ptuning_v2`) on `diaguide.inference.engine`.

Each is checked and loaded before it runs: the inference code in this build, the base model,
and for a fine-tuned engine its adapter folder under `models/`. A missing piece raises
`EngineUnavailable` with one line saying which and why; the evaluation goes on without it.

Generation, the strict retry, parsing and the safety pass are the inference engine's own
(`recommend_many`), so the evaluation scores exactly what a physician would be shown; the
plan before the safety pass is the parse of the text the engine used.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from diaguide.errors import DiaGuideError
from diaguide.evaluation.engines import EngineUnavailable, Prediction
from diaguide.prompts import parse_plan
from diaguide.prompts.target import against_visit
from diaguide.records.schema import Visit

INFERENCE_MODULE = "diaguide.inference.engine"
# repo-root/models/<base>-<method>; $DIAGUIDE_MODELS points elsewhere (an installed copy)
MODELS_DIR = Path(os.environ.get("DIAGUIDE_MODELS") or Path(__file__).resolve().parents[3] / "models")
ADAPTERS: dict[str, str] = {"lora": "smollm2-135m-lora", "ptuning_v2": "smollm2-135m-ptuning_v2"}


def adapter_dir(name: str) -> Path | None:
    """The default adapter folder of a fine-tuned engine (None for `base`)."""
    return MODELS_DIR / ADAPTERS[name] if name in ADAPTERS else None


def to_prediction(result: Any, visit: Visit, region: str = "ada") -> Prediction:
    """An inference `ModelResult` as a Prediction (the plan before safety re-parsed from its text, continued
    drugs with the visit's doses as the engine gives them)."""
    text = result.raw_text
    parsed = parse_plan(text).plan if result.status != "no_suggestion" else None
    proposed = against_visit(parsed, visit, region) if parsed is not None else None
    return Prediction(text, proposed, result.plan, result.status, list(result.errors))


class ModelEngine:
    """A generator (transformers, llama.cpp, vLLM) behind the evaluation protocol."""

    def __init__(self, name: str, generator: Any, region: str = "ada", adapter: Path | None = None):
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
        inference = importlib.import_module(INFERENCE_MODULE)
        results = inference.recommend_many(visits, self.generator, region=self.region, include_history=include_history)
        return [to_prediction(r, v, self.region) for r, v in zip(results, visits, strict=True)]


def _load_generator(adapter: Path | None, kind: str | None = None) -> Any:
    """The inference registry's generator for an adapter (llama.cpp where installed for LoRA, else
    transformers); the base model is built explicitly, since the registry's "no adapter" means the
    default fine-tune."""
    registry = importlib.import_module("diaguide.inference.registry")
    if adapter is not None:
        return registry.get_engine(kind=kind, adapter=adapter)
    chosen = registry.KINDS.get(kind or "", None) or ("llama.cpp" if registry.llamacpp_available() else "transformers")
    if chosen == "llama.cpp":
        from diaguide.inference.base_model import DEFAULT_MODEL, bundled_gguf
        from diaguide.inference.llamacpp_engine import LlamaCppEngine

        return LlamaCppEngine(bundled_gguf(), model_name=DEFAULT_MODEL)
    if chosen == "vllm":
        from diaguide.inference.vllm_engine import VLLMEngine

        return VLLMEngine(adapter=None)
    from diaguide.inference.hf_engine import HFEngine

    return HFEngine(adapter=None)


def model_engine(name: str, region: str = "ada", kind: str | None = None) -> ModelEngine:
    """The evaluation engine for `base`, `lora` or `ptuning_v2`, loaded.

    `kind` picks the generator (`transformers`, `llama.cpp`, `vllm`); None lets the inference
    registry choose, or `$DIAGUIDE_EVAL_GENERATOR`.

    Raises:
        EngineUnavailable: inference code, base model or adapter missing or unloadable.
    """
    adapter = adapter_dir(name)
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise EngineUnavailable(name, f"no adapter in {adapter} (train it with `diaguide train`)")
    if importlib.util.find_spec(INFERENCE_MODULE) is None:
        raise EngineUnavailable(name, f"the model inference code ({INFERENCE_MODULE}) is not part of this build")
    try:
        generator = _load_generator(adapter, kind or os.environ.get("DIAGUIDE_EVAL_GENERATOR") or None)
    except DiaGuideError as exc:
        raise EngineUnavailable(name, f"cannot load the model: {exc.line()}") from None
    except ImportError as exc:
        raise EngineUnavailable(name, f"cannot load the model: {exc.name or exc} is not installed") from None
    return ModelEngine(name, generator, region=region, adapter=adapter)
