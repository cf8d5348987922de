"""`diaguide export --adapter DIR --out DIR [--merge] [--gguf]`: adapters -> files serving engines load.

--merge folds a LoRA adapter into its base weights and writes a plain Hugging Face model (safetensors
+ tokenizer) that vLLM, TGI or transformers load without PEFT. Prefix tuning (P-tuning v2) has no
weights to fold: its learned keys/values must be served with the adapter.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from diaguide.errors import InputError

log = logging.getLogger(__name__)


def read_adapter_config(adapter: str | Path) -> dict:
    """The adapter's adapter_config.json, checked to exist and name its base model."""
    folder = Path(adapter)
    path = folder / "adapter_config.json"
    if not path.is_file():
        raise InputError("not a PEFT adapter folder (no adapter_config.json)", source=str(folder))
    try:
        conf = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg})", source=str(path)) from None
    if not conf.get("base_model_name_or_path"):
        raise InputError("names no base model", source=str(path), field="base_model_name_or_path")
    if not any(folder.glob("adapter_model.*")):
        raise InputError("no adapter weights (adapter_model.safetensors)", source=str(folder))
    return conf


def load_adapter(adapter: str | Path, dtype=None):
    """(PeftModel, tokenizer) for an adapter folder; the tokenizer saved with the adapter when present."""
    from peft import PeftModel

    from diaguide.inference.base_model import load_base_model

    conf = read_adapter_config(adapter)
    base, tokenizer = load_base_model(conf["base_model_name_or_path"], dtype=dtype)
    if (Path(adapter) / "tokenizer_config.json").is_file():
        tokenizer = _tokenizer_only(adapter)  # the one it was trained with (same template, same pad)
    return PeftModel.from_pretrained(base, str(adapter)), tokenizer


def _tokenizer_only(folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def export_command(
    adapter: str, out: str, merge: bool = False, gguf: bool = False, publish: bool = False, metrics: str | None = None
) -> int:
    """Write a merged model (`--merge`), or a shipped copy with its model card (`--publish`)."""
    if publish:
        from diaguide.training.publish import publish_adapter

        return publish_adapter(adapter, out, metrics)
    if not merge and not gguf:
        raise InputError("nothing to export: pass --merge, --gguf or --publish", source=adapter)
    if gguf:
        raise InputError(
            "GGUF export is not implemented yet; use --merge and convert with llama.cpp's convert_hf_to_gguf.py",
            source=adapter,
            field="--gguf",
        )
    conf = read_adapter_config(adapter)
    if conf.get("peft_type") != "LORA":
        raise InputError(
            f"{conf.get('peft_type')} adapters have no weights to merge (only LoRA/QLoRA do); "
            "serve them with the adapter",
            source=adapter,
            field="peft_type",
        )
    model, tokenizer = load_adapter(adapter)
    merged = model.merge_and_unload()
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    print(f"merged {adapter} into {conf['base_model_name_or_path']} -> {target}", file=sys.stderr)
    return 0
