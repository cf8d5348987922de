"""What the native code runs on: the CPU's instruction sets and the llama.cpp build, and how a model is loaded so
that it runs on every x86-64 server the project can land on (docs/llamacpp.md).

llama.cpp built with AMX (a `-march=native` build on an Intel Sapphire Rapids or newer) repacks weights into its
AMX buffer type at load, and the first inference then crashes in `ggml_backend_amx_mul_mat` (ggml-org/llama.cpp
issue 20824, closed without a fix). `make install` builds llama.cpp for x86-64-v3 (AVX2, no AMX, not native), so
the project's own build has no AMX code; a build that does (a user's own) is loaded with the extra buffer types
off (`use_extra_bufts=False`, llama.cpp's `--no-repack`), which keeps weights out of the AMX buffer.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

_load_lock = threading.Lock()


@lru_cache(maxsize=1)
def llama_build() -> dict[str, Any] | None:
    """The installed llama.cpp build: version, the CPU features it was compiled with, whether it has AMX kernels.
    None when llama-cpp-python is not installed."""
    try:
        import llama_cpp
    except ImportError:
        return None
    raw = llama_cpp.llama_print_system_info()
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    # "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ... | AMX_INT8 = 1 | REPACK = 1 |"
    features = sorted(
        {part.split("=")[0].split(":")[-1].strip() for part in text.split("|") if part.strip().endswith("= 1")}
    )
    return {
        "version": getattr(llama_cpp, "__version__", "unknown"),
        "features": features,
        "amx": any(f.startswith("AMX") for f in features),
        "library": str(Path(llama_cpp.__file__).parent),
    }


def extra_buffers_safe() -> bool:
    """Whether llama.cpp's extra buffer types (weight repacking) may be used: not when the build has AMX kernels."""
    build = llama_build()
    return not (build and build["amx"])


def load_llama(model_path: str | Path, *, extra_bufts: bool | None = None, **kwargs: Any):
    """`llama_cpp.Llama(model_path, **kwargs)`, with the extra buffer types off where they are unsafe.

    Args:
        model_path: the GGUF file.
        extra_bufts: use llama.cpp's extra buffer types (repacked weights); None decides by `extra_buffers_safe()`.
        **kwargs: passed to `llama_cpp.Llama`.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as lib

    use = extra_buffers_safe() if extra_bufts is None else extra_bufts
    if use:
        return llama_cpp.Llama(model_path=str(model_path), **kwargs)
    # llama-cpp-python (0.3.36) has the field but no argument for it: Llama() starts from the library's default
    # model params, so those are swapped for ones with the field off while this one model loads
    with _load_lock:
        default = lib.llama_model_default_params

        def without_extra_bufts():
            params = default()
            params.use_extra_bufts = False
            return params

        lib.llama_model_default_params = without_extra_bufts
        try:
            return llama_cpp.Llama(model_path=str(model_path), **kwargs)
        finally:
            lib.llama_model_default_params = default
