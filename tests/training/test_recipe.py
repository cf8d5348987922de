"""The recipe end to end on a tiny model: run folder, metrics, adapter, resume, bad input."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from tiny_models import save_tiny  # noqa: E402

from diaguide.errors import ConfigError, InputError, ModelError  # noqa: E402
from diaguide.training.recipe import train_command  # noqa: E402

BASE = [
    "data.max_length=256",
    "data.seq_len=256",
    "train.lr=1e-2",
    "train.warmup_steps=1",
    "train.progress=false",
    "method.lora.dropout=0",
    "method.prefix.num_virtual_tokens=8",
]


def _train(model_dir, data_dir, out, steps=4, resume=False, extra=()):
    over = [f"model.name={model_dir}", f"data.dir={data_dir}", *BASE, *extra]
    return train_command(config=None, out=str(out), max_steps=steps, resume=resume, overrides=over)


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_run_folder_holds_config_metrics_and_a_peft_adapter(model_dirs, data_dir, tmp_path):
    out = tmp_path / "run"
    assert _train(model_dirs["llama"], data_dir, out, steps=4, extra=["train.log_every=2", "train.eval_every=2"]) == 0
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["train"]["max_steps"] == 4 and resolved["data"]["dir"] == str(data_dir)
    logged = [m for m in _metrics(out) if "loss" in m]
    assert [m["step"] for m in logged] == [2, 4]
    for m in logged:
        assert set(m) >= {"step", "loss", "lr", "tokens_per_s", "peak_mem_mb", "mfu"}
        assert m["tokens_per_s"] > 0 and m["peak_mem_mb"] > 0 and m["mfu"] is None  # no known peak on CPU
    assert [m["step"] for m in _metrics(out) if "val_loss" in m] == [2, 4]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == str(model_dirs["llama"])
    assert (out / "adapter_model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    assert json.loads((out / "prompt.json").read_text()) == {
        "guidance": False,
        "notes_facts": False,
    }  # no manifest: plain style


def test_adapter_keeps_the_prompt_style_of_a_guided_dataset(model_dirs, data_dir, tmp_path):
    import shutil

    from diaguide.prompts.guidance import PromptStyle

    guided = tmp_path / "guided-data"
    shutil.copytree(data_dir, guided)
    (guided / "manifest.json").write_text(json.dumps({"options": {"guidance": True, "region": "ada"}}))
    out = tmp_path / "run"
    assert _train(model_dirs["llama"], guided, out, steps=1) == 0
    assert PromptStyle.of(out) == PromptStyle(guidance=True)


@pytest.mark.parametrize("method", ["lora", "ptuning_v2"])
def test_saved_adapter_loads_with_peft_and_gives_the_same_logits(model_dirs, data_dir, tmp_path, method):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from diaguide.training.export import load_adapter

    out = tmp_path / method
    _train(model_dirs["qwen2"], data_dir, out, steps=3, extra=[f"method.name={method}"])
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    ours, _ = load_adapter(out)
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dirs["qwen2"]), str(out))
    base = AutoModelForCausalLM.from_pretrained(model_dirs["qwen2"])
    with torch.no_grad():
        a, b, c = (m.eval()(input_ids=ids).logits for m in (ours, plain, base))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-4)  # the adapter learned something


def test_resume_continues_from_the_same_step_with_the_same_data(model_dirs, data_dir, tmp_path):
    # a constant schedule: a 4-step and a 6-step run then share their first 4 learning rates
    extra = [
        "train.log_every=1",
        "train.save_every=3",
        "train.eval_every=100",
        "train.batch_size=1",
        "train.schedule=constant",
    ]
    straight, split = tmp_path / "straight", tmp_path / "split"
    _train(model_dirs["glm4"], data_dir, straight, steps=6, extra=extra)
    _train(model_dirs["glm4"], data_dir, split, steps=4, extra=extra)
    assert (split / "checkpoints" / "step-000004").is_dir()
    before = len(_metrics(split))
    _train(model_dirs["glm4"], data_dir, split, steps=6, resume=True, extra=extra)
    assert [m["step"] for m in _metrics(split)[before:] if "loss" in m] == [5, 6]  # it went on from step 5
    a = {m["step"]: m["loss"] for m in _metrics(straight) if "loss" in m}
    b = {m["step"]: m["loss"] for m in _metrics(split) if "loss" in m}
    assert sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert b[step] == pytest.approx(a[step], rel=1e-4), step


def test_a_second_run_into_the_same_folder_needs_resume(model_dirs, data_dir, tmp_path):
    out = tmp_path / "run"
    _train(model_dirs["llama"], data_dir, out, steps=2, extra=["train.save_every=1"])
    with pytest.raises(ConfigError, match="--resume"):
        _train(model_dirs["llama"], data_dir, out, steps=2)


def test_bad_inputs_stop_before_training(model_dirs, data_dir, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no model weights"):
        _train(empty, data_dir, tmp_path / "a")
    no_template = save_tiny(tmp_path / "no-template", "llama", chat_template=False)
    with pytest.raises(ModelError, match="no chat template"):
        _train(no_template, data_dir, tmp_path / "b")
    bad = tmp_path / "bad-data"
    bad.mkdir()
    (bad / "train.jsonl").write_text(json.dumps({"prompt": "p", "target": ""}) + "\n")
    with pytest.raises(InputError, match=r"train\.jsonl:1: target"):
        _train(model_dirs["llama"], bad, tmp_path / "c")
    assert not (tmp_path / "c" / "metrics.jsonl").exists()
    with pytest.raises(ConfigError, match="train.lr"):
        _train(model_dirs["llama"], data_dir, tmp_path / "d", extra=["train.lr=-1"])
