"""`diaguide bench train`: the project's training step against the path most users take, same run.

Both paths train LoRA on the same examples (each seen once, the same real tokens) from the same base:
  ours      packed rows (per-example causal attention, see attention.py), loss head on target tokens only
  baseline  Hugging Face transformers + PEFT, `model(input_ids, attention_mask, labels)` on padded batches
            of 8 examples in (seeded) random order, padded to the longest, labels -100 on prompt and padding
Steps of the two are interleaved (whichever has processed fewer real tokens goes next), so a busy
shared machine slows both alike. tokens/s counts real tokens only, never padding. Peak memory: each
path's largest step run first in a fresh process, resident set sampled every 2 ms, minus the level
just before the step (what a training step adds on top of the loaded model).

Full run: the bundled SmolLM2-135M-Instruct on synthetic-cohort examples (EHR prompt -> plan, ~500-1100
tokens). `quick`: a tiny random Llama on synthetic token ids, a smoke test of the same code.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import torch

from diaguide.training.config import Config, load_config
from diaguide.training.data import IGNORE, Example, collate, pack
from diaguide.training.forward import TargetLoss, batch_loss
from diaguide.training.methods import apply_method

log = logging.getLogger(__name__)
BASELINE_BATCH = 8  # as in shared/bench/hf_peft_baseline.py (and HF Trainer's default per-device batch)
N_EXAMPLES = 16
PATHS = ("ours", "baseline")


class _RssPeak:
    """Peak resident set above the level at entry, sampled in a thread while the block runs."""

    def __init__(self, interval: float = 0.002):
        import psutil

        self.proc, self.interval, self.delta_mb, self.abs_mb = psutil.Process(), interval, 0.0, 0.0

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.peak, self.stop = self.base, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.delta_mb = max(self.delta_mb, (self.peak - self.base) / 2**20)
        self.abs_mb = max(self.abs_mb, self.peak / 2**20)


def _synthetic_examples(n: int, vocab: int, lo: int, hi: int, seed: int = 0) -> list[Example]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(lo, hi + 1, (1,), generator=g))
        n_target = max(2, int(length * 0.3))  # targets ~30% of tokens, as in the cohort pairs
        ids = torch.randint(4, vocab, (length,), generator=g).tolist()
        targets = [IGNORE] * (length - n_target - 1) + ids[length - n_target :] + [IGNORE]
        out.append(Example(ids, targets))
    return out


def _cohort_examples(cfg: Config, tokenizer, n: int) -> tuple[list[Example], str]:
    from diaguide.training.data import encode, read_rows
    from diaguide.training.datasets import resolve_dataset

    folder = resolve_dataset(cfg.data)
    rows = read_rows(folder / "train.jsonl")[:n]
    return encode(rows, tokenizer, cfg.data.max_length, True), f"synthetic cohort {folder.name}, train split"


def _padded(examples: list[Example], pad_id: int) -> dict:
    """The usual HF batch: right-padded ids, attention mask, unshifted labels (-100 on prompt and pad)."""
    n = max(len(e) for e in examples)
    ids = torch.full((len(examples), n), pad_id)
    att = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for i, e in enumerate(examples):
        ids[i, : len(e)] = torch.tensor(e.input_ids)
        att[i, : len(e)] = 1
        labels[i, : len(e)] = torch.tensor([IGNORE, *e.targets[:-1]])
    return {"input_ids": ids, "attention_mask": att, "labels": labels}


def _setup(quick: bool):
    """(config, base-model factory, examples, pad id, model name, source of the examples)."""
    cfg = load_config(
        None,
        [
            "method.name=lora",
            "method.lora.dropout=0",
            "data.cohort.patients=40",
            "data.max_length=2048",
            "data.seq_len=2048",
        ],
    )
    if quick:
        from transformers import LlamaConfig, LlamaForCausalLM

        def base():
            torch.manual_seed(0)
            c = LlamaConfig(
                vocab_size=512,
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                tie_word_embeddings=True,
            )
            return LlamaForCausalLM(c)

        return cfg, base, _synthetic_examples(16, 512, 40, 160), 0, "tiny random llama", "random token ids"
    from diaguide.inference.base_model import load_base_model, load_tokenizer

    def base():
        return load_base_model("smollm2-135m")[0]

    tokenizer = load_tokenizer("smollm2-135m")
    examples, source = _cohort_examples(cfg, tokenizer, N_EXAMPLES)
    # the order HF Trainer's default RandomSampler would draw (seeded); our packing reorders anyway
    perm = torch.randperm(len(examples), generator=torch.Generator().manual_seed(0)).tolist()
    return cfg, base, [examples[i] for i in perm], tokenizer.pad_token_id, "SmolLM2-135M-Instruct", source


def _make(path: str, cfg: Config, base, examples: list[Example], pad_id: int):
    """(step function returning the real tokens it trained on, its work items) for one path."""
    model = apply_method(base(), cfg, checkpointing=False)
    module = TargetLoss(model) if path == "ours" else model
    module.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if path == "ours":
        items = [collate([row], pad_id) for row in pack(examples, cfg.data.seq_len)]
    else:
        items = [examples[i : i + BASELINE_BATCH] for i in range(0, len(examples), BASELINE_BATCH)]

    def step(item) -> int:
        if path == "ours":
            loss_sum, n = batch_loss(module, item, "cpu")
            (loss_sum / n).backward()
            real = item.real_tokens
        else:
            module(**_padded(item, pad_id)).loss.backward()
            real = sum(len(e) for e in item)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return real

    return step, items


def _memory_probe(path: str, quick: bool, threads: int) -> dict:
    """In a fresh process: resident memory a first training step of `path` adds (its largest batch)."""
    torch.set_num_threads(threads)
    cfg, base, examples, pad_id, _, _ = _setup(quick)
    step, items = _make(path, cfg, base, examples, pad_id)
    largest = max(items, key=lambda it: it.input_ids.numel() if path == "ours" else len(it) * max(map(len, it)))
    mem = _RssPeak()
    with mem:
        step(largest)
    return {"peak_step_mem_mb": round(mem.delta_mb, 1), "peak_rss_mb": round(mem.abs_mb, 1)}


def bench_train(out: str, quick: bool = False) -> int:
    """Time our LoRA training step against HF + PEFT padded batches; write JSON to `out`."""
    from diaguide.machine import machine_info

    # DIAGUIDE_BENCH_THREADS pins torch's intra-op threads: on a shared machine two threads that wait on
    # each other whenever another process holds a core make every op erratic; both paths get the same setting
    if os.environ.get("DIAGUIDE_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["DIAGUIDE_BENCH_THREADS"]))
    threads = torch.get_num_threads()
    memory: dict[str, dict] = {}
    if not quick:
        # each path in its own fresh process: a heap that one path grew would hide the other's peak
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        for path in PATHS:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                memory[path] = pool.submit(_memory_probe, path, quick, threads).result()

    cfg, base, examples, pad_id, model_name, source = _setup(quick)
    paths = {p: _make(p, cfg, base, examples, pad_id) for p in PATHS}
    for step, items in paths.values():  # a warm-up step each (allocator, kernels), not timed
        step(items[0])
    stats = {p: {"tokens": 0, "seconds": 0.0, "steps": 0} for p in PATHS}
    todo = {p: list(paths[p][1]) for p in PATHS}
    while any(todo.values()):
        path = min((p for p in todo if todo[p]), key=lambda p: stats[p]["tokens"])
        t0 = time.perf_counter()
        stats[path]["tokens"] += paths[path][0](todo[path].pop(0))
        stats[path]["seconds"] += time.perf_counter() - t0
        stats[path]["steps"] += 1

    result = {
        p: {
            "tokens": s["tokens"],
            "seconds": round(s["seconds"], 2),
            "optimizer_steps": s["steps"],
            "tokens_per_s": round(s["tokens"] / s["seconds"], 1),
            **memory.get(p, {"peak_step_mem_mb": None, "peak_rss_mb": None}),
        }
        for p, s in stats.items()
    }
    batches = paths["baseline"][1]
    report = {
        "bench": "train",
        "quick": quick,
        "machine": machine_info(),
        "torch_threads": threads,
        "model": model_name,
        "method": "LoRA r=16 alpha=32 all-linear, fp32, AdamW lr 1e-4, no gradient checkpointing",
        "examples": {
            "source": source,
            "count": len(examples),
            "real_tokens": sum(len(e) for e in examples),
            "target_tokens": sum(sum(t != IGNORE for t in e.targets) for e in examples),
            "min_len": min(len(e) for e in examples),
            "max_len": max(len(e) for e in examples),
        },
        "ours": {
            "batching": f"packed rows of <= {cfg.data.seq_len} tokens, one row per optimizer step, "
            "per-example causal attention, loss head on target tokens only",
            "rows": len(paths["ours"][1]),
            **result["ours"],
        },
        "baseline": {
            "batching": f"HF transformers + PEFT model(input_ids, attention_mask, labels), padded "
            f"batches of {BASELINE_BATCH} in random order (as shared/bench/hf_peft_baseline.py)",
            "padded_tokens": sum(len(b) * max(len(e) for e in b) for b in batches),
            **result["baseline"],
        },
        "ratio_tokens_per_s": round(result["ours"]["tokens_per_s"] / result["baseline"]["tokens_per_s"], 3),
        "goal_ratio": 1.5,
        "notes": "steps interleaved (the path with fewer tokens so far goes next), same examples once each, "
        "tokens/s counts real tokens only; memory: resident set a first step adds, each path in a "
        "fresh process, sampled every 2 ms (not measured in quick mode)",
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(
        f"train bench: ours {result['ours']['tokens_per_s']:.0f} tok/s, baseline "
        f"{result['baseline']['tokens_per_s']:.0f} tok/s, ratio {report['ratio_tokens_per_s']:.2f} -> {out}"
    )
    return 0
