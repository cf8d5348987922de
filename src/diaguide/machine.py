"""What a benchmark or a training run ran on: CPU, cores, memory, accelerator, library versions.

Every speed figure names its machine (docs/design.md); benchmarks, training runs and published model cards all
record this dictionary.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from functools import lru_cache
from typing import Any

# the CPU flags (Linux /proc/cpuinfo names) that decide which llama.cpp kernels can run
FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512_vnni", "avx512_bf16")
AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")


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


@lru_cache(maxsize=1)
def cpu() -> dict[str, Any]:
    """This machine's CPU: model name, vendor, and which of `FLAGS` + `AMX_FLAGS` it has."""
    model, vendor, flags = platform.processor() or "unknown", "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "vendor_id":
                    vendor = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                    break  # every core lists the same flags
    except OSError:
        pass
    return {
        "model": model,
        "vendor": vendor,
        "machine": platform.machine(),
        "flags": [f for f in (*FLAGS, *AMX_FLAGS) if f in flags],
        "amx": any(f in flags for f in AMX_FLAGS),
    }


def cpu_line() -> str:
    """One line naming the CPU and its relevant flags, for crash reports and logs."""
    info = cpu()
    return f"{info['model']} [{' '.join(info['flags']) or 'no SIMD flags read'}]"
