"""GGUF export: Q/K permuted the way llama.cpp expects, tokenizer and metadata kept, llama.cpp runs the result.

The fast test checks the permutation against transformers' own un-permute. The slow ones write real files:
a tiny random Llama read back by transformers and run by llama.cpp against transformers' logits, and the bundled
SmolLM2 re-exported and compared token for token with the original GGUF under llama.cpp.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diaguide.errors import ModelError
from diaguide.inference.gguf_export import export_gguf, permute_qk


@pytest.mark.parametrize(("n_head", "n_kv", "rows"), [(9, 9, 576), (9, 3, 192), (4, 2, 32)])
def test_permute_is_the_inverse_of_transformers_unpermute(n_head, n_kv, rows) -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    w = np.random.default_rng(0).standard_normal((rows, 64)).astype(np.float32)
    permuted = permute_qk(w, n_head, n_kv)
    assert not np.array_equal(permuted, w)
    assert np.array_equal(LlamaTensorProcessor()._reverse_permute_weights(permuted, n_head, n_kv), w)


def test_refuses_what_it_cannot_write(tmp_path, make_lively, tiny_models) -> None:
    with pytest.raises(ModelError, match="llama-architecture"):
        export_gguf(tiny_models.tiny_model("qwen2"), tmp_path / "q.gguf")
    with pytest.raises(ModelError, match="unknown GGUF type"):
        export_gguf(make_lively(), tmp_path / "q.gguf", ftype="q3_k")
    with pytest.raises(ModelError, match="reference GGUF"):
        export_gguf(make_lively(vocab=128), tmp_path / "q.gguf")  # no tokenizer of 128 tokens to reuse
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


@pytest.fixture(scope="module")
def tiny_big_vocab(make_lively):
    """A tiny random Llama with SmolLM2's vocabulary, so the bundled GGUF's tokenizer fits it."""
    return make_lively(vocab=49152)


@pytest.mark.slow
def test_tiny_export_reads_back_identical_in_transformers(tmp_path, tiny_big_vocab) -> None:
    from transformers import AutoModelForCausalLM

    export_gguf(tiny_big_vocab, tmp_path / "tiny.gguf", ftype="f32")
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf")
    ours, theirs = tiny_big_vocab.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]), name


def _llamacpp_logits(path, ids: list[int]) -> np.ndarray:
    from diaguide.inference.native import load_llama

    # type_k/type_v 0 = GGML F32: llama.cpp's default F16 KV cache alone moves logits by ~1e-2
    llm = load_llama(path, n_ctx=64, n_threads=2, logits_all=True, type_k=0, type_v=0, verbose=False)
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)])


@pytest.mark.slow
@pytest.mark.native("llama.cpp")
def test_llamacpp_runs_a_tiny_export_like_transformers(tmp_path, tiny_big_vocab, monkeypatch) -> None:
    pytest.importorskip("llama_cpp")
    ids = [1, 504, 2010, 314, 1127, 28, 3384, 30, 4981, 17, 42, 1715, 998, 313, 7, 12]
    with torch.no_grad():
        ours = tiny_big_vocab(torch.tensor([ids])).logits[0].numpy()
    theirs = _llamacpp_logits(export_gguf(tiny_big_vocab, tmp_path / "tiny.gguf", ftype="f32"), ids)
    # every position, not only the first: RoPE (the only thing the Q/K layout changes) acts from position 1 on
    assert np.abs(theirs - ours).max() < 1e-3 * np.abs(ours).max()
    assert (theirs.argmax(-1) == ours.argmax(-1)).all()
    # the same file without the permutation is far off: this test would catch a writer that forgot it
    monkeypatch.setattr("diaguide.inference.gguf_export.permute_qk", lambda w, n_head, n_kv=None: w)
    wrong = _llamacpp_logits(export_gguf(tiny_big_vocab, tmp_path / "wrong.gguf", ftype="f32"), ids)
    assert np.abs(wrong - ours)[1:].max() > 0.1 * np.abs(ours).max()


@pytest.mark.slow
@pytest.mark.native("llama.cpp")
def test_reexported_smollm2_generates_the_same_tokens_as_the_original(tmp_path) -> None:
    pytest.importorskip("llama_cpp")
    from diaguide.inference.base_model import bundled_gguf, load_base_model
    from diaguide.inference.native import load_llama

    model, tok = load_base_model()
    path = export_gguf(model, tmp_path / "smollm2-q4_1.gguf", ftype="q4_1")
    text = tok.apply_chat_template(
        [{"role": "user", "content": "List three tests for a patient with type 2 diabetes."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]

    def greedy(gguf) -> list[int]:
        llm = load_llama(gguf, n_ctx=512, n_threads=2, verbose=False)
        out = []
        for t in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
            out.append(t)
            if len(out) == 40 or t == llm.token_eos():
                return out
        return out

    original = greedy(bundled_gguf())
    assert len(set(original)) > 5  # a real answer, not one token repeated
    assert greedy(path) == original


@pytest.mark.slow
@pytest.mark.native("llama.cpp")
def test_q4_0_export_keeps_embeddings_at_q8_0_and_stays_close(tmp_path, tiny_big_vocab) -> None:
    """The 4-bit serving file: block weights Q4_0, embeddings/output head Q8_0, norms F32; llama.cpp (which
    repacks Q4_0 at load) computes logits near the F32 file's."""
    pytest.importorskip("llama_cpp")
    from gguf import GGMLQuantizationType as T
    from gguf import GGUFReader

    path = export_gguf(tiny_big_vocab, tmp_path / "tiny-q4_0.gguf", ftype="q4_0")
    types = {t.name: t.tensor_type for t in GGUFReader(path).tensors}
    assert types["token_embd.weight"] == T.Q8_0
    assert {v for k, v in types.items() if k.endswith("norm.weight")} == {T.F32}
    blocks = {v for k, v in types.items() if k.startswith("blk.") and not k.endswith("norm.weight")}
    assert T.Q4_0 in blocks and blocks <= {T.Q4_0, T.F16}  # F16 only where rows are not whole 32-blocks
    ids = [1, 504, 2010, 314, 1127, 28, 3384, 30, 4981, 17, 42, 1715]
    exact = _llamacpp_logits(export_gguf(tiny_big_vocab, tmp_path / "tiny.gguf", ftype="f32"), ids)
    four = _llamacpp_logits(path, ids)
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(four[1:], exact[1:], strict=True)]
    # a random model with wide weights amplifies 4-bit error from layer to layer (0.70-0.95 here), yet the logits
    # follow the F32 file's; a wrongly laid out block would leave no correlation at all
    assert np.mean(corr) > 0.75 and min(corr) > 0.5
    assert not np.allclose(four, exact)  # it really is the quantised file
