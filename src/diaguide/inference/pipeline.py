"""Visit -> model text -> Plan with its safety findings: the one path every generator is used through.

A generator (transformers, llama.cpp, vLLM; `base.py`) only turns prompts into text. Everything that makes the text
safe to show lives here, the same for all of them:

1. the prompt is `render_prompt(visit)` inside the tokenizer's chat template (`prompts/chat.py`, the rendering
   training uses, so inference sees exactly the text the model was trained on), with the guideline engine's line
   where the adapter was trained with it (`prompts/guidance.py`, the generator's `prompt_style`);
2. the text is parsed (`parse_plan`); output without a MED or GOAL line is retried once with the strict prompt,
   and so is output cut off before `END` or with a line that could not be read (`ParseResult.whole`);
3. the plan is read against the visit and the safety checker runs on it, once (`check_answer`): the Plan that
   leaves here carries its findings, and nothing after this checks it again (docs/design.md, "The flow");
4. the result says what it is: `ok`, `partial` (cut off before END, or a line unread: usable lines only, never
   passed off as whole) or `no_suggestion`.

The patient's facts are read once per visit for all of it (`conditions.facts_once`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from diaguide.errors import ModelError
from diaguide.inference.base import MAX_NEW_TOKENS, Generation, Generator
from diaguide.inference.registry import generator_for
from diaguide.knowledge.conditions import facts_once
from diaguide.prompts import parse_plan, render_prompt
from diaguide.prompts.guidance import PromptStyle, guideline_plan, notes_facts
from diaguide.prompts.parse import without_echo
from diaguide.prompts.target import against_visit
from diaguide.records.schema import Plan, Visit
from diaguide.safety import checker

log = logging.getLogger(__name__)

PARTIAL_NOTE = {
    "en": "Model output was cut off or had lines that could not be read: this suggestion may be incomplete.",
    "zh": "模型输出被截断或有无法识别的行：此建议可能不完整。",
}


class ModelResult(BaseModel):
    """One model recommendation: the checked plan (None for no_suggestion), and how it was made."""

    status: Literal["ok", "partial", "no_suggestion"]
    plan: Plan | None = None  # findings attached by the safety checker
    proposed: Plan | None = None  # the same plan before the safety pass (what the evaluation's safety figures read)
    raw_text: str = ""  # the model's text of the attempt used (the last one when none was usable)
    attempts: int = 1
    errors: list[str] = Field(default_factory=list)  # parser notes of the attempt used
    engine: str = ""  # the generator's backend (transformers, llama.cpp, vllm)
    model: str = ""
    adapter_version: str | None = None
    new_tokens: int = 0  # over all attempts
    timings: dict[str, float] = Field(default_factory=dict)  # seconds: generate, parse, safety, total


def usable(plan: Plan | None) -> bool:
    """A plan worth showing names a medication or a goal; treatment prose alone is not a suggestion."""
    return plan is not None and (bool(plan.medications) or plan.hba1c_goal is not None)


def check_answer(visit: Visit, parsed: Plan, region: str = "ada") -> tuple[Plan, Plan]:
    """(proposed, checked): a parsed answer read against the visit (continued drugs' doses, one order per drug:
    `target.against_visit`), and that plan after the safety pass, findings attached. The one safety pass of a model
    answer, here and in the evaluation."""
    proposed = against_visit(parsed, visit, region)
    return proposed, checker.apply_safety(visit, proposed, region=region)


def recommend_many(
    visits: list[Visit],
    generator: Generator,
    region: str = "ada",
    include_history: bool = True,
    max_new_tokens: int = MAX_NEW_TOKENS,
    retry_partial: bool = True,
) -> list[ModelResult]:
    """Recommendations for several visits; the generator writes them together (batched where it can)."""
    with facts_once():
        return _recommend_many(visits, generator, region, include_history, max_new_tokens, retry_partial)


def _recommend_many(
    visits: list[Visit],
    generator: Generator,
    region: str,
    include_history: bool,
    max_new_tokens: int,
    retry_partial: bool,
) -> list[ModelResult]:
    start = time.perf_counter()
    n = len(visits)
    texts: list[list[Generation]] = [[] for _ in range(n)]
    parsed: list[list[Any]] = [[] for _ in range(n)]
    gen_s = [0.0] * n
    parse_s = [0.0] * n

    style = getattr(generator, "prompt_style", None) or PromptStyle()  # test doubles may not set one
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
        gens = generator.generate(prompts, max_new_tokens=max_new_tokens)
        share = (time.perf_counter() - t0) / max(len(indices), 1)  # a batch's time, shared out evenly
        for i, g, prompt in zip(indices, gens, prompts, strict=True):
            gen_s[i] += share
            t1 = time.perf_counter()
            # raw text (the parser needs the trailing newline/END state), less what the model copied from its prompt
            parsed[i].append(parse_plan(without_echo(g.text, prompt)))
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
        proposed, plan, safety_s = None, None, 0.0
        if status != "no_suggestion":
            t2 = time.perf_counter()
            proposed, plan = check_answer(visit, res.plan, region)
            safety_s = time.perf_counter() - t2
        results.append(
            ModelResult(
                status=status,
                plan=plan,
                proposed=proposed,
                raw_text=texts[i][k].text,
                attempts=len(parsed[i]),
                errors=list(res.errors),
                engine=generator.kind,
                model=generator.model_name,
                adapter_version=generator.adapter_version,
                new_tokens=sum(g.new_tokens for g in texts[i]),
                timings={"generate": gen_s[i], "parse": parse_s[i], "safety": safety_s},
            )
        )
    total = time.perf_counter() - start
    for r in results:
        r.timings["total"] = total / max(n, 1) if n > 1 else total
    return results


def recommend(visit: Visit, generator: Generator, region: str = "ada", **kwargs: Any) -> ModelResult:
    """One visit's ModelResult (see `recommend_many`)."""
    return recommend_many([visit], generator, region=region, **kwargs)[0]


def recommend_with_model(
    visit: Visit, adapter: str | None = None, region: str | None = None, generator: Generator | str | None = None
) -> Plan:
    """The model's Plan for a visit (`diaguide recommend --engine model`), safety findings attached.

    Args:
        visit: the visit.
        adapter: a PEFT adapter folder; None uses the default adapter (see `registry.default_adapter`), or the
            base model when there is none.
        region: guideline region for the safety check ("ada" when None).
        generator: a Generator, or a backend "transformers"/"llama.cpp"/"vllm"; None picks llama.cpp where
            installed.

    Raises:
        ModelError: the model gave no usable suggestion after the strict retry, or cannot be loaded.
    """
    gen = generator if isinstance(generator, Generator) else generator_for(kind=generator, adapter=adapter)
    result = recommend(visit, gen, region=region or "ada")
    if result.status == "no_suggestion":
        raise ModelError(
            f"no usable suggestion: the model's output could not be read as a plan after {result.attempts} "
            "attempts (use --engine rules)",
            source=gen.model_name,
        )
    plan = result.plan
    assert plan is not None
    if result.status == "partial":
        note = PARTIAL_NOTE.get(visit.language, PARTIAL_NOTE["en"])
        plan = plan.model_copy(update={"prompts": [note, *plan.prompts]})
    log.info(
        "model recommendation: status=%s backend=%s adapter=%s tokens=%d %.2fs",
        result.status,
        result.engine,
        result.adapter_version,
        result.new_tokens,
        result.timings["total"],
    )
    return plan
