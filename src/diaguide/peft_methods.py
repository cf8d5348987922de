"""The tuning methods DiaGuide trains and serves, in one table (in the spirit of PEFT's own method registry).

A method is found by the name a training config gives (`method.name: lora`) or by the `peft_type` an adapter's
`adapter_config.json` records (`LORA`), and says everything the rest of the project asks about it: how to build
its PEFT config, whether the base model is loaded in 4 bits, whether gradient checkpointing works with it, whether
its weights fold into the base model, which serving engines run it, and how it is exported. Training, serving,
export, evaluation and the CLI ask this table; adding a method is one entry here plus its config builder
(docs/design.md, "Where each kind of change goes").

Nothing here imports torch or peft at import time: the builders import peft when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diaguide.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from diaguide.training.config import Config

ENGINES = ("transformers", "llama.cpp", "vllm")


@dataclass(frozen=True)
class Method:
    name: str  # the training config's `method.name`
    peft_type: str  # what PEFT writes in adapter_config.json
    peft_config: Callable[[Config], Any]
    prefix: bool = False  # learned key/values fed as a cache in front of every layer (greedy decoding by hand)
    quantized: bool = False  # base weights loaded in 4 bits (bitsandbytes, CUDA only)
    # PEFT's prefix tuning hands the model a prefix cache; with checkpointing transformers turns the cache
    # off (use_cache=False) and the prefix is lost or re-created mid-backward, so the two do not mix.
    checkpointing: bool = True
    mergeable: bool = True  # the adapter folds into the base weights (a merged model, a GGUF for llama.cpp)
    engines: tuple[str, ...] = ENGINES  # serving engines that run its adapters
    exports: tuple[str, ...] = ("merge", "gguf")  # what `diaguide export` can write from its adapters


def _lora(cfg: Config) -> Any:
    from peft import LoraConfig, TaskType

    lo = cfg.method.lora
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=lo.r,
        lora_alpha=lo.alpha,
        lora_dropout=lo.dropout,
        target_modules=lo.target_modules,
    )


def _prefix(cfg: Config) -> Any:
    from peft import PrefixTuningConfig, TaskType

    pre = cfg.method.prefix
    kwargs: dict[str, Any] = {}
    if pre.encoder_hidden_size is not None:
        kwargs["encoder_hidden_size"] = pre.encoder_hidden_size
    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=pre.num_virtual_tokens,
        prefix_projection=pre.prefix_projection,
        **kwargs,
    )


METHODS: dict[str, Method] = {
    "lora": Method("lora", "LORA", _lora),
    # P-tuning v2 is deep prefix tuning: PEFT's PREFIX_TUNING (key/values at every layer)
    "ptuning_v2": Method(
        "ptuning_v2",
        "PREFIX_TUNING",
        _prefix,
        prefix=True,
        checkpointing=False,
        mergeable=False,
        engines=("transformers",),
        exports=(),
    ),
    # a QLoRA adapter is a LoRA adapter trained over 4-bit weights: PEFT saves it as LORA
    "qlora": Method("qlora", "LORA", _lora, quantized=True),
}
NAMES: tuple[str, ...] = tuple(METHODS)


def get_method(name: str) -> Method:
    """The method a training config names."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r} (one of {', '.join(METHODS)})", field="method.name")
    return METHODS[name]


def method_of_adapter(info: dict[str, Any], source: str = "adapter") -> Method:
    """The method of an adapter, from its adapter_config.json (`inference.base.adapter_info`). A `peft_type`
    the table does not know is a ModelError naming it: serving it on a guess could silently drop the adapter."""
    peft_type = str(info.get("peft_type") or "")
    for method in METHODS.values():  # lora before qlora: the same saved adapter
        if method.peft_type == peft_type:
            return method
    known = sorted({m.peft_type for m in METHODS.values()})
    raise ModelError(
        f"adapter type {peft_type or '(none)'!r} is not one DiaGuide serves ({', '.join(known)})", source=source
    )


def serving_engines(info: dict[str, Any] | None) -> tuple[str, ...]:
    """The engines that can serve this adapter (`None`: the base model alone, which every engine serves)."""
    return ENGINES if not info else method_of_adapter(info).engines
