"""`diaguide bench llamacpp --out FILE.json [--build NAME=WHEEL ...]`: what the AMX fix costs (docs/llamacpp.md).

The served fine-tune (the default LoRA adapter merged to GGUF, as serving runs it) decodes the same prompts
greedily under each configuration, in the same run:

* each llama.cpp build: the installed one, and any other given as a wheel file or an unpacked folder (for example
  a `-march=native` build beside the project's x86-64-v3 build);
* with llama.cpp's extra buffer types (weight repacking) on and off (`use_extra_bufts`, the load-time fix for a
  build with AMX kernels).

Every configuration runs in its own child process (a build with AMX kernels may crash on this CPU: the crash is
recorded, the bench goes on), in rounds that alternate the configurations so drift on a shared machine hits them
alike. The figure is decoding tokens/s after the prompt is read, the serving engine's unit (`bench/generate.py`);
each configuration is also given as a ratio to the installed build with extra buffers on, the baseline.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from diaguide.errors import InputError
from diaguide.inference.probe import signal_name
from diaguide.machine import machine_info

ROUNDS = 3
NEW_TOKENS = 128


def _prompt_ids(n: int) -> tuple[Path, list[list[int]], str]:
    """The served GGUF and the token ids of `n` rendered visits, as serving would send them."""
    from diaguide.bench.generate import _visits
    from diaguide.inference.base_model import bundled_gguf, load_tokenizer
    from diaguide.inference.registry import default_adapter, merged_gguf
    from diaguide.prompts import render_prompt
    from diaguide.prompts.chat import chat_text
    from diaguide.prompts.guidance import PromptStyle, guideline_plan

    adapter = default_adapter()
    tok = load_tokenizer()
    style = PromptStyle.of(adapter)
    gguf = merged_gguf(adapter) if adapter is not None else bundled_gguf()
    ids = []
    for visit in _visits(n):
        prompt = render_prompt(visit, guidance=guideline_plan(visit, "ada") if style.guidance else None)
        text, special = chat_text(tok, prompt)
        ids.append(tok(text, add_special_tokens=special)["input_ids"])
    return gguf, ids, "adapter " + adapter.name if adapter is not None else "base model"


def _unpack(build: str, into: Path) -> Path:
    """A folder to put first on PYTHONPATH so `import llama_cpp` finds this build."""
    path = Path(build)
    if path.is_dir():
        return path
    if path.is_file() and path.suffix == ".whl":
        target = into / path.stem
        with zipfile.ZipFile(path) as whl:
            whl.extractall(target)
        return target
    raise InputError("not a wheel file or a folder holding llama_cpp", source=build, field="--build")


def _child_run(gguf: str, prompts_file: str, extra_bufts: bool, threads: int) -> dict[str, Any]:
    from diaguide.inference.native import llama_build, load_llama

    prompts = json.loads(Path(prompts_file).read_text())
    llm = load_llama(gguf, extra_bufts=extra_bufts, n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                     n_batch=512, flash_attn=True, verbose=False)  # fmt: skip
    decoded, decode_s, reading_s = 0, 0.0, 0.0
    for ids in prompts:
        llm.reset()  # every prompt read whole: no KV cache carried over from the previous one
        count, first = 0, None
        start = time.perf_counter()
        # a fixed budget, end-of-turn ignored, so every configuration decodes the same number of tokens
        for _ in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            count += 1
            if first is None:
                first = time.perf_counter()
            if count >= NEW_TOKENS:
                break
        decoded += count - 1  # the first token comes with the prompt reading
        decode_s += time.perf_counter() - first
        reading_s += first - start
    build = llama_build() or {}
    return {
        "decode_tokens_per_s": round(decoded / decode_s, 2),
        "prompt_reading_s_mean": round(reading_s / len(prompts), 3),
        "new_tokens": decoded + len(prompts),
        "llama_cpp": build.get("version"),
        "features": build.get("features"),
        "extra_bufts_loaded": bool(llm.model_params.use_extra_bufts),
    }


def _run_config(python_path: Path | None, gguf: Path, prompts_file: Path, extra_bufts: bool, threads: int) -> dict:
    env = {**os.environ}
    if python_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(python_path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "diaguide.bench.llamacpp", "--child", str(gguf), str(prompts_file)]
    cmd += ["1" if extra_bufts else "0", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode < 0:
        return {"crashed": signal_name(-done.returncode)}
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"failed": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1])


def bench_llamacpp(out: str, quick: bool = False, build: list[str] | None = None) -> int:
    """Decode tokens/s of the served fine-tune per llama.cpp build, with extra buffer types on and off."""
    from diaguide.inference.native import llama_build
    from diaguide.machine import cpu

    if llama_build() is None:
        raise InputError("llama-cpp-python is not installed (pip install 'diaguide[llamacpp]')", field="bench")
    tmp = Path(tempfile.mkdtemp(prefix="bench-llamacpp-"))
    builds: dict[str, Path | None] = {"installed": None}
    for spec in build or []:
        name, _, where = spec.partition("=")
        if not where:
            raise InputError("expected NAME=WHEEL_OR_FOLDER", source=spec, field="--build")
        builds[name] = _unpack(where, tmp)
    gguf, ids, which = _prompt_ids(2 if quick else 4)
    prompts_file = tmp / "prompts.json"
    prompts_file.write_text(json.dumps(ids))
    threads = int(os.environ.get("DIAGUIDE_LLAMA_THREADS") or os.cpu_count() or 1)
    configs = [(name, extra) for name in builds for extra in (True, False)]
    runs: dict[str, list[dict]] = {f"{name}/extra_bufts_{'on' if extra else 'off'}": [] for name, extra in configs}
    for _ in range(1 if quick else ROUNDS):
        for name, extra in configs:
            key = f"{name}/extra_bufts_{'on' if extra else 'off'}"
            runs[key].append(_run_config(builds[name], gguf, prompts_file, extra, threads))
    results: dict[str, Any] = {}
    for key, rounds in runs.items():
        rates = [r["decode_tokens_per_s"] for r in rounds if "decode_tokens_per_s" in r]
        entry: dict[str, Any] = {"rounds": rounds}
        if rates:
            entry["decode_tokens_per_s_median"] = round(statistics.median(rates), 2)
            entry["llama_cpp_features"] = rounds[0].get("features")
        results[key] = entry
    baseline = results["installed/extra_bufts_on"].get("decode_tokens_per_s_median")
    for entry in results.values():
        if baseline and entry.get("decode_tokens_per_s_median"):
            entry["vs_installed_extra_bufts_on"] = round(entry["decode_tokens_per_s_median"] / baseline, 3)
    data = {
        "bench": "llamacpp",
        "machine": {**machine_info(), "cpu": cpu()},
        "model": {"gguf": gguf.name, "served": which},
        "threads": threads,
        "prompts": len(ids),
        "new_tokens_per_prompt": NEW_TOKENS,
        "rounds": 1 if quick else ROUNDS,
        "baseline": "installed/extra_bufts_on",
        "builds": {name: str(path) if path else (llama_build() or {}).get("library") for name, path in builds.items()},
        "results": results,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    summary = ", ".join(f"{k} {v.get('decode_tokens_per_s_median', 'crashed/failed')}" for k, v in results.items())
    print(f"wrote {path}: decode tokens/s {summary}")
    return 0


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--child":
    _, _, gguf_arg, prompts_arg, extra_arg, threads_arg = sys.argv
    print(json.dumps(_child_run(gguf_arg, prompts_arg, extra_arg == "1", int(threads_arg))), flush=True)
