"""`diaguide bench ingest|train|generate|serve --out FILE.json`: each benchmark writes JSON with
the machine, library versions and a baseline measured in the same run."""

from __future__ import annotations

import importlib

from diaguide.errors import InputError

# one module a benchmark, imported only when asked for (train and generate import torch)
BENCHES: dict[str, str] = {
    "ingest": "diaguide.bench.ingest:bench_ingest",
    "train": "diaguide.bench.train:bench_train",
    "generate": "diaguide.bench.generate:bench_generate",
    "serve": "diaguide.bench.serve:bench_serve",
    "llamacpp": "diaguide.bench.llamacpp:bench_llamacpp",
}


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
