"""`diaguide export --adapter DIR --out DIR [--merge] [--gguf]`: adapters -> files serving engines load.

--merge folds a LoRA adapter into its base weights and writes a plain Hugging Face model (safetensors
+ tokenizer) that vLLM, TGI or transformers load without PEFT; --gguf writes the merged model as `model.gguf`
for llama.cpp (`inference/gguf_export.py`, llama-architecture models). Which adapters can be exported how is the
method table's `exports` (`diaguide.peft_methods`): prefix tuning (P-tuning v2) has no weights to fold, its
learned keys/values must be served with the adapter.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from diaguide.errors import InputError
from diaguide.peft_methods import method_of_adapter

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
    conf = read_adapter_config(adapter)
    method = method_of_adapter(conf, str(adapter))
    wanted = [kind for kind, asked in (("merge", merge), ("gguf", gguf)) if asked]
    for kind in wanted:
        if kind not in method.exports:
            raise InputError(
                f"{method.name} adapters cannot be exported as {kind}: they have no weights to fold into the base "
                "model; serve them with the adapter",
                source=adapter,
                field="peft_type",
            )
    model, tokenizer = load_adapter(adapter)
    merged = model.merge_and_unload()
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    if merge:
        merged.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
        print(f"merged {adapter} into {conf['base_model_name_or_path']} -> {target}", file=sys.stderr)
    if gguf:
        from diaguide.inference.gguf_export import export_gguf
        from diaguide.inference.registry import gguf_type

        written = export_gguf(merged, target / "model.gguf", ftype=gguf_type())
        print(f"merged {adapter} and wrote {written} ({gguf_type()}) for llama.cpp", file=sys.stderr)
    return 0
