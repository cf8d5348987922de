"""The base model loader: the bundled SmolLM2 (slow), local folders, and clear errors."""

import importlib.util
from pathlib import Path

import pytest

from diaguide.errors import ModelError
from diaguide.inference.base_model import bundled_gguf, load_base_model, load_tokenizer, resolve_model_path

_spec = importlib.util.spec_from_file_location(
    "diaguide_tests_tiny_models_bm", Path(__file__).resolve().parents[1] / "training" / "tiny_models.py"
)
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)


def test_local_folder_loads_with_its_tokenizer(tmp_path):
    folder = tiny.save_tiny(tmp_path / "m", "glm4")
    model, tok = load_base_model(str(folder))
    assert type(model).__name__ == "Glm4ForCausalLM" and not model.training
    assert tok.chat_template and tok.pad_token == "<pad>"


def test_missing_or_weightless_folders_are_named(tmp_path):
    with pytest.raises(ModelError, match=r"nowhere: no such model folder .*bundled: smollm2-135m"):
        resolve_model_path(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="empty: the folder holds no model weights"):
        load_base_model(str(empty))


def test_a_hub_id_is_not_fetched(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="local folders only"):
        load_base_model("Qwen/Qwen2.5-1.5B-Instruct")


def test_bundled_gguf_is_found_without_importing_its_package():
    path = bundled_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


@pytest.mark.slow
def test_bundled_smollm2_loads_from_its_safetensors_cache(tmp_path, monkeypatch):
    # the shared cache: converted once (~25 s), then read back in about a second
    model, tok = load_base_model("smollm2-135m")
    folder = resolve_model_path("smollm2-135m")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    assert load_tokenizer("smollm2-135m").pad_token is not None
