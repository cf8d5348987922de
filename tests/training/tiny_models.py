"""Tiny offline models and a char-level tokenizer with a ChatML template, for fast tests (no hub)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
ARCHS = ("llama", "glm", "glm4", "qwen2")


def tiny_tokenizer(chat_template: bool = True):
    """A character-level fast tokenizer: 4 special tokens + printable ASCII (100 ids)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\r\x0b\x0c"]
    vocab = {t: i for i, t in enumerate(SPECIALS + chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|im_end|>",
        additional_special_tokens=SPECIALS[2:],
    )
    if chat_template:
        fast.chat_template = CHATML
    return fast


def tiny_config(arch: str, vocab: int = 128):
    from transformers import Glm4Config, GlmConfig, LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=0,
        eos_token_id=3,
        bos_token_id=None,
        initializer_range=0.2,  # wide enough that the frozen output head can express a memorised reply
    )
    if arch == "llama":
        return LlamaConfig(**common, tie_word_embeddings=True)
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "glm":
        return GlmConfig(**common, head_dim=16)
    if arch == "glm4":
        return Glm4Config(**common, head_dim=16)
    raise ValueError(arch)


def tiny_model(arch: str, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config(arch), attn_implementation="sdpa")


def save_tiny(folder: Path, arch: str = "llama", chat_template: bool = True) -> Path:
    """A tiny model + tokenizer folder, loadable like any local Hugging Face model."""
    tiny_model(arch).save_pretrained(folder)
    tiny_tokenizer(chat_template).save_pretrained(folder)
    return folder


def rows(n: int, seed: int = 0) -> list[dict]:
    """Prompt/target pairs of varied length; targets are a memorisable function of the prompt."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        k = int(torch.randint(5, 40, (1,), generator=g))
        prompt = f"patient {i} hba1c {k}: " + "x" * k
        target = "start metformin" if k % 2 else "continue insulin"
        out.append({"id": str(i), "prompt": prompt, "target": target})
    return out


def write_dataset(folder: Path, n_train: int = 24, n_val: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, items in (("train", rows(n_train)), ("val", rows(n_val, seed=1))):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder
