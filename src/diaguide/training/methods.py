"""Applying a tuning method to a base model for training: 4-bit loading (QLoRA), gradient checkpointing, the
PEFT wrapper. What each method is lives in one table, `diaguide.peft_methods`."""

from __future__ import annotations

import logging

from diaguide.errors import ConfigError
from diaguide.peft_methods import METHODS, Method, get_method
from diaguide.training.config import Config

__all__ = ["METHODS", "Method", "apply_method", "count_parameters", "get_method", "quantization_config"]

log = logging.getLogger(__name__)


def quantization_config(cfg: Config, device_type: str):
    """The bitsandbytes 4-bit config for QLoRA, or None for other methods.

    Raises:
        ConfigError: QLoRA asked for without a CUDA GPU or without bitsandbytes.
    """
    if not get_method(cfg.method.name).quantized:
        return None
    if device_type != "cuda":
        raise ConfigError(
            "qlora needs a CUDA GPU (bitsandbytes 4-bit weights); on CPU use method.name=lora", field="method.name"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("qlora needs bitsandbytes: pip install 'diaguide[qlora]'", field="method.name") from None
    import torch
    from transformers import BitsAndBytesConfig

    q = cfg.method.quant
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=dtypes[q.compute_dtype],
    )


def use_checkpointing(cfg: Config) -> bool:
    """Whether to turn gradient checkpointing on; logs why when the method rules it out."""
    if not cfg.model.gradient_checkpointing:
        return False
    if not get_method(cfg.method.name).checkpointing:
        log.warning("gradient checkpointing is off: %s (prefix tuning) does not work with it in PEFT", cfg.method.name)
        return False
    return True


def apply_method(model, cfg: Config, checkpointing: bool | None = None):
    """Wrap a base model with the configured PEFT method; returns the PeftModel (only adapters trainable)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    method = get_method(cfg.method.name)
    checkpointing = use_checkpointing(cfg) if checkpointing is None else checkpointing
    if method.quantized:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False if checkpointing else model.config.use_cache
    return get_peft_model(model, method.peft_config(cfg))


def count_parameters(model) -> tuple[int, int]:
    """(trainable, frozen) parameter counts; 4-bit weights count as their logical size."""
    trainable = frozen = 0
    for p in model.parameters():
        n = p.numel()
        if hasattr(p, "quant_state"):  # bitsandbytes Params4bit packs two 4-bit values per byte
            n *= 2
        if p.requires_grad:
            trainable += n
        else:
            frozen += n
    return trainable, frozen
