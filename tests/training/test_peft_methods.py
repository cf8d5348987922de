"""The method table: every question about a tuning method is answered by its one entry."""

from __future__ import annotations

import pytest

from diaguide.errors import ModelError
from diaguide.inference.registry import generator_kind
from diaguide.peft_methods import METHODS, method_of_adapter, serving_engines


def test_adapters_are_found_by_the_peft_type_peft_writes() -> None:
    assert method_of_adapter({"peft_type": "LORA"}).name == "lora"  # QLoRA saves LORA adapters too
    assert method_of_adapter({"peft_type": "PREFIX_TUNING"}).name == "ptuning_v2"
    with pytest.raises(ModelError, match="'IA3' is not one DiaGuide serves"):
        method_of_adapter({"peft_type": "IA3"}, "runs/ia3")


def test_what_each_method_can_be_served_on_and_exported_as() -> None:
    assert serving_engines(None) == ("transformers", "llama.cpp", "vllm")  # the base model alone
    assert serving_engines({"peft_type": "PREFIX_TUNING"}) == ("transformers",)
    assert METHODS["ptuning_v2"].exports == () and not METHODS["ptuning_v2"].mergeable
    for method in METHODS.values():  # a method that merges is one llama.cpp can serve, and the other way round
        assert method.mergeable == ("gguf" in method.exports) == ("llama.cpp" in method.engines)


def test_the_serving_engine_follows_the_table(tmp_path, monkeypatch) -> None:
    import json

    from diaguide.inference import registry

    monkeypatch.setattr(registry, "llamacpp_available", lambda: True)
    for peft_type, expected in (("LORA", "llama.cpp"), ("PREFIX_TUNING", "transformers")):
        folder = tmp_path / peft_type
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps({"peft_type": peft_type}), encoding="utf-8")
        assert generator_kind(None, folder) == expected
