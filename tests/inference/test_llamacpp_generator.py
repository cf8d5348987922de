"""The llama.cpp engine: a tiny random Llama exported by our writer gives transformers' greedy tokens, and the
bundled SmolLM2 GGUF serves whole recommendations (safety pass included) through the shared path."""

from __future__ import annotations

import pytest

from diaguide.inference.gguf_export import export_gguf
from diaguide.inference.hf_generator import HFGenerator
from diaguide.inference.pipeline import recommend
from diaguide.prompts.chat import chat_text

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make install`")

PROMPTS = ["hba1c 9.1, egfr 25", "age 80", "ldl 3.1 mmol/L; on metformin 1000 mg bid"]


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from diaguide.inference.base_model import load_tokenizer

    return load_tokenizer()


@pytest.mark.slow
@pytest.mark.native("llama.cpp")
def test_tiny_export_generates_what_transformers_generates(tmp_path, make_lively, smollm2_tokenizer) -> None:
    from diaguide.inference.llamacpp_generator import LlamaCppGenerator

    model = make_lively(vocab=49152)
    path = export_gguf(model, tmp_path / "tiny.gguf", ftype="f32")
    # an F32 KV cache, so the two engines compute the same numbers and greedy picks cannot drift apart
    cpp = LlamaCppGenerator(path, tokenizer=smollm2_tokenizer, n_ctx=256, type_k=0, type_v=0)
    hf = HFGenerator(model=model, tokenizer=smollm2_tokenizer, batch_size=3)
    theirs, ours = cpp.generate(PROMPTS, max_new_tokens=24), hf.generate(PROMPTS, max_new_tokens=24)
    assert [g.text for g in theirs] == [g.text for g in ours]
    assert [g.prompt_tokens for g in theirs] == [g.prompt_tokens for g in ours]
    assert len({g.text for g in theirs}) == len(PROMPTS)


@pytest.mark.slow
@pytest.mark.native("llama.cpp")
def test_bundled_model_serves_a_checked_recommendation(smollm2_tokenizer, ckd) -> None:
    from diaguide.inference.base_model import bundled_gguf
    from diaguide.inference.llamacpp_generator import LlamaCppGenerator
    from diaguide.prompts import render_prompt
    from diaguide.safety.checker import check

    engine = LlamaCppGenerator(bundled_gguf(), tokenizer=smollm2_tokenizer)
    assert engine.load_s < 30
    visit = ckd()
    first, other, again = engine.generate([render_prompt(visit), "Say hello.", render_prompt(visit)], 32)
    # the KV cache kept between calls never leaks into the next answer
    assert first.text == again.text and first.text != other.text
    text, special = chat_text(smollm2_tokenizer, render_prompt(visit))
    assert first.prompt_tokens == len(smollm2_tokenizer(text, add_special_tokens=special)["input_ids"])
    result = recommend(visit, engine, max_new_tokens=48)
    assert result.engine == "llama.cpp" and result.model == "SmolLM2-135M-Instruct.Q4_1"
    assert result.status in ("ok", "partial", "no_suggestion")
    if result.plan is None:  # the base model rarely writes our format: retried strictly, then given up
        assert result.status == "no_suggestion" and result.attempts == 2
    else:  # whatever it did propose has been through the checker
        expected = {f.rule_id for f in check(visit, result.plan)}
        assert expected <= {f.rule_id for f in result.plan.findings}


def test_thread_count_from_the_environment(monkeypatch) -> None:
    from diaguide.errors import ModelError
    from diaguide.inference.llamacpp_generator import _env_threads

    monkeypatch.delenv("DIAGUIDE_LLAMA_THREADS", raising=False)
    assert _env_threads() is None
    monkeypatch.setenv("DIAGUIDE_LLAMA_THREADS", "1")
    assert _env_threads() == 1
    monkeypatch.setenv("DIAGUIDE_LLAMA_THREADS", "two")
    with pytest.raises(ModelError, match="DIAGUIDE_LLAMA_THREADS"):
        _env_threads()


def test_a_build_with_amx_kernels_loads_without_extra_buffers(monkeypatch) -> None:
    from diaguide.inference import native

    amx = {"version": "x", "features": ["AVX2", "AMX_INT8", "AVX512_VNNI"], "amx": True, "library": "/x"}
    monkeypatch.setattr(native, "llama_build", lambda: amx)
    assert native.extra_buffers_safe() is False
    monkeypatch.setattr(native, "llama_build", lambda: {**amx, "features": ["AVX2"], "amx": False})
    assert native.extra_buffers_safe() is True


@pytest.mark.slow
@pytest.mark.native("llama.cpp")
def test_extra_buffers_off_reach_the_loaded_model_and_it_still_answers(smollm2_tokenizer) -> None:
    """The load-time AMX fix: the field really is off in the parameters the model was loaded with, the library's
    defaults are put back afterwards, and the model generates the same greedy tokens either way."""
    import llama_cpp.llama_cpp as lib

    from diaguide.inference.base_model import bundled_gguf
    from diaguide.inference.native import load_llama

    ids = smollm2_tokenizer("List two tests for diabetes.")["input_ids"]

    def greedy(llm) -> list[int]:
        out = []
        for t in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
            out.append(t)
            if len(out) == 12:
                return out
        return out

    off = load_llama(bundled_gguf(), extra_bufts=False, n_ctx=256, n_threads=2, verbose=False)
    assert off.model_params.use_extra_bufts is False
    assert lib.llama_model_default_params().use_extra_bufts is True  # the swap did not outlive the load
    on = load_llama(bundled_gguf(), extra_bufts=True, n_ctx=256, n_threads=2, verbose=False)
    assert on.model_params.use_extra_bufts is True
    assert greedy(off) == greedy(on) and len(set(greedy(off))) > 3
