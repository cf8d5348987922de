"""Export: a merged LoRA model gives the adapter's logits without PEFT; other requests get clear errors."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib

from diaguide.errors import InputError, ModelError  # noqa: E402
from diaguide.training.export import export_command, load_adapter  # noqa: E402
from diaguide.training.recipe import train_command  # noqa: E402


def _adapter(model_dir, data_dir, out, method):
    over = [
        f"model.name={model_dir}",
        f"data.dir={data_dir}",
        f"method.name={method}",
        "data.max_length=256",
        "data.seq_len=256",
        "train.progress=false",
        "method.prefix.num_virtual_tokens=4",
        "train.lr=1e-2",
    ]
    train_command(config=None, out=str(out), max_steps=2, overrides=over)
    return out


@pytest.fixture(scope="module")
def lora_run(model_dirs, data_dir, tmp_path_factory):
    return _adapter(model_dirs["glm"], data_dir, tmp_path_factory.mktemp("lora"), "lora")


def test_merge_writes_a_plain_model_with_the_adapters_logits(lora_run, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    assert export_command(adapter=str(lora_run), out=str(out), merge=True, gguf=False) == 0
    assert (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    adapted, _ = load_adapter(lora_run)
    ids = torch.tensor([[4, 9, 16, 25, 36]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, adapted.eval()(input_ids=ids).logits, atol=1e-4)


def test_export_errors_are_one_clear_line(lora_run, model_dirs, data_dir, tmp_path):
    with pytest.raises(InputError, match="nothing to export"):
        export_command(adapter=str(lora_run), out=str(tmp_path / "x"), merge=False, gguf=False)
    with pytest.raises(ModelError, match="llama-architecture"):  # the GGUF writer knows llama-architecture models
        export_command(adapter=str(lora_run), out=str(tmp_path / "x"), merge=False, gguf=True)
    with pytest.raises(InputError, match="no adapter_config.json"):
        export_command(adapter=str(tmp_path), out=str(tmp_path / "x"), merge=True, gguf=False)
    prefix = _adapter(model_dirs["llama"], data_dir, tmp_path / "prefix", "ptuning_v2")
    for merge, gguf, kind in ((True, False, "merge"), (False, True, "gguf")):
        with pytest.raises(InputError, match=f"ptuning_v2 adapters cannot be exported as {kind}"):
            export_command(adapter=str(prefix), out=str(tmp_path / "x"), merge=merge, gguf=gguf)


def test_gguf_export_writes_the_merged_model(lora_run, tmp_path, monkeypatch):
    """`--gguf` hands the merged model (no LoRA layers left) to the GGUF writer, which tests/inference/
    test_gguf_export.py checks against llama.cpp; here: the wiring, and the file's place."""
    from diaguide.inference import gguf_export

    seen = {}

    def fake_export(model, out_path, ftype):
        seen.update(lora=any("lora" in n for n, _ in model.named_parameters()), path=Path(out_path), ftype=ftype)
        Path(out_path).write_bytes(b"GGUF")
        return Path(out_path)

    monkeypatch.setattr(gguf_export, "export_gguf", fake_export)
    monkeypatch.setenv("DIAGUIDE_GGUF_TYPE", "f16")
    assert export_command(adapter=str(lora_run), out=str(tmp_path / "g"), merge=False, gguf=True) == 0
    assert seen == {"lora": False, "path": tmp_path / "g" / "model.gguf", "ftype": "f16"}
    assert not (tmp_path / "g" / "model.safetensors").exists()  # --gguf alone writes no safetensors copy
