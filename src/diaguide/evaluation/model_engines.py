"""The model engines of an evaluation (`base`, `lora`, `ptuning_v2`) on `diaguide.inference.engine`.

Each is checked before it runs: the inference code in this build, the base model, and for a
fine-tuned engine its adapter folder under `models/`. A missing piece raises
`EngineUnavailable` with one line saying which and why; the evaluation goes on without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

from diaguide.evaluation.engines import Engine, EngineUnavailable

INFERENCE_MODULE = "diaguide.inference.engine"
# repo-root/models/<base>-<method>; $DIAGUIDE_MODELS points elsewhere (an installed copy)
MODELS_DIR = Path(os.environ.get("DIAGUIDE_MODELS") or Path(__file__).resolve().parents[3] / "models")
ADAPTERS: dict[str, str] = {"lora": "smollm2-135m-lora", "ptuning_v2": "smollm2-135m-ptuning_v2"}


def adapter_dir(name: str) -> Path | None:
    """The default adapter folder of a fine-tuned engine (None for `base`)."""
    return MODELS_DIR / ADAPTERS[name] if name in ADAPTERS else None


def _inference_module(name: str):
    if importlib.util.find_spec(INFERENCE_MODULE) is None:
        raise EngineUnavailable(name, f"the model inference code ({INFERENCE_MODULE}) is not part of this build")
    return importlib.import_module(INFERENCE_MODULE)


def model_engine(name: str, region: str = "ada") -> Engine:
    """The evaluation engine for `base`, `lora` or `ptuning_v2`.

    Raises:
        EngineUnavailable: inference code, base model or adapter missing.
    """
    adapter = adapter_dir(name)
    if adapter is not None and not adapter.is_dir():
        raise EngineUnavailable(name, f"adapter folder {adapter} not found (train it with `diaguide train`)")
    _inference_module(name)
    raise EngineUnavailable(name, f"{INFERENCE_MODULE} has no batch engine this evaluation knows")
