"""The transformers engine: base model + optional PEFT adapter (LoRA or prefix tuning / P-tuning v2), CPU or GPU.

Prompts are generated in batches, left-padded (a causal LM continues from the last column, so every prompt must
end there), greedy, with the KV cache. Prompts are sorted by length before batching so a batch pads little;
results come back in the order given. Greedy output does not depend on the batch: a test checks that batched
and one-at-a-time generation give the same tokens.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from diaguide.errors import ModelError
from diaguide.inference.base_model import DEFAULT_MODEL, load_base_model
from diaguide.inference.engine import MAX_NEW_TOKENS, Generation, adapter_info, adapter_version, chat_text

log = logging.getLogger(__name__)


def _device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class HFEngine:
    """Greedy batched generation with transformers.

    Args:
        model_name: base model (bundled name or local folder); None takes the adapter's base model.
        adapter: a PEFT adapter folder (adapter_config.json + weights), or None for the base model.
        device: "cpu", "cuda", "cuda:1" ...; None picks CUDA when present.
        dtype: None (fp32 on CPU, bf16 on GPU), or "fp32"/"bf16"/"fp16".
        batch_size: prompts per generate call.
        model, tokenizer: an already loaded pair (tests, or a caller that holds one), used instead of loading.
    """

    kind = "transformers"

    def __init__(
        self,
        model_name: str | None = None,
        adapter: str | os.PathLike | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        model: Any = None,
        tokenizer: Any = None,
    ):
        t0 = time.perf_counter()
        self.device = _device(device)
        self.batch_size = batch_size
        info = adapter_info(adapter) if adapter is not None else {}
        self.model_name = model_name or info.get("base_model_name_or_path") or DEFAULT_MODEL
        self.adapter_version = adapter_version(adapter)
        self.peft_type = info.get("peft_type")
        if model is None:
            if dtype is None and self.device.startswith("cuda"):
                dtype = "bf16"
            model, tokenizer = load_base_model(self.model_name, dtype=dtype)
        if adapter is not None:
            from peft import PeftModel

            try:
                model = PeftModel.from_pretrained(model, str(adapter))
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelError(f"cannot load the adapter: {str(exc).splitlines()[0]}", source=str(adapter)) from None
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.load_s = time.perf_counter() - t0

    def generate(self, prompts: list[str], max_new_tokens: int = MAX_NEW_TOKENS) -> list[Generation]:
        """Greedy replies to user-turn prompts, in the order given."""
        encoded = [self._encode(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        out: list[Generation | None] = [None] * len(prompts)
        for at in range(0, len(order), self.batch_size):
            chunk = order[at : at + self.batch_size]
            for i, g in zip(chunk, self._generate_batch([encoded[i] for i in chunk], max_new_tokens), strict=True):
                out[i] = g
        return [g for g in out if g is not None]

    def _encode(self, prompt: str) -> list[int]:
        text, special = chat_text(self.tokenizer, prompt)
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def _generate_batch(self, batch: list[list[int]], max_new_tokens: int) -> list[Generation]:
        import torch

        tok = self.tokenizer
        width = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, row in enumerate(batch):
            ids[b, width - len(row) :] = torch.tensor(row)  # left padding
            mask[b, width - len(row) :] = 1
        eos = tok.eos_token_id
        with torch.inference_mode():
            new = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                num_beams=1,
                use_cache=True,
                pad_token_id=tok.pad_token_id,
                eos_token_id=eos,
            )[:, width:].tolist()
        out = []
        for row, prompt in zip(new, batch, strict=True):
            finished = eos in row
            row = row[: row.index(eos) + 1] if finished else row
            text = tok.decode(row, skip_special_tokens=True)
            out.append(Generation(text=text, prompt_tokens=len(prompt), new_tokens=len(row), finished=finished))
        return out
