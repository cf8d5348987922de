"""`diaguide doctor`: one command that says whether this install can do its job, and why not.

Each line is one check, `ok`, `warn` (works, with a limit worth knowing) or `FAIL` (the job cannot run), with a
one-line reason. The engine check starts the serving engine in a child process (`inference/probe.py`), so a native
crash (llama.cpp's AMX defect, docs/llamacpp.md) is reported, not suffered. Exit status 0 without a FAIL, else 1.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

Status = Literal["ok", "warn", "FAIL"]


@dataclasses.dataclass
class Check:
    name: str
    status: Status
    detail: str


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except Exception:  # missing or broken: the check says so
        return None


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", "ok" if ok else "FAIL", sys.version.split()[0] + ("" if ok else " (3.10 or newer needed)"))


def check_torch() -> Check:
    version = _version("torch")
    if version is None:
        return Check("torch", "FAIL", "not installed: `make install`")
    import torch

    device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU only"
    return Check(
        "torch", "ok", f"{version}, {device}; transformers {_version('transformers')}, peft {_version('peft')}"
    )


def check_cpu() -> Check:
    from diaguide.machine import cpu

    info = cpu()
    flags = " ".join(info["flags"]) or "none read"
    detail = f"{info['model']} ({info['machine']}): {flags}"
    if info["machine"] in ("x86_64", "AMD64") and "avx2" not in info["flags"]:
        return Check("cpu", "warn", detail + "; no AVX2: the x86-64-v3 llama.cpp build of `make install` cannot run")
    return Check("cpu", "ok", detail)


def check_llama() -> Check:
    from diaguide.inference.native import llama_build
    from diaguide.machine import cpu

    build = llama_build()
    if build is None:
        return Check(
            "llama.cpp", "warn", "llama-cpp-python not installed: the model is served by transformers (~8x slower)"
        )
    detail = f"llama-cpp-python {build['version']}, built with {' '.join(build['features']) or 'no listed features'}"
    if build["amx"]:
        note = "AMX kernels in this build: models load with extra buffer types off (they crash with AMX)"
        return Check("llama.cpp", "warn" if cpu()["amx"] else "ok", f"{detail}; {note}")
    return Check("llama.cpp", "ok", detail + "; no AMX kernels")


def check_database() -> Check:
    from sqlalchemy import create_engine, text

    from diaguide.service.settings import load_settings

    url = load_settings().database_url
    postgres = url.startswith("postgresql")
    probe_url = (
        url
        if postgres
        else os.environ.get("DIAGUIDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    where = probe_url.split("@")[-1].split("://")[-1]  # host:port/db, never a password
    try:
        engine = create_engine(probe_url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        reason = f"PostgreSQL at {where} not reachable ({exc.__class__.__name__})"
        if postgres:
            return Check("database", "FAIL", reason + ": DIAGUIDE_DATABASE_URL points there")
        return Check("database", "warn", f"store: SQLite ({url}); {reason}: its tests need it")
    return Check(
        "database",
        "ok",
        f"store: {'PostgreSQL' if postgres else 'SQLite (' + url + ')'}; PostgreSQL at {where} reachable",
    )


def check_chromium() -> Check:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        return Check("chromium", "warn", "not found: only the browser tests need it (`make browser`)")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("chromium", "warn", f"{path} does not start ({exc.__class__.__name__})")
    return Check("chromium", "ok", f"{out or path}")


def check_base_model() -> Check:
    from diaguide.errors import ModelError
    from diaguide.inference.base_model import DEFAULT_MODEL, bundled_gguf
    from diaguide.prompts.dataset import sha256_of

    try:
        path = bundled_gguf()
    except ModelError as exc:
        return Check("base model", "FAIL", exc.line())
    return Check("base model", "ok", f"{DEFAULT_MODEL}: {path.name} sha256 {sha256_of(path)[:16]}")


def check_adapters() -> list[Check]:
    from diaguide.errors import ModelError
    from diaguide.inference.base import adapter_info, adapter_version
    from diaguide.inference.registry import DEFAULT_ADAPTER_NAME, default_adapter, models_dir

    folder = models_dir()
    found = sorted(p for p in folder.glob("*") if (p / "adapter_config.json").is_file()) if folder.is_dir() else []
    checks = []
    for adapter in found:
        try:  # the hash every engine records with its results, read the way the engines read the folder
            peft_type, version = adapter_info(adapter).get("peft_type"), adapter_version(adapter)
        except ModelError as exc:
            checks.append(Check(f"adapter {adapter.name}", "FAIL", exc.message))
            continue
        checks.append(Check(f"adapter {adapter.name}", "ok", f"{peft_type}, weights sha256 {version}"))
    if default_adapter() is None:
        checks.append(
            Check("adapter", "warn", f"no {DEFAULT_ADAPTER_NAME} under {folder}: the base model answers, unfine-tuned")
        )
    return checks


def check_engine(probe: bool) -> Check:
    from diaguide.errors import DiaGuideError
    from diaguide.inference.registry import default_adapter, generator_kind

    adapter = default_adapter()
    try:
        kind = generator_kind(None, adapter)
    except DiaGuideError as exc:
        return Check("engine", "FAIL", exc.line())
    serving = f"{kind} with {'adapter ' + adapter.name if adapter else 'the base model'}"
    if not probe:
        return Check("engine", "ok", f"{serving} (not started: --no-probe)")
    from diaguide.inference.probe import probe_engine

    result = probe_engine()
    if not result.ok:
        return Check("engine", "FAIL", f"{serving}: {result.reason}; the guideline and safety cards still work")
    return Check("engine", "ok", f"{result.reason} ({result.seconds} s in a child process)")


def run_checks(probe: bool = True) -> list[Check]:
    checks = [check_python(), check_torch(), check_cpu(), check_llama(), check_database(), check_chromium()]
    checks += [check_base_model(), *check_adapters(), check_engine(probe)]
    return checks


def doctor_command(probe: bool = True, as_json: bool = False) -> int:
    """Print one line per check (or JSON); exit 1 if any check failed."""
    checks = run_checks(probe)
    if as_json:
        print(json.dumps([dataclasses.asdict(c) for c in checks], ensure_ascii=False, indent=1))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
    return 1 if any(c.status == "FAIL" for c in checks) else 0
