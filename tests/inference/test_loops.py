"""A reply that writes a line a second time is stopped there, the repeat cut off, and never counted as finished:
the guard itself, the transformers engine's stopping criterion and its cut, and the llama.cpp engine's loop."""

from __future__ import annotations

import torch

from diaguide.inference.hf_generator import HFGenerator, _stop_loops
from diaguide.inference.loops import LineLoops

LOOPING = "GOAL: HbA1c <7.0%\nMED: continue | metformin\nMED: start | empagliflozin\nMED: continue | metformin\nMED:"
KEPT = "GOAL: HbA1c <7.0%\nMED: continue | metformin\nMED: start | empagliflozin\n"


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_repeated_line_found_where_it_begins(tok) -> None:
    loops = LineLoops(tok)
    tokens = ids(tok, LOOPING)
    cut = loops.first(tokens)
    assert cut is not None and tok.decode(tokens[:cut]) == KEPT
    # check() speaks only when the last token ends the repeated line
    end = len(ids(tok, LOOPING.rsplit("MED:", 1)[0]))
    assert loops.check(tokens[: end - 1]) is None
    assert loops.check(tokens[:end]) == cut


def test_no_repeat_no_cut(tok) -> None:
    loops = LineLoops(tok)
    whole = KEPT + "LAB: 4548-4 | HbA1c\n\nCAUTION: hypoglycaemia\n\nEND"  # empty lines are not lines that repeat
    assert loops.first(ids(tok, whole)) is None
    assert loops.first([]) is None
    # the same words inside a longer line are not a repeat
    assert loops.first(ids(tok, "MED: a\nMED: a | b\nMED: a |\n")) is None


def test_transformers_stopping_criterion_stops_only_the_looping_row(tok) -> None:
    width = 3
    looping = [0] * width + ids(tok, LOOPING.rsplit("MED:", 1)[0])
    distinct = "".join(f"LAB: {i} | test\n" for i in range(40))  # no line twice
    fine = [0] * width + ids(tok, distinct)[: len(looping) - width]
    crit = _stop_loops(LineLoops(tok), width, tok.eos_token_id)
    assert crit(torch.tensor([looping[:-1], fine[:-1]]), None).tolist() == [False, False]
    assert crit(torch.tensor([looping, fine]), None).tolist() == [True, False]
    more = [looping + [5], fine + [5]]
    assert crit(torch.tensor(more), None).tolist() == [True, False]  # a stopped row stays stopped


def test_transformers_engine_cuts_a_looping_row(lively, tok) -> None:
    engine = HFGenerator(model=lively, tokenizer=tok)
    eos = tok.eos_token_id
    looping = ids(tok, LOOPING.rsplit("MED:", 1)[0]) + [eos] * 4  # stopped, then padded with the end token
    whole = ids(tok, KEPT + "END") + [eos]
    gen_loop, gen_whole = engine._generations([looping, whole], [[1, 2], [1, 2, 3]], eos)
    assert gen_loop.text == KEPT and gen_loop.looped and not gen_loop.finished
    assert gen_loop.new_tokens == len(ids(tok, LOOPING.rsplit("MED:", 1)[0]))  # generated, padding not counted
    assert gen_whole.text == KEPT + "END" and gen_whole.finished and not gen_whole.looped


class _ScriptedLlama:
    """Stands in for llama_cpp.Llama: 'generates' a fixed reply whatever the prompt."""

    def __init__(self, reply: list[int], eos: int):
        self.reply, self.eos, self.fed = reply, eos, 0

    def token_eos(self) -> int:
        return self.eos

    def generate(self, ids, **kwargs):
        for token in self.reply:
            self.fed += 1
            yield token


def test_llamacpp_generator_stops_at_the_repeated_line(tok) -> None:
    from diaguide.inference.llamacpp_generator import LlamaCppGenerator
    from diaguide.prompts.guidance import PromptStyle

    reply = ids(tok, LOOPING + " continue | metformin\n" * 20)
    engine = LlamaCppGenerator.__new__(LlamaCppGenerator)  # no GGUF needed: the decoding loop is what is tested
    engine.llm = _ScriptedLlama(reply, tok.eos_token_id)
    engine.tokenizer, engine.n_ctx, engine.eos = tok, 4096, {tok.eos_token_id}
    engine.loops, engine.prompt_style = LineLoops(tok), PromptStyle()
    (g,) = engine.generate(["hba1c 9.1"], max_new_tokens=len(reply))
    assert g.text == KEPT and g.looped and not g.finished
    assert engine.llm.fed == g.new_tokens == len(ids(tok, LOOPING.rsplit("MED:", 1)[0]))  # stopped right there
