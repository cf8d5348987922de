"""Visit -> model text -> Plan with its safety findings: the one path every generation engine is used through.

An engine (transformers, llama.cpp, vLLM) only turns prompts into text. Everything that makes the text safe to
show lives here, the same for all of them:

1. the prompt is `render_prompt(visit)` inside the tokenizer's chat template, formatted by the training code's
   own `render` (inference sees exactly the text the model was trained on), with the guideline engine's line
   where the adapter was trained with it (`prompts/guidance.py`, the engine's `prompt_style`);
2. the text is parsed (`parse_plan`); output without a MED or GOAL line is retried once with the strict prompt,
   and so is output cut off before `END` or with a line that could not be read (`ParseResult.whole`);
3. the safety checker ALWAYS runs on the parsed plan: the Plan that leaves here carries its findings;
4. the result says what it is: `ok`, `partial` (cut off before END, or a line unread: usable lines only, never
   passed off as whole) or `no_suggestion`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from diaguide.errors import ModelError
from diaguide.prompts import parse_plan, render_prompt
from diaguide.prompts.guidance import PromptStyle, guideline_plan, notes_facts
from diaguide.prompts.target import against_visit
from diaguide.records.schema import Plan, Visit

log = logging.getLogger(__name__)

# Physician plans in our cohort are <=360 tokens in English and <=600 in Chinese (SmolLM2 tokenizer)
MAX_NEW_TOKENS = 640
PARTIAL_NOTE = {
    "en": "Model output was cut off or had lines that could not be read: this suggestion may be incomplete.",
    "zh": "模型输出被截断或有无法识别的行：此建议可能不完整。",
}


@dataclass
class Generation:
    text: str  # the new text only, special tokens removed, not stripped
    prompt_tokens: int
    new_tokens: int
    finished: bool  # stopped at end-of-turn rather than at the token limit
    first_token_s: float | None = None  # prompt reading + first token, where the engine streams (llama.cpp)
    looped: bool = False  # stopped because a line repeated an earlier one (`loops.py`); the repeat is cut off


@runtime_checkable
class Engine(Protocol):
    """Turns user-turn prompts into assistant replies, greedily. Implementations: hf_engine, llamacpp_engine,
    vllm_engine."""

    kind: str  # "transformers" | "llama.cpp" | "vllm"
    model_name: str
    adapter_version: str | None
    # optional `prompt_style: PromptStyle`: how the adapter's training prompts were rendered (default style without)

    def generate(self, prompts: list[str], max_new_tokens: int = MAX_NEW_TOKENS) -> list[Generation]: ...


def chat_text(tokenizer, prompt: str) -> tuple[str, bool]:
    """(text to tokenise, add_special_tokens) for a prompt, formatted exactly as training formats it."""
    from diaguide.training.data import render

    use_template = bool(getattr(tokenizer, "chat_template", None))
    head, _ = render(tokenizer, prompt, "", use_template)
    # the chat template writes its own special tokens; plain text gets the tokenizer's (e.g. BOS)
    return head, not use_template


def adapter_version(adapter: str | os.PathLike | None) -> str | None:
    """A short sha256 of the adapter weights, so every result names the exact adapter that produced it."""
    if adapter is None:
        return None
    folder = Path(adapter)
    weights = sorted(folder.glob("adapter_model.*"))
    if not weights:
        raise ModelError("no adapter weights (adapter_model.safetensors) in the adapter folder", source=str(folder))
    digest = hashlib.sha256()
    with weights[0].open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def adapter_info(adapter: str | os.PathLike) -> dict[str, Any]:
    """adapter_config.json of a PEFT adapter folder (base model name, peft_type ...)."""
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise ModelError("not a PEFT adapter folder (no adapter_config.json)", source=str(adapter))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"adapter_config.json is not JSON ({exc.msg})", source=str(adapter)) from None


class ModelResult(BaseModel):
    """One model recommendation: the checked plan (None for no_suggestion), and how it was made."""

    status: Literal["ok", "partial", "no_suggestion"]
    plan: Plan | None = None  # findings attached by the safety checker
    raw_text: str = ""  # the model's text of the attempt used (the last one when none was usable)
    attempts: int = 1
    errors: list[str] = Field(default_factory=list)  # parser notes of the attempt used
    engine: str = ""
    model: str = ""
    adapter_version: str | None = None
    new_tokens: int = 0  # over all attempts
    timings: dict[str, float] = Field(default_factory=dict)  # seconds: generate, parse, safety, total


def usable(plan: Plan | None) -> bool:
    """A plan worth showing names a medication or a goal; treatment prose alone is not a suggestion."""
    return plan is not None and (bool(plan.medications) or plan.hba1c_goal is not None)


def recommend_many(
    visits: list[Visit],
    engine: Engine,
    region: str = "ada",
    include_history: bool = True,
    max_new_tokens: int = MAX_NEW_TOKENS,
    retry_partial: bool = True,
) -> list[ModelResult]:
    """Recommendations for several visits; the engine generates them together (batched where it can)."""
    from diaguide.safety.checker import apply_safety

    start = time.perf_counter()
    n = len(visits)
    texts: list[list[Generation]] = [[] for _ in range(n)]
    parsed: list[list[Any]] = [[] for _ in range(n)]
    gen_s = [0.0] * n
    parse_s = [0.0] * n

    style = getattr(engine, "prompt_style", None) or PromptStyle()  # test doubles may not set one
    guidance = [guideline_plan(v, region) if style.guidance else None for v in visits]
    notes = [notes_facts(v, region) if style.notes_facts else None for v in visits]

    def run(indices: list[int], strict: bool) -> None:
        prompts = [
            render_prompt(
                visits[i], include_history=include_history, strict=strict, guidance=guidance[i], notes=notes[i]
            )
            for i in indices
        ]
        t0 = time.perf_counter()
        gens = engine.generate(prompts, max_new_tokens=max_new_tokens)
        share = (time.perf_counter() - t0) / max(len(indices), 1)  # a batch's time, shared out evenly
        for i, g in zip(indices, gens, strict=True):
            gen_s[i] += share
            t1 = time.perf_counter()
            parsed[i].append(parse_plan(g.text))  # raw text: the parser needs the trailing newline/END state
            parse_s[i] += time.perf_counter() - t1
            texts[i].append(g)

    run(list(range(n)), strict=False)
    again = [i for i in range(n) if not usable(parsed[i][0].plan) or (retry_partial and not parsed[i][0].whole)]
    if again:
        run(again, strict=True)

    results = []
    for i, visit in enumerate(visits):
        # prefer a whole usable answer, then a usable partial one (latest attempt first)
        order = list(range(len(parsed[i])))[::-1]
        whole = [k for k in order if usable(parsed[i][k].plan) and parsed[i][k].whole]
        part = [k for k in order if usable(parsed[i][k].plan)]
        k = (whole or part or [len(parsed[i]) - 1])[0]
        res = parsed[i][k]
        status = "ok" if whole else "partial" if part else "no_suggestion"
        plan, safety_s = None, 0.0
        if status != "no_suggestion":
            t2 = time.perf_counter()
            plan = apply_safety(visit, against_visit(res.plan, visit, region), region=region)
            safety_s = time.perf_counter() - t2
        results.append(
            ModelResult(
                status=status,
                plan=plan,
                raw_text=texts[i][k].text,
                attempts=len(parsed[i]),
                errors=list(res.errors),
                engine=engine.kind,
                model=engine.model_name,
                adapter_version=engine.adapter_version,
                new_tokens=sum(g.new_tokens for g in texts[i]),
                timings={"generate": gen_s[i], "parse": parse_s[i], "safety": safety_s},
            )
        )
    total = time.perf_counter() - start
    for r in results:
        r.timings["total"] = total / max(n, 1) if n > 1 else total
    return results


def recommend(visit: Visit, engine: Engine, region: str = "ada", **kwargs: Any) -> ModelResult:
    """One visit's ModelResult (see `recommend_many`)."""
    return recommend_many([visit], engine, region=region, **kwargs)[0]


def recommend_with_model(visit: Visit, adapter: str | None = None, region: str | None = None, engine=None) -> Plan:
    """The model's Plan for a visit (`diaguide recommend --engine model`), safety findings attached.

    Args:
        visit: the visit.
        adapter: a PEFT adapter folder; None uses the default adapter (see `registry.default_adapter`), or the
            base model when there is none.
        region: guideline region for the safety check ("ada" when None).
        engine: an Engine, or "transformers"/"llama.cpp"/"vllm"; None picks llama.cpp where installed.

    Raises:
        ModelError: the model gave no usable suggestion after the strict retry, or cannot be loaded.
    """
    from diaguide.inference.registry import get_engine

    eng = engine if isinstance(engine, Engine) else get_engine(kind=engine, adapter=adapter)
    result = recommend(visit, eng, region=region or "ada")
    if result.status == "no_suggestion":
        raise ModelError(
            f"no usable suggestion: the model's output could not be read as a plan after {result.attempts} "
            "attempts (use --engine rules)",
            source=eng.model_name,
        )
    plan = result.plan
    assert plan is not None
    if result.status == "partial":
        note = PARTIAL_NOTE.get(visit.language, PARTIAL_NOTE["en"])
        plan = plan.model_copy(update={"prompts": [note, *plan.prompts]})
    log.info(
        "model recommendation: status=%s engine=%s adapter=%s tokens=%d %.2fs",
        result.status,
        result.engine,
        result.adapter_version,
        result.new_tokens,
        result.timings["total"],
    )
    return plan
