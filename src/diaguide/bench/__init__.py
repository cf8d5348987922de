"""`diaguide bench ingest|train|generate|serve --out FILE.json`: each benchmark writes JSON with
the machine, library versions and a baseline measured in the same run."""

from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any

from diaguide.errors import InputError
from diaguide.inference.native import cpu

BENCHES: dict[str, str] = {
    "ingest": "diaguide.bench_ingest:bench_ingest",
    "train": "diaguide.training.bench_train:bench_train",
    "generate": "diaguide.inference.bench_generate:bench_generate",
    "serve": "diaguide.bench_serve:bench_serve",
    "llamacpp": "diaguide.inference.bench_llamacpp:bench_llamacpp",
}


def machine_info() -> dict[str, Any]:
    """What a benchmark ran on: CPU, cores, memory, accelerator, library versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "processor": cpu()["model"],
        "cpu_count": os.cpu_count(),
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    versions = {}
    for name in ("torch", "transformers", "peft", "accelerate", "fhir.resources", "fastapi", "llama_cpp"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception:  # not installed: leave it out
            continue
    info["versions"] = versions
    if "torch" in versions:
        import torch

        if torch.cuda.is_available():
            info["accelerator"] = torch.cuda.get_device_name(0)
    return info


def bench_command(what: str, out: str, quick: bool = False, build: list[str] | None = None) -> int:
    target = BENCHES[what]
    module, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        raise InputError(f"benchmark {what!r} is not available in this build ({exc.name} missing)") from exc
    if build:
        if what != "llamacpp":
            raise InputError("--build is for `bench llamacpp`", field="--build")
        return fn(out=out, quick=quick, build=build)
    return fn(out=out, quick=quick)
