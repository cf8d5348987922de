"""What a benchmark or a training run ran on: CPU, cores, memory, accelerator, library versions.

Every speed figure names its machine (docs/design.md); benchmarks, training runs and published model cards all
record this dictionary.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any

from diaguide.inference.native import cpu


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
