"""What every generator (transformers, llama.cpp, vLLM) is and returns, and how an adapter folder is named.

The backends (`hf_generator.py`, `llamacpp_generator.py`, `vllm_generator.py`) import only this module of the
inference package; the recommend pipeline (`pipeline.py`) sits on top of them (docs/design.md, "Layers").
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from diaguide.errors import ModelError

# Physician plans in our cohort are <=360 tokens in English and <=600 in Chinese (SmolLM2 tokenizer)
MAX_NEW_TOKENS = 640


@dataclass
class Generation:
    text: str  # the new text only, special tokens removed, not stripped
    prompt_tokens: int
    new_tokens: int
    finished: bool  # stopped at end-of-turn rather than at the token limit
    first_token_s: float | None = None  # prompt reading + first token, where the generator streams (llama.cpp)
    looped: bool = False  # stopped because a line repeated an earlier one (`loops.py`); the repeat is cut off


@runtime_checkable
class Generator(Protocol):
    """Turns user-turn prompts into assistant replies, greedily. Implementations: hf_generator, llamacpp_generator,
    vllm_generator."""

    kind: str  # the backend: "transformers" | "llama.cpp" | "vllm"
    model_name: str
    adapter_version: str | None
    # optional `prompt_style: PromptStyle`: how the adapter's training prompts were rendered (default style without)

    def generate(self, prompts: list[str], max_new_tokens: int = MAX_NEW_TOKENS) -> list[Generation]: ...


def adapter_version(adapter: str | os.PathLike | None) -> str | None:
    """A short sha256 of the adapter weights, so every result names the exact adapter that produced it."""
    if adapter is None:
        return None
    folder = Path(adapter)
    weights = sorted(folder.glob("adapter_model.*"))
    if not weights:
        raise ModelError("no adapter weights (adapter_model.safetensors) in the adapter folder", source=str(folder))
    digest = hashlib.sha256()
    with weights[0].open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def adapter_info(adapter: str | os.PathLike) -> dict[str, Any]:
    """adapter_config.json of a PEFT adapter folder (base model name, peft_type ...)."""
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise ModelError("not a PEFT adapter folder (no adapter_config.json)", source=str(adapter))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"adapter_config.json is not JSON ({exc.msg})", source=str(adapter)) from None
