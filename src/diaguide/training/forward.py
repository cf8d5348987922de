"""The training forward pass: the decoder's hidden states -> output head on target positions only -> loss.

Why not `model(input_ids, labels=...)`: that computes vocabulary logits for every position (prompt and
padding included) and keeps them for backward. Our prompts are most of each example, and SmolLM2's
output head (49,152 x 576) is about a fifth of its matmul FLOPs, so projecting only the positions that
carry loss saves that share of compute and most of the logits memory. The result is the same loss.

The module wraps the PEFT model so `accelerate.prepare` (DDP, FSDP, DeepSpeed) sees one forward.
Supported: decoder-only models with `model.<base_model_prefix>` as the decoder and no logit soft-capping
or scaling (Llama, Qwen2, GLM, GLM-4, Mistral ...).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from diaguide.errors import ConfigError
from diaguide.training.attention import NAME as PACKED
from diaguide.training.attention import bounds_of
from diaguide.training.attention import register as register_packed_attention
from diaguide.training.data import IGNORE, Batch, block_causal_mask

# target positions projected at once; beyond this the head runs in recomputed chunks to bound memory
_HEAD_CHUNK = 8192


class TargetLoss(nn.Module):
    """`forward(input_ids, targets, position_ids, segments) -> (sum of token losses, number of target tokens)`."""

    def __init__(self, peft_model, prefix_len: int = 0):
        super().__init__()
        self.peft = peft_model
        self.prefix_len = prefix_len  # > 0 for prefix tuning (P-tuning v2)
        lm = peft_model.get_base_model()
        for attr in ("final_logit_softcapping", "logit_scale"):
            if getattr(lm.config, attr, None):
                raise NotImplementedError(f"models with {attr} are not supported by the target-only loss yet")
        # sdpa -> per-example attention calls (see attention.py); flash-attention reads the restarting
        # position ids as varlen sequences by itself; eager gets an explicit block-diagonal mask
        if lm.config._attn_implementation == "sdpa":
            lm.config._attn_implementation = register_packed_attention()
        self.packed_attention = lm.config._attn_implementation == PACKED

    def _decoder_and_head(self):
        lm = self.peft.get_base_model()
        return getattr(lm, lm.base_model_prefix), lm.get_output_embeddings()

    def hidden(self, input_ids, position_ids, segments):
        decoder, _ = self._decoder_and_head()
        extra = {"packed_bounds": bounds_of(segments)} if self.packed_attention else {}
        if not self.prefix_len:
            # no mask: packed attention takes the bounds; otherwise transformers reads the restarting
            # position ids as packed sequences (a block-diagonal mask for eager, varlen flash-attention)
            return decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False, **extra).last_hidden_state
        b = input_ids.shape[0]
        cache = self.peft.get_prompt(batch_size=b, max_cache_len=input_ids.shape[1] + self.prefix_len)
        impl = decoder.config._attn_implementation
        mask = None  # packed attention and flash-attention need no mask
        if impl == "eager":
            mask = block_causal_mask(segments, self.prefix_len, self._dtype())
        elif impl == "flash_attention_2":
            raise ConfigError(
                "prefix tuning with packed rows needs sdpa or eager attention", field="model.attn_implementation"
            )
        # positions continue after the prefix, as PEFT's own forward and generate do
        return decoder(
            input_ids=input_ids,
            position_ids=position_ids + self.prefix_len,
            attention_mask=mask,
            use_cache=True,
            **{_cache_kwarg(decoder): cache},
            **extra,
        ).last_hidden_state

    def _dtype(self):
        return next(p for p in self.peft.parameters() if p.is_floating_point()).dtype

    def forward(self, input_ids, targets, position_ids, segments):
        h = self.hidden(input_ids, position_ids, segments)
        _, head = self._decoder_and_head()
        flat = targets.reshape(-1)
        keep = (flat != IGNORE).nonzero().squeeze(-1)
        h = h.reshape(-1, h.shape[-1]).index_select(0, keep)
        y = flat.index_select(0, keep)
        if len(keep) <= _HEAD_CHUNK:
            return _head_loss(head, h, y), len(keep)
        total = h.new_zeros((), dtype=torch.float32)
        for i in range(0, len(keep), _HEAD_CHUNK):
            total = total + torch.utils.checkpoint.checkpoint(
                _head_loss, head, h[i : i + _HEAD_CHUNK], y[i : i + _HEAD_CHUNK], use_reentrant=False
            )
        return total, len(keep)


def _cache_kwarg(decoder) -> str:
    # transformers 5.24 renamed `past_key_values` to `cache` (the old name warns, and goes in 5.40)
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def _head_loss(head, h, y):
    # logits in float32: cross-entropy over a 50k-150k vocabulary loses precision in bf16
    return F.cross_entropy(head(h).float(), y, reduction="sum")


def batch_loss(module: TargetLoss, batch: Batch, device) -> tuple[torch.Tensor, int]:
    """Loss sum and target count of one batch (no gradient bookkeeping)."""
    return module(
        batch.input_ids.to(device), batch.targets.to(device), batch.position_ids.to(device), batch.segments.to(device)
    )
