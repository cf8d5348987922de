"""A transformers llama-architecture model (a fine-tune with its LoRA merged in) -> a GGUF file llama.cpp serves.

Two facts shape this writer:

* transformers un-permutes the attention Q/K rows when it reads a llama GGUF
  (`LlamaTensorProcessor._reverse_permute_weights` in transformers/modeling_gguf_pytorch_utils.py), because
  llama.cpp's converter permuted them for its interleaved RoPE (`LlamaModel.permute` in llama.cpp's
  convert_hf_to_gguf.py). A model written back must be permuted again, or llama.cpp applies RoPE to the
  wrong pairs of dimensions and generates nonsense from the second token on.
* The tokenizer (49k tokens, merges, special ids, chat template) and the descriptive metadata already sit in
  the reference GGUF (the bundled SmolLM2 file): they are copied as they are, and only the numbers that
  describe the weights (block count, widths, heads, file type) are written from the model's config.

Quantisation uses the `gguf` package's own quants module (the reference implementation of llama.cpp's
block formats), so `q4_1` and `q8_0` files are the same bytes llama.cpp's quantiser would write.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from diaguide.errors import ModelError
from diaguide.peft_methods import method_of_adapter

log = logging.getLogger(__name__)

FTYPES = ("f32", "f16", "q8_0", "q4_1", "q4_0")
# keys written from the model's config rather than copied from the reference (suffixes of "llama.")
_ARCH_KEYS = (
    "block_count",
    "context_length",
    "embedding_length",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "rope.freq_base",
    "attention.layer_norm_rms_epsilon",
    "vocab_size",
    "rope.dimension_count",
    "attention.key_length",
    "attention.value_length",
)


def permute_qk(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """HF's rotate-half Q/K row order -> llama.cpp's interleaved order (the inverse of transformers' un-permute).

    Rows of one head are [first halves of the rotary pairs..., second halves...] in HF and
    [pair 0 (x, y), pair 1 (x, y), ...] in llama.cpp.
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _load(model_or_dir: Any):
    """A float32 transformers model from a folder, or the model given (a LoRA PeftModel is merged first)."""
    if isinstance(model_or_dir, (str, os.PathLike)):
        from transformers import AutoModelForCausalLM

        path = Path(model_or_dir)
        if not (path / "config.json").is_file():
            raise ModelError("not a transformers model folder (no config.json)", source=str(path))
        import torch

        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if hasattr(model_or_dir, "merge_and_unload"):
        peft_type = getattr(model_or_dir.active_peft_config, "peft_type", "")
        method = method_of_adapter({"peft_type": getattr(peft_type, "value", peft_type)})
        if not method.mergeable:
            raise ModelError(f"{method.name} adapters have no weights to merge into the base model")
        return model_or_dir.merge_and_unload()
    return model_or_dir


def _field_value(field) -> tuple[Any, Any, Any]:
    """(value, type, array sub-type) of a GGUFReader field, ready for GGUFWriter.add_key_value."""
    from gguf import GGUFValueType

    vtype = field.types[0]
    sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
    return field.contents(), vtype, sub


def _check_reference(reader, config, source: str) -> None:
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if tokens is None:
        raise ModelError("the reference GGUF holds no tokenizer", source=source)
    arch = reader.fields["general.architecture"].contents()
    if arch != "llama":
        raise ModelError(f"the reference GGUF is a {arch!r} model, not llama", source=source)
    if len(tokens.data) != config.vocab_size:
        raise ModelError(
            f"the reference tokenizer has {len(tokens.data)} tokens but the model's vocabulary is {config.vocab_size}",
            source=source,
        )


@functools.lru_cache(maxsize=2)
def _reader(path: Path):
    """A parsed GGUF (memory-mapped; parsing its ~100k tokenizer strings takes seconds, so it is done once)."""
    from gguf import GGUFReader

    return GGUFReader(path)


def default_reference(vocab_size: int) -> Path | None:
    """The bundled SmolLM2 GGUF when its tokenizer fits a vocabulary of this size (fine-tunes of it do)."""
    from diaguide.inference.base_model import bundled_gguf

    try:
        path = bundled_gguf()
    except ModelError:
        return None
    tokens = _reader(path).fields.get("tokenizer.ggml.tokens")
    return path.resolve() if tokens is not None and len(tokens.data) == vocab_size else None


def _tensor_type(name: str, array: np.ndarray, ftype: str):
    """The GGML type of one tensor: norms stay F32; embeddings Q8_0 in Q4_1 files (as the bundled file does)."""
    from gguf import GGMLQuantizationType as T

    if array.ndim == 1 or ftype == "f32":
        return T.F32
    if ftype == "f16":
        return T.F16
    four_bit = T.Q4_0 if ftype == "q4_0" else T.Q4_1
    qtype = T.Q8_0 if ftype == "q8_0" or name in ("token_embd.weight", "output.weight") else four_bit
    # block formats need rows that are whole blocks (32 values); a tiny model may not have them
    return qtype if array.shape[-1] % 32 == 0 else T.F16


def _tensors(model, ftype: str):
    """(GGUF name, array, GGML type) for every weight, Q/K permuted into llama.cpp's layout."""
    from gguf import MODEL_ARCH, get_tensor_name_map

    cfg = model.config
    n_head, n_kv = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    names = get_tensor_name_map(MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when there is no output.weight
        base, _, suffix = hf_name.rpartition(".")
        gguf_name = names.get_name(base)
        if gguf_name is None:
            if "rotary_emb" in hf_name:
                continue  # recomputed from rope.freq_base
            raise ModelError(f"no GGUF name for tensor {hf_name}")
        array = tensor.detach().to("cpu").float().numpy()
        if gguf_name.endswith(".attn_q"):
            array = permute_qk(array, n_head, n_head)
        elif gguf_name.endswith(".attn_k"):
            array = permute_qk(array, n_head, n_kv)
        name = f"{gguf_name}.{suffix}"
        yield name, np.ascontiguousarray(array), _tensor_type(name, array, ftype)


def export_gguf(
    merged_model_dir_or_model: Any,
    out_path: str | os.PathLike,
    reference_gguf: str | os.PathLike | None = None,
    ftype: str = "q8_0",
) -> Path:
    """Write a llama-architecture transformers model as a GGUF file llama.cpp loads.

    Args:
        merged_model_dir_or_model: a folder with config.json + weights (an adapter already merged), a loaded
            model, or a LoRA PeftModel (merged here, in place).
        out_path: the .gguf file to write (written beside and renamed, so readers never see half a file).
        reference_gguf: a GGUF of the same tokenizer whose tokenizer and metadata are copied; None picks the
            bundled SmolLM2 file when the vocabulary fits.
        ftype: "f32", "f16", "q8_0" (default: near-lossless, ~145 MB for SmolLM2-135M), "q4_1" (the bundled
            file's format, ~100 MB) or "q4_0" (~92 MB; llama.cpp repacks Q4_0 for AVX2/AVX-512 at load: ~25% faster
            decoding than q8_0 on 2 cores, but on the 135M guideline-grounded fine-tune it garbled every one of
            16 evaluation replies, so serving stays q8_0; for larger models). In the 4-bit files the
            embeddings/output head stay Q8_0, as in the bundled file.

    Raises:
        ModelError: not a llama-architecture model, no usable reference tokenizer, or an unknown ftype.
    """
    from gguf import GGUFValueType, GGUFWriter, LlamaFileType, quants

    if ftype not in FTYPES:
        raise ModelError(f"unknown GGUF type {ftype!r} (one of {', '.join(FTYPES)})", field="ftype")
    model = _load(merged_model_dir_or_model)
    cfg = model.config
    if cfg.model_type != "llama":
        raise ModelError(f"GGUF export supports llama-architecture models, not {cfg.model_type!r}")
    reference = Path(reference_gguf) if reference_gguf else default_reference(cfg.vocab_size)
    if reference is None:
        raise ModelError(
            "GGUF export needs a reference GGUF with this model's tokenizer (reference_gguf=...); "
            f"the bundled SmolLM2 file does not fit a vocabulary of {cfg.vocab_size}"
        )
    reader = _reader(reference.resolve())
    _check_reference(reader, cfg, str(reference))

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    writer = GGUFWriter(tmp, "llama")
    skip = {"general.architecture", "general.file_type", "general.quantization_version"}
    skip |= {f"llama.{k}" for k in _ARCH_KEYS}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in skip:
            continue
        value, vtype, sub = _field_value(field)
        writer.add_key_value(key, value, vtype, sub)

    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_uint32("llama.block_count", cfg.num_hidden_layers)
    writer.add_uint32("llama.context_length", cfg.max_position_embeddings)
    writer.add_uint32("llama.embedding_length", cfg.hidden_size)
    writer.add_uint32("llama.feed_forward_length", cfg.intermediate_size)
    writer.add_uint32("llama.attention.head_count", cfg.num_attention_heads)
    writer.add_uint32("llama.attention.head_count_kv", cfg.num_key_value_heads or cfg.num_attention_heads)
    writer.add_float32("llama.rope.freq_base", float(_rope_theta(cfg)))
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", float(cfg.rms_norm_eps))
    writer.add_uint32("llama.vocab_size", cfg.vocab_size)
    writer.add_uint32("llama.rope.dimension_count", head_dim)
    writer.add_uint32("llama.attention.key_length", head_dim)
    writer.add_uint32("llama.attention.value_length", head_dim)
    file_type = {
        "f32": LlamaFileType.ALL_F32,
        "f16": LlamaFileType.MOSTLY_F16,
        "q8_0": LlamaFileType.MOSTLY_Q8_0,
        "q4_1": LlamaFileType.MOSTLY_Q4_1,
        "q4_0": LlamaFileType.MOSTLY_Q4_0,
    }[ftype]
    writer.add_key_value("general.file_type", int(file_type), GGUFValueType.UINT32)
    writer.add_key_value("general.quantization_version", 2, GGUFValueType.UINT32)

    for name, array, qtype in _tensors(model, ftype):
        data = quants.quantize(array, qtype)
        writer.add_tensor(name, data, raw_dtype=qtype if data.dtype == np.uint8 else None)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    tmp.replace(out)
    log.info("wrote %s (%s, %.1f MB)", out, ftype, out.stat().st_size / 1e6)
    return out


def _rope_theta(cfg) -> float:
    # transformers 5 keeps rope settings in `rope_parameters`; older configs have `rope_theta`
    params = getattr(cfg, "rope_parameters", None) or {}
    return params.get("rope_theta") or getattr(cfg, "rope_theta", None) or 10000.0
