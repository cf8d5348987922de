"""The transformers engine: batched greedy == one at a time, adapters (LoRA, prefix tuning) in a batch, and the
prompt formatted exactly as training formats it."""

from __future__ import annotations

import copy
import hashlib

import pytest

from diaguide.errors import ModelError
from diaguide.inference.hf_generator import HFGenerator
from diaguide.training.data import encode

# lengths differ so batches need left padding
PROMPTS = ["hba1c 9.1", "age 80, egfr 25, on metformin", "x", "diet only; hba1c 6.4; bmi 31.2", "ldl 3.1 mmol/L"]


def outputs(engine: HFGenerator, batch_size: int, n: int = 16) -> list[str]:
    engine.batch_size = batch_size
    return [g.text for g in engine.generate(PROMPTS, max_new_tokens=n)]


def test_batched_greedy_equals_one_at_a_time(lively, tok) -> None:
    engine = HFGenerator(model=lively, tokenizer=tok)
    single = outputs(engine, 1)
    assert len(set(single)) > 1 and all(single)  # a model that says something, and not the same for all
    assert outputs(engine, 3) == single
    assert outputs(engine, 8) == single


def test_generation_reports_tokens_and_stops_at_the_limit(lively, tok) -> None:
    gens = HFGenerator(model=lively, tokenizer=tok, batch_size=5).generate(PROMPTS, max_new_tokens=6)
    for g in gens:
        assert 0 < g.new_tokens <= 6
        assert g.finished == (g.new_tokens < 6) or g.new_tokens == 6
        assert g.prompt_tokens > 0


def test_prompt_is_the_training_format(lively, tok) -> None:
    """Inference ids are exactly the prompt part of a training example (chat template, user turn)."""
    engine = HFGenerator(model=lively, tokenizer=tok)
    for prompt in PROMPTS:
        (example,) = encode([{"prompt": prompt, "target": "MED: x"}], tok, max_length=512, use_template=True)
        ids = engine._encode(prompt)
        assert example.input_ids[: len(ids)] == ids
        assert tok.decode(ids).endswith("<|im_start|>assistant\n")


def _saved_adapter(tmp_path, peft_config, make_lively):
    from peft import get_peft_model

    model = get_peft_model(make_lively(), peft_config)
    model.peft_config["default"].base_model_name_or_path = "tiny-llama"
    model.save_pretrained(tmp_path)
    return tmp_path


def test_prefix_tuned_model_generates_in_a_batch(tmp_path, tok, make_lively) -> None:
    from peft import PrefixTuningConfig, TaskType

    adapter = _saved_adapter(
        tmp_path, PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=8), make_lively
    )
    engine = HFGenerator(model=make_lively(), tokenizer=tok, adapter=adapter)
    assert engine.method.name == "ptuning_v2" and engine.model_name == "tiny-llama"
    single = outputs(engine, 1)
    assert outputs(engine, 5) == single
    base = outputs(HFGenerator(model=make_lively(), tokenizer=tok), 5)
    assert single != base  # the prefix is really in front of every row


def test_lora_adapter_version_is_the_weight_hash(tmp_path, tok, make_lively) -> None:
    from peft import LoraConfig, TaskType

    # init_lora_weights=False: B is random too, so the adapter changes the output
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, target_modules="all-linear", init_lora_weights=False)
    adapter = _saved_adapter(tmp_path, cfg, make_lively)
    engine = HFGenerator(model=make_lively(), tokenizer=tok, adapter=adapter, batch_size=5)
    digest = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]
    assert engine.adapter_version == digest
    assert outputs(engine, 5) == outputs(copy.copy(engine), 1)
    assert outputs(engine, 5) != outputs(HFGenerator(model=make_lively(), tokenizer=tok), 5)


def test_adapter_trained_with_the_guideline_line_is_served_with_it(tmp_path, tok, make_lively, ckd) -> None:
    from peft import LoraConfig, TaskType

    from diaguide.inference.pipeline import recommend
    from diaguide.knowledge.guideline import recommend as guideline
    from diaguide.prompts import render_prompt
    from diaguide.prompts.guidance import PromptStyle

    adapter = _saved_adapter(tmp_path, LoraConfig(task_type=TaskType.CAUSAL_LM, r=4), make_lively)
    assert HFGenerator(model=make_lively(), tokenizer=tok, adapter=adapter).prompt_style == PromptStyle()
    PromptStyle(guidance=True).save(adapter)  # what `diaguide train` writes for a guided dataset
    engine = HFGenerator(model=make_lively(), tokenizer=tok, adapter=adapter)
    assert engine.prompt_style.guidance
    seen = []
    engine._encode = lambda prompt, inner=engine._encode: seen.append(prompt) or inner(prompt)
    visit = ckd()
    recommend(visit, engine, max_new_tokens=4)
    assert seen[0] == render_prompt(visit, guidance=guideline(visit))


def test_not_an_adapter_folder_is_one_clear_error(tmp_path, tok, make_lively) -> None:
    with pytest.raises(ModelError, match="adapter_config.json"):
        HFGenerator(model=make_lively(), tokenizer=tok, adapter=tmp_path)
