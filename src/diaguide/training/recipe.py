"""The training recipe: config -> data -> model + method -> loop -> adapter. Read it top to bottom.

Runs on one CPU as is, and on many GPUs or nodes under `accelerate launch --config_file
configs/accelerate/<fsdp|deepspeed_zero3|multi_node>.yaml -m diaguide.cli train ...`.

Run folder (`--out`):
    config.resolved.yaml   the config after overrides, as used
    metrics.jsonl          one line per logged step: step, loss, lr, tokens_per_s, peak_mem_mb, mfu
                           (+ val_loss lines); tokens are real tokens, never padding
    checkpoints/step-N/    adapter + optimizer + scheduler + RNG + data position, for --resume
    adapter_config.json, adapter_model.safetensors, tokenizer files: the final adapter, in PEFT's format
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import resource
import shutil
import sys
import time
from pathlib import Path

import torch

from diaguide.errors import ConfigError
from diaguide.inference.base_model import load_base_model, load_tokenizer
from diaguide.prompts.guidance import PromptStyle
from diaguide.training.config import Config, dump_config, load_config
from diaguide.training.data import (
    Batch,
    check_chat_template,
    collate,
    encode,
    epoch_order,
    oversample,
    pack,
    read_rows,
)
from diaguide.training.datasets import resolve_dataset
from diaguide.training.forward import TargetLoss, batch_loss
from diaguide.training.methods import apply_method, count_parameters, get_method, quantization_config

log = logging.getLogger(__name__)

# dense bf16 peak FLOP/s by device name (vendor datasheets); MFU is left out where the peak is unknown
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "4090": 165e12}


def train_command(
    config: str, out: str, max_steps: int | None = None, resume: bool = False, overrides: list[str] | None = None
) -> int:
    """`diaguide train --config FILE --out DIR [--max-steps N] [--resume] [key=value ...]`."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cfg = load_config(config, overrides)
    if max_steps is not None:
        cfg.train.max_steps = max_steps
    train(cfg, Path(out), resume=resume)
    return 0


def train(cfg: Config, out: Path, resume: bool = False) -> dict:
    """Fine-tune as configured; returns a summary (also written to `out/summary.json`)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    t = cfg.train
    cuda = torch.cuda.is_available()
    dtype = {
        "auto": torch.bfloat16 if cuda else torch.float32,
        "fp32": torch.float32,
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
    }[cfg.model.dtype]
    acc = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda and dtype == torch.bfloat16 else "no")
    set_seed(t.seed)
    if not acc.is_main_process:  # one copy of each progress line, not one per process
        logging.getLogger("diaguide").setLevel(logging.WARNING)
    method = get_method(cfg.method.name)
    quant = quantization_config(cfg, acc.device.type)  # QLoRA on CPU stops here, before any loading

    # 1. The run folder: a fresh one, or the one we resume.
    checkpoint = _latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        raise ConfigError("nothing to resume: no checkpoints/step-* in the run folder", source=str(out))
    if not resume and (out / "checkpoints").exists():
        raise ConfigError("the run folder already holds a run: pass --resume or choose another --out", source=str(out))
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.resolved.yaml").write_text(dump_config(cfg), encoding="utf-8")

    # 2. Data: read and check every row before the model loads, then tokenise and pack.
    tokenizer = load_tokenizer(cfg.model.name)
    use_template = check_chat_template(tokenizer, cfg.model.require_chat_template, source=cfg.model.name)
    with acc.main_process_first():
        folder = resolve_dataset(cfg.data)
    style = PromptStyle.of_dataset(folder)  # read first: a bad manifest stops the run before it trains
    train_rows = read_rows(folder / "train.jsonl")
    val_rows = read_rows(folder / "val.jsonl") if (folder / "val.jsonl").is_file() else []
    if cfg.data.max_examples:
        train_rows, val_rows = train_rows[: cfg.data.max_examples], val_rows[: cfg.data.max_examples]
    if cfg.data.oversample:
        n = len(train_rows)
        train_rows = oversample(train_rows, cfg.data.oversample)
        log.info("oversampled %s: %d train rows -> %d", cfg.data.oversample, n, len(train_rows))
    train_ex = encode(train_rows, tokenizer, cfg.data.max_length, use_template)
    val_ex = encode(val_rows, tokenizer, cfg.data.max_length, use_template)
    # a packed row holds many examples; unpacked, each row is one example padded to its batch's longest
    rows = pack(train_ex, cfg.data.seq_len) if cfg.data.pack else [[e] for e in train_ex]
    val_packed = pack(val_ex, cfg.data.seq_len) if cfg.data.pack else [[e] for e in val_ex]
    pad_id = tokenizer.pad_token_id
    order = epoch_order(len(rows), t.batch_size, t.seed, 0, acc.num_processes)
    if not order:
        raise ConfigError(
            f"{len(rows)} training rows are too few for train.batch_size={t.batch_size} on "
            f"{acc.num_processes} processes",
            field="train.batch_size",
        )
    log.info(
        "data: %d train / %d val examples, %d rows of <= %d tokens, %s",
        len(train_ex),
        len(val_ex),
        len(rows),
        cfg.data.seq_len if cfg.data.pack else cfg.data.max_length,
        "chat template" if use_template else "plain text",
    )

    # 3. Model: the base (4-bit for QLoRA), wrapped by the method; only the adapter trains.
    kwargs = {"attn_implementation": cfg.model.attn_implementation}
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": acc.local_process_index})
    base, _ = load_base_model(cfg.model.name, dtype=dtype, **kwargs)
    model = apply_method(base, cfg)
    n_trainable, n_frozen = count_parameters(model)
    prefix_len = cfg.method.prefix.num_virtual_tokens if method.prefix else 0
    module = TargetLoss(model, prefix_len)
    # Model FLOPs per real token, the yardstick of the HF baseline script: the frozen base costs 2N forward
    # + 2N for activation gradients (no weight gradients), trainable weights 6N; attention not counted.
    # Our loss head runs on target tokens only, so we do somewhat less work than this counts.
    flops_per_token = 4 * n_frozen + 6 * n_trainable
    log.info(
        "model: %s, %s, %.1fM frozen + %.2fM trainable parameters; %d process(es) on %s",
        cfg.model.name,
        cfg.method.name,
        n_frozen / 1e6,
        n_trainable / 1e6,
        acc.num_processes,
        acc.device.type,
    )

    # 4. Optimizer and schedule, counted in optimizer steps.
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
    scheduler = get_scheduler(
        t.schedule if t.schedule != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=t.warmup_steps,
        num_training_steps=t.max_steps,
    )
    # the scheduler stays unprepared: accelerate would step it once per process per step
    module, optimizer = acc.prepare(module, optimizer)

    # 5. Resume: weights, optimizer, schedule, RNG and the exact place in the data.
    step, epoch, micro = 0, 0, 0
    if checkpoint is not None:
        step, epoch, micro = _load_checkpoint(checkpoint, acc, model, optimizer, scheduler)
        _truncate_metrics(out / "metrics.jsonl", step)
        log.info("resuming from %s (step %d)", checkpoint.name, step)
    order = epoch_order(len(rows), t.batch_size, t.seed, epoch, acc.num_processes)

    # 6. The loop.
    from tqdm.auto import tqdm

    bar = tqdm(total=t.max_steps, initial=step, disable=not (t.progress and acc.is_main_process), unit="step")
    window = {"loss": 0.0, "targets": 0, "tokens": 0, "t0": time.perf_counter()}
    summary: dict = {}
    while step < t.max_steps:
        batches: list[Batch] = []
        for _ in range(t.grad_accum):
            if micro >= len(order) // acc.num_processes:
                epoch, micro = epoch + 1, 0
                order = epoch_order(len(rows), t.batch_size, t.seed, epoch, acc.num_processes)
            batches.append(collate([rows[i] for i in order[micro * acc.num_processes + acc.process_index]], pad_id))
            micro += 1
        model.train()
        loss_sum, targets, tokens = accumulate_and_step(acc, module, optimizer, batches, t.max_grad_norm)
        scheduler.step()
        step += 1
        window["loss"] += loss_sum
        window["targets"] += targets
        window["tokens"] += tokens
        bar.update(1)

        if step % t.log_every == 0 or step == t.max_steps:
            elapsed = time.perf_counter() - window["t0"]
            tps = window["tokens"] / elapsed
            peak = _peak_flops(acc)
            row = {
                "step": step,
                "epoch": epoch,
                "loss": round(window["loss"] / max(window["targets"], 1), 5),
                "lr": scheduler.get_last_lr()[0],
                "tokens_per_s": round(tps, 1),
                "peak_mem_mb": round(_peak_mem_mb(acc), 1),
                "mfu": round(flops_per_token * tps / peak, 4) if peak else None,
            }
            _append_metrics(acc, out, row)
            bar.set_postfix(loss=row["loss"], tok_s=int(tps))
            summary.update(row)
            window = {"loss": 0.0, "targets": 0, "tokens": 0, "t0": time.perf_counter()}
        if val_packed and (step % t.eval_every == 0 or step == t.max_steps):
            val_loss = evaluate(acc, module, val_packed, pad_id, t.batch_size, t.eval_max_batches)
            _append_metrics(acc, out, {"step": step, "val_loss": round(val_loss, 5)})
            summary["val_loss"] = round(val_loss, 5)
        if step % t.save_every == 0 or step == t.max_steps:  # the last one lets --resume extend a run
            _save_checkpoint(out, step, epoch, micro, acc, module, model, optimizer, scheduler, t.keep_checkpoints)
    bar.close()

    # 7. The adapter in PEFT's format, with the tokenizer, so PEFT/vLLM/our export load it as is.
    _save_adapter(out, acc, module, model, cfg)
    if acc.is_main_process:
        tokenizer.save_pretrained(out)
        style.save(out)  # inference renders prompts the way these were rendered
        summary.update(
            model=cfg.model.name,
            method=cfg.method.name,
            steps=step,
            trainable_params=n_trainable,
            frozen_params=n_frozen,
            flops_per_token=flops_per_token,
        )
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    acc.wait_for_everyone()
    return summary


def accumulate_and_step(acc, module, optimizer, batches: list[Batch], max_grad_norm: float | None):
    """Forward/backward over micro-batches, then one optimizer step.

    The loss is the mean over every target token of the whole step (all micro-batches, all processes),
    so it does not depend on how the tokens were split into rows, micro-batches or processes.
    Returns (summed token loss, target tokens, real tokens), counted over all processes.
    """
    counts = torch.tensor(
        [sum(b.target_tokens for b in batches), sum(b.real_tokens for b in batches)], device=acc.device
    )
    counts = acc.reduce(counts, "sum") if acc.num_processes > 1 else counts
    n_targets = max(int(counts[0]), 1)
    total = 0.0
    for i, batch in enumerate(batches):
        # gradients are all-reduced once, after the last micro-batch
        sync = contextlib.nullcontext() if i == len(batches) - 1 else acc.no_sync(module)
        with sync, acc.autocast():
            loss_sum, _ = batch_loss(module, batch, acc.device)
            # DDP averages gradients over processes; scaling by their number makes that a token mean
            acc.backward(loss_sum * acc.num_processes / n_targets)
        total += float(loss_sum.detach())
    if max_grad_norm:
        acc.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if acc.num_processes > 1:
        total = float(acc.reduce(torch.tensor(total, device=acc.device), "sum"))
    return total, int(counts[0]), int(counts[1])


@torch.no_grad()
def evaluate(acc, module, rows, pad_id: int, batch_size: int, max_batches: int | None) -> float:
    """Mean loss per target token on held-out rows."""
    module.eval()
    order = [list(range(i, min(i + batch_size, len(rows)))) for i in range(0, len(rows), batch_size)]
    mine = order[acc.process_index :: acc.num_processes][: max_batches or None]
    total = torch.zeros(2, device=acc.device, dtype=torch.float64)
    for idx in mine:
        with acc.autocast():
            loss_sum, n = batch_loss(module, collate([rows[i] for i in idx], pad_id), acc.device)
        total += torch.tensor([float(loss_sum), n], device=acc.device, dtype=torch.float64)
    total = acc.reduce(total, "sum") if acc.num_processes > 1 else total
    module.train()
    return float(total[0] / total[1]) if total[1] else math.nan


def _peak_flops(acc) -> float | None:
    if acc.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(acc.device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def _peak_mem_mb(acc) -> float:
    if acc.device.type == "cuda":
        return torch.cuda.max_memory_allocated(acc.device) / 2**20
    # CPU: the process's peak resident set (Linux reports KiB)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _append_metrics(acc, out: Path, row: dict) -> None:
    if acc.is_main_process:
        with (out / "metrics.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after the checkpoint we resume from (they will be logged again)."""
    if path.is_file():
        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        path.write_text("".join(ln + "\n" for ln in keep))


def _latest_checkpoint(out: Path) -> Path | None:
    found = sorted((out / "checkpoints").glob("step-??????"))
    return found[-1] if found else None


def _sharded(acc) -> bool:
    return acc.distributed_type.name in ("FSDP", "DEEPSPEED")


def _save_adapter(folder: Path, acc, module, model, cfg: Config) -> None:
    # FSDP/ZeRO-3 hold parameter shards: gather a full state dict on every process, write on the first
    state = None
    if _sharded(acc):
        state = {k.removeprefix("peft."): v for k, v in acc.get_state_dict(module).items()}
    if acc.is_main_process:
        # record the name the user gave (e.g. "smollm2-135m"), which load_base_model resolves anywhere
        model.peft_config["default"].base_model_name_or_path = cfg.model.name
        # save_embedding_layers=False: we never resize the vocabulary, and "auto" would ask the Hub about
        # a base name like "smollm2-135m" that is not a local folder
        model.save_pretrained(folder, state_dict=state, save_embedding_layers=False)


def _save_checkpoint(out, step, epoch, micro, acc, module, model, optimizer, scheduler, keep: int) -> None:
    folder = out / "checkpoints" / f"step-{step:06d}"
    tmp = folder.with_name(folder.name + ".tmp")
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)  # left by an interrupted save
    if _sharded(acc):
        acc.save_state(str(tmp / "accelerate"))
    elif acc.is_main_process:
        model.save_pretrained(tmp, save_embedding_layers=False)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if acc.is_main_process:
        torch.save(
            {
                "scheduler": scheduler.state_dict(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            tmp / "state.pt",
        )
        (tmp / "position.json").write_text(json.dumps({"step": step, "epoch": epoch, "micro": micro}))
        tmp.rename(folder)  # a checkpoint exists only once complete
        for old in sorted((out / "checkpoints").glob("step-??????"))[:-keep]:
            shutil.rmtree(old)
    acc.wait_for_everyone()


def _load_checkpoint(folder: Path, acc, model, optimizer, scheduler) -> tuple[int, int, int]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    if (folder / "accelerate").is_dir():
        acc.load_state(str(folder / "accelerate"))
    else:
        set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
        optimizer.load_state_dict(
            torch.load(folder / "optimizer.pt", map_location="cpu")
        )  # moved to the params by load
    state = torch.load(folder / "state.pt", weights_only=False)
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    pos = json.loads((folder / "position.json").read_text())
    return pos["step"], pos["epoch"], pos["micro"]
