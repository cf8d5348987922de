"""Publishing an adapter: fp16 weights that match, a model card whose hashes match the files."""

import hashlib
import json

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from diaguide import cli


@pytest.fixture()
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(0)
    save_file({"base_model.lora_A.weight": torch.randn(8, 16)}, str(run / "adapter_model.safetensors"))
    (run / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "x"}))
    cfg = {
        "model": {"name": "smollm2-135m"},
        "method": {"name": "lora"},
        "data": {"dir": str(tmp_path / "nodata")},
        "train": {"lr": 3e-4},
    }
    (run / "config.resolved.yaml").write_text(yaml.safe_dump(cfg))
    (run / "summary.json").write_text(json.dumps({"steps": 7, "loss": 1.2, "val_loss": 1.3}))
    return run


def _metrics(tmp_path):
    value = {"value": 0.61, "low": 0.5, "high": 0.7}
    path = tmp_path / "metrics.json"
    path.write_text(
        json.dumps(
            {
                "engines": {"lora": {"overall": {"n": 12, "metrics": {"med_class_f1": value}}}},
                "dataset": {"path": "d", "sha256": "abc"},
            }
        )
    )
    return path


def test_publish_halves_weights_and_writes_a_card_with_true_hashes(run_dir, tmp_path, capsys):
    out = tmp_path / "models" / "smollm2-135m-lora"
    status = cli.main(
        ["export", "--adapter", str(run_dir), "--out", str(out), "--publish", "--metrics", str(_metrics(tmp_path))]
    )
    assert status == 0
    original = load_file(str(run_dir / "adapter_model.safetensors"))["base_model.lora_A.weight"]
    shipped = load_file(str(out / "adapter_model.safetensors"))["base_model.lora_A.weight"]
    assert shipped.dtype == torch.float16
    assert torch.allclose(shipped.float(), original, atol=1e-3)
    card = (out / "README.md").read_text()
    digest = hashlib.sha256((out / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert f"`adapter_model.safetensors` {digest}" in card
    assert "| lora (this adapter) | 12 | 0.610 [0.50, 0.70]" in card
    assert "steps 7" in card


def test_publish_refuses_a_folder_without_an_adapter(tmp_path, capsys):
    assert cli.main(["export", "--adapter", str(tmp_path), "--out", str(tmp_path / "o"), "--publish"]) == 2
    err = capsys.readouterr().err
    assert "not a trained adapter folder" in err and "Traceback" not in err


def test_publishing_in_place_refreshes_the_figures_and_keeps_the_training_facts(run_dir, tmp_path):
    out = tmp_path / "models" / "smollm2-135m-lora"
    assert cli.main(["export", "--adapter", str(run_dir), "--out", str(out), "--publish"]) == 0
    assert "Not evaluated yet." in (out / "README.md").read_text()
    facts = json.loads((out / "card.json").read_text())
    weights = (out / "adapter_model.safetensors").read_bytes()
    # a fresh checkout: file times no longer say how long training took
    (out / "card.json").write_text(json.dumps({**facts, "wall_s": 3141, "device": "a 2-core CPU"}))
    metrics = _metrics(tmp_path)
    assert cli.main(["export", "--adapter", str(out), "--out", str(out), "--publish", "--metrics", str(metrics)]) == 0
    card = (out / "README.md").read_text()
    assert "| lora (this adapter) | 12 | 0.610 [0.50, 0.70]" in card
    assert "3141 s wall time on a 2-core CPU" in card
    assert (out / "adapter_model.safetensors").read_bytes() == weights
    assert json.loads((out / "eval-metrics.json").read_text()) == json.loads(metrics.read_text())


def test_a_re_publish_without_the_training_dataset_keeps_its_hashes(run_dir, tmp_path):
    data = tmp_path / "nodata"  # the run's data.dir: a guided dataset's manifest
    data.mkdir()
    manifest = {
        "source": {"sha256": "a1ed"},
        "splits": {"train": {"sha256": "04b5", "records": 978}, "test": {"sha256": "ffff", "records": 99}},
        "options": {"guidance": True, "region": "ada"},
        "targets": {"physician": 397, "classes": 437},
    }
    (data / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "models" / "smollm2-135m-lora"
    assert cli.main(["export", "--adapter", str(run_dir), "--out", str(out), "--publish"]) == 0
    first = (out / "README.md").read_text()
    assert "train split sha256 `04b5` (978 examples)" in first and "437 train/val plans" in first
    (data / "manifest.json").unlink()  # a fresh checkout: the dataset was never built here
    assert cli.main(["export", "--adapter", str(out), "--out", str(out), "--publish"]) == 0
    again = (out / "README.md").read_text()
    assert "dataset manifest not found" not in again
    assert "train split sha256 `04b5` (978 examples)" in again and "437 train/val plans" in again
