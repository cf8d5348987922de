"""The llama.cpp engine (llama-cpp-python): CPU serving at llama.cpp speed (~110 tokens/s for SmolLM2-135M on
2 cores against ~14 for transformers fp32).

It runs a GGUF file: the bundled base model, or a fine-tune whose LoRA was merged and written by
`gguf_export.export_gguf`. The prompt is formatted and tokenised by the Hugging Face tokenizer with the training
code's own `render`, and the token ids (not text) go to llama.cpp, so it sees the exact tokens training used.
llama.cpp keeps the KV cache of the previous prompt and reuses its longest common prefix, so the shared head of
our prompts (system turn, header) is evaluated once. A reply that writes a line a second time is stopped
there (`loops.py`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import Any

from diaguide.errors import ModelError
from diaguide.inference.base import MAX_NEW_TOKENS, Generation
from diaguide.inference.loops import LineLoops
from diaguide.inference.native import extra_buffers_safe, load_llama
from diaguide.prompts.chat import chat_text
from diaguide.prompts.guidance import PromptStyle

log = logging.getLogger(__name__)


def _require_llama() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise ModelError(
            "the llama.cpp engine needs llama-cpp-python: pip install 'diaguide[llamacpp]'", field="engine"
        )


def _tokenizer_for(gguf: Path, tokenizer: Any):
    """The HF tokenizer of a GGUF: given, saved beside it (an export folder), or read from the GGUF itself."""
    if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    from transformers import AutoTokenizer

    folder = Path(tokenizer) if tokenizer is not None else gguf.parent
    if (folder / "tokenizer_config.json").is_file():
        tok = AutoTokenizer.from_pretrained(folder)
    else:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


class LlamaCppGenerator:
    """Greedy single-stream generation with llama.cpp.

    Args:
        gguf_path: the GGUF model file.
        tokenizer: a loaded HF tokenizer, a folder holding one, or None (beside the GGUF, else from the GGUF).
        n_ctx: context window in tokens (prompt + reply).
        n_threads: CPU threads; None uses $DIAGUIDE_LLAMA_THREADS, else every core (on a machine
            shared with other jobs fewer threads than cores is often faster).
        model_name, adapter_version: recorded with every result.
        prompt_style: the merged adapter's `PromptStyle` (its folder's prompt.json); default style when None.
        extra_bufts: llama.cpp's extra buffer types (repacked weights); None: on unless the build has AMX
            kernels, which crash with them (`native.py`).
        **llama_kwargs: passed to `llama_cpp.Llama` (e.g. type_k/type_v for the KV cache's precision);
            flash attention is on unless `flash_attn=False` is given.
    """

    kind = "llama.cpp"

    def __init__(
        self,
        gguf_path: str | os.PathLike,
        tokenizer: Any = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        model_name: str | None = None,
        adapter_version: str | None = None,
        prompt_style: PromptStyle | None = None,
        extra_bufts: bool | None = None,
        **llama_kwargs: Any,
    ):
        t0 = time.perf_counter()
        path = Path(gguf_path)
        if not path.is_file():
            raise ModelError("no such GGUF file", source=str(path))
        _require_llama()
        self.extra_bufts = extra_buffers_safe() if extra_bufts is None else extra_bufts
        threads = n_threads or _env_threads() or os.cpu_count()
        # flash attention: ~20% faster prompt reading and ~9% faster decoding on 2 CPU cores (SmolLM2-135M)
        llama_kwargs.setdefault("flash_attn", True)
        try:
            self.llm = load_llama(
                path,
                extra_bufts=self.extra_bufts,
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,  # prompt reading; llama-cpp-python would take every core
                n_batch=512,
                verbose=False,
                **llama_kwargs,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load it: {exc}", source=str(path)) from None
        self.tokenizer = _tokenizer_for(path, tokenizer)
        self.n_ctx = n_ctx
        self.model_name = model_name or path.stem
        self.adapter_version = adapter_version
        self.prompt_style = prompt_style or PromptStyle()  # how the merged adapter's training prompts read
        self.eos = {self.llm.token_eos()}
        if self.tokenizer.eos_token_id is not None:
            self.eos.add(self.tokenizer.eos_token_id)
        self.loops = LineLoops(self.tokenizer)
        # how replies are decoded, recorded with evaluation answers (a change there makes them stale)
        self.decoding = {
            "gguf": path.name,  # the weights' file: names the adapter version and quantisation
            "greedy": True,
            "flash_attn": bool(llama_kwargs["flash_attn"]),
            "stop_repeated_line": True,
        }
        self.load_s = time.perf_counter() - t0

    def token_ids(self, prompt: str) -> list[int]:
        text, special = chat_text(self.tokenizer, prompt)
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def generate_ids(self, ids: list[int], max_new_tokens: int) -> tuple[list[int], bool, float | None, int | None]:
        """Greedy continuation of token ids: (new ids without the end token, stopped at an end token,
        seconds to the first token with the prompt reading (None when nothing was generated), where the line
        that repeated an earlier one begins when that stopped it (`loops.py`), else None)."""
        room = self.n_ctx - len(ids)
        if room <= 0:
            raise ModelError(f"the prompt ({len(ids)} tokens) does not fit the context of {self.n_ctx}")
        out: list[int] = []
        t0 = time.perf_counter()
        first: float | None = None
        # top_k=1 makes the sampler an argmax whatever the other settings; generate() itself keeps the KV cache
        # of the longest prefix this prompt shares with the previous one
        for token in self.llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            if first is None:
                first = time.perf_counter() - t0
            if token in self.eos:
                return out, True, first, None
            out.append(token)
            cut = self.loops.check(out)
            if cut is not None:
                return out, False, first, cut
            if len(out) >= min(max_new_tokens, room):
                break
        return out, False, first, None

    def generate(self, prompts: list[str], max_new_tokens: int = MAX_NEW_TOKENS) -> list[Generation]:
        """Greedy replies to user-turn prompts, one after another (llama.cpp here is single-stream)."""
        results = []
        for prompt in prompts:
            ids = self.token_ids(prompt)
            new, finished, first, cut = self.generate_ids(ids, max_new_tokens)
            text = self.tokenizer.decode(new[:cut], skip_special_tokens=True)
            results.append(
                Generation(
                    text=text,
                    prompt_tokens=len(ids),
                    new_tokens=len(new) + finished,  # generated, the cut-off repeat included
                    finished=finished,
                    first_token_s=first,
                    looped=cut is not None,
                )
            )
        return results


def _env_threads() -> int | None:
    raw = os.environ.get("DIAGUIDE_LLAMA_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ModelError(
            f"DIAGUIDE_LLAMA_THREADS must be a positive whole number, got {raw!r}", field="DIAGUIDE_LLAMA_THREADS"
        )
    return int(raw)
