"""Every method on every tiny architecture: trains, generates, and packs without changing the loss."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from tiny_models import ARCHS, rows, tiny_model  # noqa: E402

from diaguide.errors import ConfigError  # noqa: E402
from diaguide.training.config import load_config  # noqa: E402
from diaguide.training.data import collate, encode, pack  # noqa: E402
from diaguide.training.forward import TargetLoss  # noqa: E402
from diaguide.training.methods import apply_method, count_parameters, quantization_config  # noqa: E402

METHODS = ("lora", "ptuning_v2")
PREFIX = 8  # virtual tokens in tests (128 by default)


def _wrapped(arch, method, attn="sdpa", **over):
    extra = [f"{k}={v}" for k, v in over.items()]
    cfg = load_config(
        None, [f"method.name={method}", f"method.prefix.num_virtual_tokens={PREFIX}", "method.lora.dropout=0", *extra]
    )
    base = tiny_model(arch)
    base.config._attn_implementation = attn
    model = apply_method(base, cfg)
    return model, TargetLoss(model, PREFIX if method == "ptuning_v2" else 0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS)
def test_method_trains_and_loss_falls(arch, method, tok):
    model, module = _wrapped(arch, method)
    trainable, frozen = count_parameters(model)
    assert 0 < trainable < frozen
    batch = collate(pack(encode(rows(6), tok, 128, True), 256), tok.pad_token_id)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2 if method == "lora" else 3e-1)
    losses = []
    for _ in range(12):
        s, n = module(batch.input_ids, batch.targets, batch.position_ids, batch.segments)
        (s / n).backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(s / n))
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.parametrize(("arch", "attn"), [*((a, "sdpa") for a in ARCHS), ("llama", "eager"), ("glm4", "eager")])
@pytest.mark.parametrize("method", METHODS)
def test_packed_loss_equals_one_example_at_a_time(arch, attn, method, tok):
    model, module = _wrapped(arch, method, attn)
    assert module.packed_attention == (attn == "sdpa")
    for p in model.parameters():
        if p.requires_grad:  # LoRA B starts at zero: make the adapter matter
            torch.nn.init.normal_(p, std=0.2)
    examples = encode(rows(9), tok, 128, True)
    with torch.no_grad():
        packed = collate(pack(examples, 256), tok.pad_token_id)
        s, n = module(packed.input_ids, packed.targets, packed.position_ids, packed.segments)
        total, count = 0.0, 0
        for ex in examples:
            # the reference: PEFT's own forward, one unpadded example, HF-style unshifted labels
            ids = torch.tensor([ex.input_ids])
            labels = torch.tensor([[-100, *ex.targets[:-1]]])
            k = int((labels != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * k
            count += k
    assert int(n) == count
    assert float(s / n) == pytest.approx(total / count, rel=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_prefix_tuned_model_generates(arch, tok):
    model, _ = _wrapped(arch, "ptuning_v2")
    model.eval()
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "hba1c 9"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == enc["input_ids"].shape[1] + 5


def test_qlora_on_cpu_is_a_clear_error():
    cfg = load_config(None, ["method.name=qlora"])
    with pytest.raises(ConfigError, match="qlora needs a CUDA GPU"):
        quantization_config(cfg, "cpu")


def test_prefix_tuning_turns_checkpointing_off_with_a_note(caplog):
    cfg = load_config(
        None, ["method.name=ptuning_v2", "method.prefix.num_virtual_tokens=4", "model.gradient_checkpointing=true"]
    )
    model = apply_method(tiny_model("llama"), cfg)
    assert "gradient checkpointing is off" in caplog.text
    assert not model.get_base_model().is_gradient_checkpointing


def test_lora_with_checkpointing_matches_without(tok):
    batch = collate(pack(encode(rows(4), tok, 128, True), 256), tok.pad_token_id)
    grads = []
    for ckpt in (False, True):
        model, module = _wrapped("qwen2", "lora", **{"model.gradient_checkpointing": str(ckpt).lower()})
        assert model.get_base_model().is_gradient_checkpointing == ckpt
        model.train()
        s, n = module(batch.input_ids, batch.targets, batch.position_ids, batch.segments)
        (s / n).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
