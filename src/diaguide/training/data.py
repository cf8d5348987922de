"""Training data: prompt/target rows -> token ids with loss only on the target -> packed rows.

An example is the tokenizer's chat template (`prompts/chat.py`) applied to the prompt (user turn) and the target (assistant
turn), split where the assistant turn starts, so the model is trained on exactly the text it is served
with: `apply_chat_template(prompt, add_generation_prompt=True)` followed by the reply and its end-of-turn.

Labels are stored already shifted (`targets[t]` is the token to predict at position t, -100 where there
is no loss), so packed examples never leak a loss across their boundary.

Packing puts several examples into one row of `seq_len` tokens (first-fit on length, longest first).
Examples in a row cannot see each other: position ids restart at 0 for each example, which transformers
turns into a block-diagonal causal mask (sdpa/eager) or varlen flash attention; prefix tuning gets an
explicit 4D mask because its prefix cache switches that detection off (see `block_causal_mask`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from diaguide.errors import InputError, ModelError
from diaguide.prompts.chat import chat_turns

log = logging.getLogger(__name__)
IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    targets: list[int]  # shifted labels: the token to predict after each position, IGNORE for none

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, L)
    targets: torch.Tensor  # (B, L) shifted labels
    position_ids: torch.Tensor  # (B, L), restarting at 0 for each example
    segments: torch.Tensor  # (B, L) example index within the row; -1 for padding
    real_tokens: int  # tokens that are not padding
    target_tokens: int  # tokens that carry loss


def read_rows(path: str | Path) -> list[dict]:
    """Read a JSONL file of {"prompt", "target", ...} rows.

    Raises:
        InputError: unreadable file, a line that is not JSON, a missing or empty prompt/target (names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such data file", source=str(path))
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not JSON ({exc.msg})", source=where) from None
            if not isinstance(row, dict):
                raise InputError("a row must be a JSON object", source=where)
            for key in ("prompt", "target"):
                value = row.get(key)
                if not isinstance(value, str) or not value.strip():
                    raise InputError("missing or empty", source=where, field=key)
            rows.append(row)
    if not rows:
        raise InputError("no rows", source=str(path))
    return rows


def oversample(rows: list[dict], counts: dict[str, int]) -> list[dict]:
    """`rows` with each row whose target has a `MED: <action> |` line repeated `counts[action]` times in all
    (the largest count among its actions), each copy after its original; the order is otherwise kept."""
    if not counts:
        return rows
    out = []
    for row in rows:
        actions = {line[4:].split("|", 1)[0].strip() for line in row["target"].splitlines() if line.startswith("MED:")}
        out.extend([row] * max([counts.get(a, 1) for a in actions] or [1]))
    return out


def check_chat_template(tokenizer, required: bool, source: str = "tokenizer") -> bool:
    """Whether examples use the chat template; raises when the config requires one the tokenizer lacks."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if required and not has:
        raise ModelError(
            "the tokenizer has no chat template (set model.require_chat_template=false to train on "
            "plain prompt + target text)",
            source=source,
        )
    return has


def encode(rows: list[dict], tokenizer, max_length: int, use_template: bool) -> list[Example]:
    """Tokenise rows into examples of at most `max_length` tokens, loss on the target tokens only.

    A prompt that does not fit loses its beginning (the visit's newest facts sit at the end of our
    prompts); a target that alone does not fit is cut at `max_length` minus one prompt token.
    """
    pairs = [chat_turns(tokenizer, r["prompt"], r["target"], use_template) for r in rows]
    # special tokens come from the template itself; without one, add BOS the tokenizer's own way
    heads = tokenizer([p for p, _ in pairs], add_special_tokens=not use_template)["input_ids"]
    tails = tokenizer([t for _, t in pairs], add_special_tokens=False)["input_ids"]
    out, cut = [], 0
    for head, tail in zip(heads, tails, strict=True):
        if len(head) + len(tail) > max_length:
            cut += 1
            tail = tail[: max_length - 1]
            head = head[len(head) - (max_length - len(tail)) :]
        ids = head + tail
        targets = [IGNORE] * (len(head) - 1) + tail + [IGNORE]
        out.append(Example(ids, targets))
    if cut:
        log.info("%d of %d examples were longer than data.max_length=%d and were cut", cut, len(rows), max_length)
    return out


def pack(examples: list[Example], seq_len: int) -> list[list[Example]]:
    """Group examples into rows of at most `seq_len` tokens (first-fit, longest first).

    Returns rows in a deterministic order; shuffling happens per epoch in `batches`.
    """
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]), i))
    rows: list[list[Example]] = []
    free: list[int] = []
    for i in order:
        ex = examples[i]
        if len(ex) > seq_len:
            raise InputError(f"an example of {len(ex)} tokens does not fit data.seq_len={seq_len}")
        for r, room in enumerate(free):
            if len(ex) <= room:
                rows[r].append(ex)
                free[r] -= len(ex)
                break
        else:
            rows.append([ex])
            free.append(seq_len - len(ex))
    return rows


def collate(rows: list[list[Example]], pad_id: int, length: int | None = None) -> Batch:
    """Stack rows (each a list of examples laid end to end) into a padded batch."""
    length = length or max(sum(len(e) for e in row) for row in rows)
    n = len(rows)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    targets = torch.full((n, length), IGNORE, dtype=torch.long)
    pos = torch.zeros((n, length), dtype=torch.long)
    seg = torch.full((n, length), -1, dtype=torch.long)
    real = 0
    for b, row in enumerate(rows):
        at = 0
        for s, ex in enumerate(row):
            k = len(ex)
            ids[b, at : at + k] = torch.tensor(ex.input_ids)
            targets[b, at : at + k] = torch.tensor(ex.targets)
            pos[b, at : at + k] = torch.arange(k)
            seg[b, at : at + k] = s
            at += k
        real += at
        # padding continues its own position run, so it reads as one more (loss-free) sequence
        pos[b, at:] = torch.arange(length - at)
    return Batch(ids, targets, pos, seg, real, int((targets != IGNORE).sum()))


def block_causal_mask(segments: torch.Tensor, prefix_len: int = 0, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A (B, 1, L, prefix_len + L) mask: causal within each example, blind across examples, every query
    sees the whole prefix. Bool (True = attend) for sdpa; additive float when `dtype` is given (eager).
    """
    b, n = segments.shape
    causal = torch.ones(n, n, dtype=torch.bool, device=segments.device).tril()
    same = segments[:, :, None] == segments[:, None, :]
    mask = same & causal
    if prefix_len:
        mask = torch.cat([torch.ones(b, n, prefix_len, dtype=torch.bool, device=segments.device), mask], dim=-1)
    mask = mask[:, None]
    if dtype is None:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def epoch_order(n_rows: int, batch_size: int, seed: int, epoch: int, world: int = 1) -> list[list[int]]:
    """Row indices of each micro-batch of one epoch, in an order fixed by (seed, epoch).

    Micro-step m of the epoch gives process r the batch `order[m * world + r]`; the tail that would leave
    some process without a batch is dropped, so every process takes the same number of steps. Resume
    recomputes this order and starts at the saved micro-step: same data, same order.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n_rows, generator=g).tolist()
    groups = [perm[i : i + batch_size] for i in range(0, n_rows, batch_size)]
    return groups[: len(groups) // world * world]
