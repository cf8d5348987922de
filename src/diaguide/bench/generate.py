"""`diaguide bench generate --out FILE.json`: how fast each engine turns visits into plans, all in one run.

Measured on the same visits of the seeded synthetic cohort, on this machine, one after another:

* transformers, one visit at a time and the same visits in one batch of the engine's default size (8; the
  baseline: batching must give >= 2x);
* llama.cpp single-stream (the CPU serving engine: goal >= 100 tokens/s decoding), on the fine-tuned adapter merged and
  exported to GGUF, and on the bundled base GGUF (Q4_1) as this machine's reference: the issue measured ~111
  tokens/s for it, and machines lent to us differ by up to 2x, so the same-run reference says how fast this
  one is. Without an adapter: the bundled GGUF and (full run) our own Q8_0 export of the same weights;
* the latency of one whole recommendation (prompt, generation, parse, strict retry, safety check) with the
  serving engine: p50 over a few visits, goal under 3 s.

For llama.cpp the single-stream figure is also split into the time to the first token (reading the prompt,
~500 tokens here) and the steady decoding rate after it. Throughput runs generate a fixed budget of new tokens per visit (stopping earlier at end-of-turn), so the
engines do comparable work; the latency run uses the engine's real limit (the quick run, the budget). Model load times are recorded too.
The JSON says which model ran (the base model when no fine-tuned adapter exists yet) and the load average,
since other jobs on a shared machine slow every figure.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from diaguide.inference.base import MAX_NEW_TOKENS, Generator
from diaguide.inference.pipeline import recommend
from diaguide.machine import machine_info
from diaguide.prompts import render_prompt
from diaguide.prompts.guidance import PromptStyle, guideline_plan

log = logging.getLogger(__name__)

GOALS = {"serving_tokens_per_s": 100.0, "single_visit_p50_s": 3.0, "batched_speedup": 2.0}
BATCH = 8  # the transformers engine's default batch size


def _visits(n: int, seed: int = 0):
    from diaguide.cohort.generate import generate_cohort

    records = generate_cohort(patients=max(4, n), seed=seed, lang="en")
    # one visit per patient, the latest (it has history): the case a physician asks about
    latest: dict[str, Any] = {}
    for r in records:
        latest[r.visit.patient_id] = r.visit
    return list(latest.values())[:n]


def throughput(engine: Generator, prompts: list[str], max_new_tokens: int) -> dict[str, Any]:
    """Visits/s and new tokens/s of one `generate` call over all prompts."""
    t0 = time.perf_counter()
    gens = engine.generate(prompts, max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - t0
    new = sum(g.new_tokens for g in gens)
    result = {
        "visits": len(prompts),
        "seconds": round(seconds, 3),
        "visits_per_s": round(len(prompts) / seconds, 4),
        "new_tokens": new,
        "tokens_per_s": round(new / seconds, 2),  # prompt reading included
        "prompt_tokens": sum(g.prompt_tokens for g in gens),
        "stopped_at_end_of_turn": sum(g.finished for g in gens),
        "stopped_at_repeated_line": sum(g.looped for g in gens),
    }
    firsts = [g.first_token_s for g in gens]
    if all(f is not None for f in firsts) and new > len(gens):
        # a streaming engine: time to the first token (prompt reading) apart from the steady decoding rate
        result["first_token_s_mean"] = round(statistics.mean(firsts), 3)
        result["decode_tokens_per_s"] = round((new - len(gens)) / (seconds - sum(firsts)), 2)
    return result


def latency(
    engine: Generator, visits: list, max_new_tokens: int = MAX_NEW_TOKENS, region: str = "ada"
) -> dict[str, Any]:
    """Wall time of whole recommendations, one visit at a time (p50, max, statuses)."""
    rows = []
    for v in visits:
        t0 = time.perf_counter()
        r = recommend(v, engine, region=region, max_new_tokens=max_new_tokens)
        rows.append(
            {"seconds": time.perf_counter() - t0, "status": r.status, "attempts": r.attempts, "tokens": r.new_tokens}
        )
    secs = [r["seconds"] for r in rows]
    return {
        "visits": len(rows),
        "max_new_tokens": max_new_tokens,
        "p50_s": round(statistics.median(secs), 3),
        "max_s": round(max(secs), 3),
        "statuses": {s: sum(r["status"] == s for r in rows) for s in ("ok", "partial", "no_suggestion")},
        "mean_attempts": round(statistics.mean(r["attempts"] for r in rows), 2),
        "mean_new_tokens": round(statistics.mean(r["tokens"] for r in rows), 1),
    }


def _model_section(adapter: Path | None) -> dict[str, Any]:
    from diaguide.inference.base import adapter_info, adapter_version

    if adapter is None:
        return {
            "base": "smollm2-135m",
            "fine_tuned": False,
            "note": "no fine-tuned adapter in models/ yet: the base SmolLM2-135M-Instruct was measured",
        }
    info = adapter_info(adapter)
    return {
        "base": info.get("base_model_name_or_path"),
        "fine_tuned": True,
        "adapter": str(adapter),
        "peft_type": info.get("peft_type"),
        "adapter_version": adapter_version(adapter),
        "guideline_line_in_prompt": PromptStyle.of(adapter).guidance,
    }


def bench_generate(out: str, quick: bool = False) -> int:
    """Run the generation benchmark and write its JSON to `out`; 0 on success."""
    from diaguide.inference.hf_generator import HFGenerator
    from diaguide.inference.registry import default_adapter, gguf_type, llamacpp_available, merged_gguf

    n = 3 if quick else 4  # llama.cpp (single-stream)
    n_batched = 3 if quick else BATCH  # transformers, one at a time and in one batch
    budget = 32 if quick else 160  # new tokens per visit in the throughput runs (a typical plan is ~200)
    adapter = default_adapter()
    visits = _visits(max(n, n_batched))
    style = PromptStyle.of(adapter)  # the prompts the adapter was trained on (with the guideline line or not)
    all_prompts = [render_prompt(v, guidance=guideline_plan(v, "ada") if style.guidance else None) for v in visits]
    prompts = all_prompts[:n]
    result: dict[str, Any] = {
        "bench": "generate",
        "quick": quick,
        "machine": machine_info(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "model": _model_section(adapter),
        "settings": {
            "visits": n,
            "visits_batched": n_batched,
            "new_token_budget": budget,
            "greedy": True,
            "threads": os.cpu_count(),
        },
        "engines": {},
    }

    t0 = time.perf_counter()
    hf = HFGenerator(adapter=adapter, batch_size=1)
    hf_load = time.perf_counter() - t0
    one = throughput(hf, all_prompts[:n_batched], budget)
    hf.batch_size = n_batched
    batched = throughput(hf, all_prompts[:n_batched], budget)
    result["engines"]["transformers"] = {
        "dtype": str(next(hf.model.parameters()).dtype),
        "load_s": round(hf_load, 3),
        "one_at_a_time": one,
        "batched": {**batched, "batch_size": n_batched},
        "batched_speedup": round(batched["visits_per_s"] / one["visits_per_s"], 2),
    }
    del hf

    serving: dict[str, Any] | None = None
    if llamacpp_available():
        from diaguide.inference.base_model import bundled_gguf, load_tokenizer
        from diaguide.inference.llamacpp_generator import LlamaCppGenerator

        tok = load_tokenizer()
        files = {"bundled_q4_1": bundled_gguf()}
        if adapter is not None:  # the fine-tuned model is served; the bundled base runs after it as the reference
            files = {f"merged_{gguf_type()}": merged_gguf(adapter), **files}
        if adapter is None and not quick:
            from diaguide.inference.base_model import load_base_model
            from diaguide.inference.gguf_export import export_gguf

            base, _ = load_base_model()
            files["exported_q8_0"] = export_gguf(base, Path(tempfile.mkdtemp()) / "smollm2-q8_0.gguf")
            del base
        for name, path in files.items():
            t0 = time.perf_counter()
            # the base model as the reference beside a fine-tune: plain prompts, as it was never trained on others
            is_reference = adapter is not None and not name.startswith("merged")
            eng = LlamaCppGenerator(
                path,
                tokenizer=tok,
                model_name=result["model"]["base"],
                prompt_style=PromptStyle() if is_reference else style,
            )
            load_s = time.perf_counter() - t0
            run_prompts = [render_prompt(v) for v in visits[:n]] if is_reference else prompts
            entry = {
                "file": Path(path).name,
                "load_s": round(load_s, 3),
                "decoding": eng.decoding,
                "single_stream": throughput(eng, run_prompts, budget),
            }
            if serving is None:
                entry["latency"] = latency(eng, visits[: (1 if quick else 3)], budget if quick else MAX_NEW_TOKENS)
                serving = entry
            result["engines"][f"llama.cpp/{name}"] = entry
    else:
        result["engines"]["llama.cpp"] = {
            "skipped": "llama-cpp-python is not installed (pip install 'diaguide[llamacpp]')"
        }

    tf = result["engines"]["transformers"]
    goals = {"batched_speedup": {"value": tf["batched_speedup"], "goal": f">= {GOALS['batched_speedup']}"}}
    if serving is not None:
        single = serving["single_stream"]
        reference = result["engines"].get("llama.cpp/bundled_q4_1")
        base = reference["single_stream"] if reference is not None and reference is not serving else None
        # The goal is in the unit: it measured the base Q4_1 at ~111 tokens/s "generated" on 2 cores,
        # which is a decoding rate (the same file, measured here in the same run, decodes at about that rate
        # but reaches only about half of it once a ~600-token prompt's reading is counted in). Both are written.
        goals["serving_tokens_per_s"] = {
            "value": single.get("decode_tokens_per_s", single["tokens_per_s"]),
            "goal": f">= {GOALS['serving_tokens_per_s']}",
            "counts": "new tokens per second of decoding, after the prompt is read",
            "with_prompt_reading": single["tokens_per_s"],
            "base_q4_1_same_run": None
            if base is None
            else {"decode": base.get("decode_tokens_per_s"), "with_prompt_reading": base["tokens_per_s"]},
        }
        if base is not None and base.get("decode_tokens_per_s") and single.get("decode_tokens_per_s"):
            # how fast this machine is, taken out: the served fine-tune's decoding against the bundled base file's
            goals["serving_tokens_per_s"]["decode_vs_base_q4_1"] = round(
                single["decode_tokens_per_s"] / base["decode_tokens_per_s"], 3
            )
        goals["single_visit_p50_s"] = {"value": serving["latency"]["p50_s"], "goal": f"< {GOALS['single_visit_p50_s']}"}
    for key, g in goals.items():
        g["met"] = g["value"] < GOALS[key] if key == "single_visit_p50_s" else g["value"] >= GOALS[key]
    result["goals"] = goals
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {path}: "
        + ", ".join(f"{k} {g['value']} ({'met' if g['met'] else 'not met'})" for k, g in goals.items())
    )
    return 0
