"""The vLLM engine: batched GPU serving of the base model with LoRA adapters applied per request.

An optional extra (`pip install 'diaguide[vllm]'`, CUDA only); nothing else imports vLLM, and this module
imports it only when an engine is built. vLLM needs a Hugging Face folder, so the bundled GGUF model is served
from its safetensors cache (`base_model.resolve_model_path`). Prefix tuning is not supported by vLLM: such
adapters run on the transformers engine.
"""

from __future__ import annotations

import os
import time
from typing import Any

from diaguide.errors import ModelError
from diaguide.inference.base import MAX_NEW_TOKENS, Generation, adapter_info, adapter_version
from diaguide.inference.base_model import DEFAULT_MODEL, load_tokenizer, resolve_model_path
from diaguide.inference.loops import LineLoops
from diaguide.peft_methods import method_of_adapter
from diaguide.prompts.chat import chat_text
from diaguide.prompts.guidance import PromptStyle


class VLLMGenerator:
    """Greedy generation with vLLM; every prompt of a call goes to vLLM at once (it batches continuously).

    Args:
        model_name: base model (bundled name or local folder); None takes the adapter's base model.
        adapter: a PEFT LoRA adapter folder, or None.
        gpu_memory_utilization, max_model_len, dtype: passed to `vllm.LLM`.
    """

    kind = "vllm"

    def __init__(
        self,
        model_name: str | None = None,
        adapter: str | os.PathLike | None = None,
        gpu_memory_utilization: float = 0.5,
        max_model_len: int = 2048,
        dtype: str = "bfloat16",
        **llm_kwargs: Any,
    ):
        t0 = time.perf_counter()
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError:
            raise ModelError("the vLLM engine needs vllm on a CUDA machine: pip install 'diaguide[vllm]'") from None
        info = adapter_info(adapter) if adapter is not None else {}
        if info and "vllm" not in method_of_adapter(info, str(adapter)).engines:
            method = method_of_adapter(info, str(adapter))
            raise ModelError(
                f"vLLM does not serve {method.name} adapters; they run on {', '.join(method.engines)}",
                source=str(adapter),
            )
        self.model_name = model_name or info.get("base_model_name_or_path") or DEFAULT_MODEL
        self.adapter_version = adapter_version(adapter)
        self.prompt_style = PromptStyle.of(adapter)  # render prompts the way the adapter was trained on
        path = resolve_model_path(self.model_name)
        self.tokenizer = load_tokenizer(self.model_name)
        lora = adapter is not None
        self.llm = LLM(
            model=str(path),
            tokenizer=str(path),
            dtype=dtype,
            enable_lora=lora,
            max_lora_rank=int(info.get("r", 16)) if lora else 16,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            **llm_kwargs,
        )
        self.lora = LoRARequest("adapter", 1, str(adapter)) if lora else None
        self.loops = LineLoops(self.tokenizer)
        self.decoding = {"greedy": True, "stop_repeated_line": True}  # recorded with evaluation answers
        self.load_s = time.perf_counter() - t0

    def generate(self, prompts: list[str], max_new_tokens: int = MAX_NEW_TOKENS) -> list[Generation]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, skip_special_tokens=True)
        ids = []
        for p in prompts:
            text, special = chat_text(self.tokenizer, p)
            ids.append({"prompt_token_ids": self.tokenizer(text, add_special_tokens=special)["input_ids"]})
        outputs = self.llm.generate(ids, params, lora_request=self.lora, use_tqdm=False)
        out = []
        for prompt, o in zip(ids, outputs, strict=True):
            c = o.outputs[0]
            tokens = list(c.token_ids)
            cut = self.loops.first(tokens)  # a repeated line: cut there, as the other engines stop there
            text = c.text if cut is None else self.tokenizer.decode(tokens[:cut], skip_special_tokens=True)
            out.append(
                Generation(
                    text=text,
                    prompt_tokens=len(prompt["prompt_token_ids"]),
                    new_tokens=len(c.token_ids),
                    finished=c.finish_reason == "stop" and cut is None,
                    looped=cut is not None,
                )
            )
        return out
