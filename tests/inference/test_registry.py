"""Engine and adapter choice: the default adapter, prefix adapters on transformers, clear errors."""

from __future__ import annotations

import json

import pytest

from diaguide.errors import ModelError
from diaguide.inference import registry


def _adapter(folder, peft_type: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": peft_type, "base_model_name_or_path": "x"}))
    return folder


def test_default_adapter_is_the_repo_lora_or_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DIAGUIDE_ADAPTER", raising=False)
    monkeypatch.setenv("DIAGUIDE_MODELS", str(tmp_path))
    assert registry.default_adapter() is None  # no fine-tune yet: the base model answers
    lora = _adapter(tmp_path / registry.DEFAULT_ADAPTER_NAME, "LORA")
    assert registry.default_adapter() == lora
    monkeypatch.setenv("DIAGUIDE_ADAPTER", str(tmp_path / "other"))
    assert registry.default_adapter() == tmp_path / "other"


def test_prefix_adapters_run_on_transformers(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(registry, "llamacpp_available", lambda: True)
    assert registry.generator_kind(None, _adapter(tmp_path / "p", "PREFIX_TUNING")) == "transformers"
    assert registry.generator_kind(None, _adapter(tmp_path / "l", "LORA")) == "llama.cpp"
    assert registry.generator_kind(None, None) == "llama.cpp"
    monkeypatch.setattr(registry, "llamacpp_available", lambda: False)
    assert registry.generator_kind(None, None) == "transformers"


def test_bad_engine_or_adapter_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="unknown engine"):
        registry.generator_for(kind="tensorrt", adapter=_adapter(tmp_path / "l", "LORA"))
    with pytest.raises(ModelError, match="adapter_config.json"):
        registry.generator_for(kind="transformers", adapter=tmp_path / "empty")


def test_gguf_type_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("DIAGUIDE_GGUF_TYPE", raising=False)
    assert registry.gguf_type() == registry.GGUF_TYPE
    monkeypatch.setenv("DIAGUIDE_GGUF_TYPE", "Q4_0")
    assert registry.gguf_type() == "q4_0"
    monkeypatch.setenv("DIAGUIDE_GGUF_TYPE", "q3_k")
    with pytest.raises(ModelError, match="DIAGUIDE_GGUF_TYPE must be one of"):
        registry.gguf_type()
