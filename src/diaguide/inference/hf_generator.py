"""The transformers engine: base model + optional PEFT adapter (LoRA or prefix tuning / P-tuning v2), CPU or GPU.

Prompts are generated in batches, left-padded (a causal LM continues from the last column, so every prompt must
end there), greedy, with the KV cache. Prompts are sorted by length before batching so a batch pads little;
results come back in the order given. Greedy output does not depend on the batch: a test checks that batched
and one-at-a-time generation give the same tokens.

Prefix tuning (P-tuning v2) does not go through `generate`: with transformers 5.24 PEFT hands the prefix over as
`past_key_values` while `generate` passes its own (empty) `cache`, the model keeps the latter and the prefix is
silently dropped, with an attention mask P columns too wide. A short greedy loop here feeds the prefix cache
itself, with positions continuing after the prefix exactly as training does (training/forward.py).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from diaguide.errors import ModelError
from diaguide.inference.base import MAX_NEW_TOKENS, Generation, adapter_info, adapter_version
from diaguide.inference.base_model import DEFAULT_MODEL, load_base_model
from diaguide.inference.loops import LineLoops
from diaguide.peft_methods import method_of_adapter
from diaguide.prompts.chat import chat_text
from diaguide.prompts.guidance import PromptStyle

log = logging.getLogger(__name__)


def _device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class HFGenerator:
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
        self.prompt_style = PromptStyle.of(adapter)  # render prompts the way the adapter was trained on
        self.method = method_of_adapter(info, str(adapter)) if info else None  # None: the base model alone
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
        self.loops = LineLoops(self.tokenizer)
        self.decoding = {"greedy": True, "stop_repeated_line": True}  # recorded with evaluation answers
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
        if self.method is not None and self.method.prefix:  # the prefix cache is decoded by hand
            with torch.inference_mode():
                new = self._prefix_greedy(ids.to(self.device), mask.to(self.device), max_new_tokens, eos)
            return self._generations(new, batch, eos)
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
                stopping_criteria=_stop_loops(self.loops, width, eos),
            )[:, width:].tolist()
        return self._generations(new, batch, eos)

    def _generations(self, new: list[list[int]], batch: list[list[int]], eos: int) -> list[Generation]:
        tok = self.tokenizer
        out = []
        for row, prompt in zip(new, batch, strict=True):
            finished = eos in row
            row = row[: row.index(eos) + 1] if finished else row
            # a row stopped at a repeated line (padded after it, maybe with the end token) is cut before that line
            cut = self.loops.first(row)
            text = tok.decode(row[:cut], skip_special_tokens=True)
            out.append(
                Generation(
                    text=text,
                    prompt_tokens=len(prompt),
                    new_tokens=len(row) if cut is None else self._line_end(row, cut),
                    finished=finished and cut is None,
                    looped=cut is not None,
                )
            )
        return out

    def _line_end(self, row: list[int], start: int) -> int:
        """Tokens generated in a row that stopped at the repeated line beginning at `start`: up to that line's
        end (padding after it)."""
        return next((i + 1 for i in range(start, len(row)) if self.loops.ends_line(row[i])), len(row))

    def _prefix_greedy(self, ids, mask, max_new_tokens: int, eos: int) -> list[list[int]]:
        """Greedy decoding of a prefix-tuned model: prefix cache first, positions P, P+1 ... for real tokens."""
        import inspect

        import torch

        base = self.model.get_base_model()
        n_prefix = self.model.active_peft_config.num_virtual_tokens
        b = ids.shape[0]
        cache = self.model.get_prompt(batch_size=b, max_cache_len=n_prefix + ids.shape[1] + max_new_tokens)
        full_mask = torch.cat([torch.ones((b, n_prefix), dtype=mask.dtype, device=mask.device), mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0) + n_prefix  # padding's positions are masked anyway
        # transformers 5.24 renamed the forward's `past_key_values` to `cache` (the old name warns)
        params = inspect.signature(base.forward).parameters
        key = "cache" if "cache" in params else "past_key_values"
        extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}  # logits of the last column only
        done = torch.zeros(b, dtype=torch.bool, device=ids.device)
        new: list[torch.Tensor] = []
        rows: list[list[int]] = [[] for _ in range(b)]  # the same tokens as Python lists, for the loop check
        step_ids = ids
        for _ in range(max_new_tokens):
            out = base(
                input_ids=step_ids,
                attention_mask=full_mask,
                position_ids=positions,
                use_cache=True,
                **extra,
                **{key: cache},
            )
            cache = getattr(out, "cache", None) or out.past_key_values
            token = out.logits[:, -1].argmax(-1)
            token = torch.where(done, torch.full_like(token, self.tokenizer.pad_token_id), token)
            new.append(token)
            done |= token == eos
            for r, t in zip(rows, token.tolist(), strict=True):
                r.append(t)
            done |= torch.tensor(
                [not d and self.loops.check(r) is not None for r, d in zip(rows, done.tolist(), strict=True)],
                device=done.device,
            )
            if bool(done.all()):
                break
            step_ids = token[:, None]
            positions = positions[:, -1:] + 1
            full_mask = torch.cat([full_mask, torch.ones((b, 1), dtype=full_mask.dtype, device=full_mask.device)], 1)
        return torch.stack(new, dim=1).tolist()


def _stop_loops(loops: LineLoops, width: int, eos: int):
    """A transformers stopping criterion: a row stops once it writes a line it already wrote (`loops.py`)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopLoops(StoppingCriteria):
        def __init__(self) -> None:
            self.stopped: set[int] = set()

        def __call__(self, input_ids, scores, **kwargs):
            for b, last in enumerate(input_ids[:, -1].tolist()):
                if b in self.stopped or not loops.ends_line(last):  # only a line break can end a repeated line
                    continue
                row = input_ids[b, width:].tolist()
                if eos not in row and loops.check(row) is not None:
                    self.stopped.add(b)
            return torch.tensor([b in self.stopped for b in range(input_ids.shape[0])], device=input_ids.device)

    return StoppingCriteriaList([StopLoops()])
