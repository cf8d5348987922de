"""The bundled SmolLM2-135M-Instruct end to end (slow: loads the real model)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from tiny_models import write_dataset  # noqa: E402

from diaguide.training.recipe import train_command  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smollm2-135m" / "lora.yaml"


@pytest.mark.slow
def test_lora_on_the_bundled_model_trains_and_saves_a_loadable_adapter(tmp_path):
    from diaguide.training.export import load_adapter

    data = write_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    over = [
        f"data.dir={data}",
        "data.max_length=128",
        "data.seq_len=256",
        "train.progress=false",
        "train.log_every=1",
        "train.warmup_steps=0",
        "method.lora.r=4",
    ]
    assert train_command(config=str(CONFIG), out=str(out), max_steps=2, overrides=over) == 0
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in steps if "loss" in m] == [1, 2]
    assert all(0 < m["loss"] < 20 for m in steps if "loss" in m)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2-135m"
    model, tok = load_adapter(out)
    assert tok.chat_template and model.peft_config["default"].r == 4
