"""Which generator (backend) and which adapter a recommendation uses, loaded once per process and reused.

* The default adapter is the project's LoRA fine-tune, `models/smollm2-135m-lora` in the repository
  ($DIAGUIDE_ADAPTER or $DIAGUIDE_MODELS point elsewhere); without one, the base model answers.
* The default backend is llama.cpp where llama-cpp-python is installed and the adapter can be merged (LoRA), since
  it serves ~8x faster than transformers on CPU; prefix tuning (P-tuning v2) cannot be merged into weights, so a
  prefix adapter always runs on transformers. A LoRA fine-tune is merged and exported to GGUF once, under the
  cache folder, named by the adapter's weight hash, so a retrained adapter is never served from a stale file.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from diaguide.errors import ModelError
from diaguide.inference.base import Generator, adapter_info, adapter_version
from diaguide.inference.base_model import DEFAULT_MODEL, bundled_gguf, cache_dir
from diaguide.peft_methods import method_of_adapter, serving_engines
from diaguide.prompts.guidance import PromptStyle

log = logging.getLogger(__name__)

KINDS = {
    "transformers": "transformers",
    "hf": "transformers",
    "llama.cpp": "llama.cpp",
    "llamacpp": "llama.cpp",
    "vllm": "vllm",
}
DEFAULT_ADAPTER_NAME = "smollm2-135m-lora"
# the merged fine-tune's GGUF type; $DIAGUIDE_GGUF_TYPE picks another (gguf_export.FTYPES). Not q4_0: faster, but
# it garbles the 135M fine-tune's replies (measured, see gguf_export)
GGUF_TYPE = "q8_0"


def models_dir() -> Path:
    return Path(os.environ.get("DIAGUIDE_MODELS") or Path(__file__).resolve().parents[3] / "models")


def default_adapter() -> Path | None:
    """The adapter `diaguide recommend --engine model` uses when none is given (None: the base model)."""
    env = os.environ.get("DIAGUIDE_ADAPTER")
    if env:
        return Path(env)
    folder = models_dir() / DEFAULT_ADAPTER_NAME
    return folder if (folder / "adapter_config.json").is_file() else None


def llamacpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def gguf_type() -> str:
    """The GGUF type a merged fine-tune is served in: $DIAGUIDE_GGUF_TYPE, else `GGUF_TYPE`."""
    from diaguide.inference.gguf_export import FTYPES

    chosen = os.environ.get("DIAGUIDE_GGUF_TYPE", "").strip().lower() or GGUF_TYPE
    if chosen not in FTYPES:
        raise ModelError(
            f"DIAGUIDE_GGUF_TYPE must be one of {', '.join(FTYPES)}, got {chosen!r}", field="DIAGUIDE_GGUF_TYPE"
        )
    return chosen


def merged_gguf(adapter: str | os.PathLike, ftype: str | None = None) -> Path:
    """A GGUF of the base model with this LoRA adapter merged in (in `gguf_type()` unless `ftype` is given),
    exported once and cached by weight hash."""
    from diaguide.inference.gguf_export import export_gguf

    ftype = ftype or gguf_type()

    version = adapter_version(adapter)
    target = cache_dir() / "gguf" / f"{Path(adapter).name}-{version}-{ftype}.gguf"
    if target.is_file():
        return target
    from peft import PeftModel

    from diaguide.inference.base_model import load_base_model

    info = adapter_info(adapter)
    base, _ = load_base_model(info.get("base_model_name_or_path") or DEFAULT_MODEL)
    log.info("merging %s into its base model and writing %s (once)", adapter, target)
    model = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    return export_gguf(model, target, ftype=ftype)


def generator_kind(kind: str | None, adapter: Path | None) -> str:
    """The backend that serves this adapter (None: the base model): `kind` where given, else llama.cpp where it is
    installed and serves the adapter's method (`peft_methods`), else transformers."""
    if kind is not None:
        if kind not in KINDS:
            raise ModelError(f"unknown engine {kind!r} (one of transformers, llama.cpp, vllm)", field="engine")
        return KINDS[kind]
    runs_on = serving_engines(adapter_info(adapter) if adapter is not None else None)
    return "llama.cpp" if llamacpp_available() and "llama.cpp" in runs_on else "transformers"


@functools.lru_cache(maxsize=4)
def _cached(kind: str, adapter: str | None, options: tuple[tuple[str, Any], ...]) -> Generator:
    kw = dict(options)
    if kind == "transformers":
        from diaguide.inference.hf_generator import HFGenerator

        return HFGenerator(adapter=adapter, **kw)
    if kind == "llama.cpp":
        from diaguide.inference.llamacpp_generator import LlamaCppGenerator

        if adapter is None:
            return LlamaCppGenerator(bundled_gguf(), model_name=DEFAULT_MODEL, **kw)
        info = adapter_info(adapter)
        method = method_of_adapter(info, str(adapter))
        if "llama.cpp" not in method.engines:
            raise ModelError(
                f"llama.cpp serves merged fine-tunes; {method.name} runs on {', '.join(method.engines)}", field="engine"
            )
        from diaguide.inference.base_model import load_tokenizer

        base = info.get("base_model_name_or_path") or DEFAULT_MODEL
        return LlamaCppGenerator(
            merged_gguf(adapter),
            tokenizer=load_tokenizer(base),
            model_name=base,
            adapter_version=adapter_version(adapter),
            prompt_style=PromptStyle.of(adapter),
            **kw,
        )
    from diaguide.inference.vllm_generator import VLLMGenerator

    return VLLMGenerator(adapter=adapter, **kw)


def generator_for(
    kind: str | None = None,
    adapter: str | os.PathLike | None = None,
    base_model: bool = False,
    **options: Any,
) -> Generator:
    """A loaded generator, reused across calls with the same arguments.

    Args:
        kind: the backend, "transformers", "llama.cpp" or "vllm"; None picks llama.cpp where it is installed (and
            the adapter can be merged), else transformers.
        adapter: a PEFT adapter folder; None uses `default_adapter()` (the base model when there is none).
        base_model: the base model without any adapter, whatever `default_adapter()` says (the evaluation's
            `base`); `adapter` must then be None.
        **options: passed to the generator's constructor (device, batch_size, n_threads ...).
    """
    if base_model and adapter is not None:
        raise ModelError("the base model takes no adapter", field="adapter")
    folder = None if base_model else Path(adapter) if adapter is not None else default_adapter()
    if folder is not None:
        adapter_info(folder)  # a clear error for a folder that is not an adapter, before anything loads
    chosen = generator_kind(kind, folder)
    return _cached(chosen, str(folder) if folder is not None else None, tuple(sorted(options.items())))
