"""Attention for packed rows without flash-attn: each example attends causally to itself (and the prefix).

A packed row of 2,048 tokens holding three examples needs only the three examples' causal triangles,
yet a block-diagonal mask makes `scaled_dot_product_attention` compute the whole 2,048 x 2,048 square
and takes its fast kernels away. Here each example of a row gets its own `is_causal` attention call:
roughly sum(len_i^2)/2 score FLOPs instead of L^2, on the fused kernel (CPU and GPU alike).

Registered with transformers as the attention implementation "diaguide_packed". The example bounds
travel as the keyword argument `packed_bounds` of the decoder's forward, which transformers hands to
every attention call (activation checkpointing replays it with the same arguments). Without bounds
(generation, other callers) it is plain sdpa with the mask transformers built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "diaguide_packed"


def bounds_of(segments: torch.Tensor) -> tuple[int, list[list[tuple[int, int]]]]:
    """(row length, each row's example spans [(start, end), ...]) from (B, L) segment ids (-1 = padding)."""
    bounds = []
    for row in segments.cpu():
        values, counts = torch.unique_consecutive(row, return_counts=True)
        spans, at = [], 0
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            if v >= 0:
                spans.append((at, at + c))
            at += c
        bounds.append(spans)
    return segments.shape[1], bounds


def packed_attention(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, packed_bounds=None, **kwargs
):
    """transformers attention interface: (B, H, L, D) query/key/value in, (B, L, H, D) out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    state = packed_bounds
    b, h, n, d = query.shape
    if state is None or state[0] != n or len(state[1]) != b:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    prefix = key.shape[2] - n  # prefix tuning: learned keys/values in front of every row
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:  # expand grouped key/value heads once per layer (CPU sdpa has no fused GQA path)
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    p = dropout if module.training else 0.0
    rows = []
    for r, spans in enumerate(state[1]):
        pieces, end = [], 0
        for s, e in spans:
            q = query[r : r + 1, :, s:e]
            k, v = key[r : r + 1, :, prefix + s : prefix + e], value[r : r + 1, :, prefix + s : prefix + e]
            if prefix:
                k = torch.cat([key[r : r + 1, :, :prefix], k], dim=2)
                v = torch.cat([value[r : r + 1, :, :prefix], v], dim=2)
                m = torch.ones(e - s, prefix + e - s, dtype=torch.bool, device=q.device)
                m[:, prefix:] = torch.ones(e - s, e - s, dtype=torch.bool, device=q.device).tril()
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=p, scale=scaling)
            else:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p, scale=scaling)
            pieces.append(o)
            end = e
        if end < n:  # padding at the row's end: no loss reads it, zeros keep later layers finite
            pieces.append(query.new_zeros(1, h, n - end, d))
        rows.append(torch.cat(pieces, dim=2))
    out = torch.cat(rows, dim=0) if b > 1 else rows[0]
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Make "diaguide_packed" a transformers attention implementation (its masks are sdpa's)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, packed_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
