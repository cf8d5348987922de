"""Config: unknown keys and wrong types stop the run with one line naming the dotted key."""

from pathlib import Path

import pytest

from diaguide.errors import ConfigError
from diaguide.training.config import dump_config, load_config

CONFIGS = sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*/*.yaml"))
MODEL_CONFIGS = [p for p in CONFIGS if p.parent.name != "accelerate"]


def test_overrides_set_nested_keys_with_types():
    cfg = load_config(None, ["train.lr=1e-3", "method.name=ptuning_v2", "method.lora.target_modules=[q_proj,v_proj]"])
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.method.name == "ptuning_v2"
    assert cfg.method.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.method.prefix.num_virtual_tokens == 128  # the ChatGLM P-tuning v2 default
    assert load_config(None, ["data.oversample.stop=3"]).data.oversample == {"stop": 3}


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ("train.learning_rate=1e-4", "train.learning_rate", "unknown key"),
        ("train.lr=fast", "train.lr", "valid number"),
        ("method.name=dora", "method.name", "'lora'"),
        ("data.pack=maybe", "data.pack", "boolean"),
        ("nonsense=1", "nonsense", "unknown key"),
        ("data.oversample.halt=3", "data.oversample.halt.[key]", "'stop' (got 'halt')"),
        ("data.oversample.stop=0", "data", "must be >= 1"),
    ],
)
def test_bad_override_names_the_key(override, key, words):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    line = str(err.value)
    assert "\n" not in line
    assert f": {key}: " in line and words in line


def test_bad_yaml_file_names_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-4\n  batchsize: 2\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: train\.batchsize: unknown key"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_override_must_be_key_value():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.lr"])


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_load_and_round_trip(path, tmp_path):
    cfg = load_config(path)
    assert cfg.method.name == path.stem
    again = tmp_path / "resolved.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(again) == cfg


def test_all_shipped_configs_exist():
    names = {f"{p.parent.name}/{p.name}" for p in CONFIGS}
    for want in (
        "smollm2-135m/lora.yaml",
        "smollm2-135m/ptuning_v2.yaml",
        "glm4-9b/lora.yaml",
        "glm4-9b/ptuning_v2.yaml",
        "glm4-9b/qlora.yaml",
        "qwen2.5-1.5b/lora.yaml",
        "accelerate/fsdp.yaml",
        "accelerate/deepspeed_zero3.yaml",
        "accelerate/multi_node.yaml",
    ):
        assert want in names
