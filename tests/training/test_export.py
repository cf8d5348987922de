"""Export: a merged LoRA model gives the adapter's logits without PEFT; other requests get clear errors."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib

from diaguide.errors import InputError  # noqa: E402
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
    with pytest.raises(InputError, match="GGUF export is not implemented yet"):
        export_command(adapter=str(lora_run), out=str(tmp_path / "x"), merge=False, gguf=True)
    with pytest.raises(InputError, match="no adapter_config.json"):
        export_command(adapter=str(tmp_path), out=str(tmp_path / "x"), merge=True, gguf=False)
    prefix = _adapter(model_dirs["llama"], data_dir, tmp_path / "prefix", "ptuning_v2")
    with pytest.raises(InputError, match="PREFIX_TUNING adapters have no weights to merge"):
        export_command(adapter=str(prefix), out=str(tmp_path / "x"), merge=True, gguf=False)
