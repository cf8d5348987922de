"""The training config: one YAML per model x method (configs/<model>/<method>.yaml), `key=value` overrides.

Every section forbids unknown keys, so a typo (`train.learning_rate`) or a wrong type (`train.lr=fast`)
stops the run before anything loads, with one line naming the dotted key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from diaguide.errors import ConfigError
from diaguide.peft_methods import NAMES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    name: str = "smollm2-135m"  # bundled name or a local folder (never a hub id)
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 weights on GPU, fp32 on CPU
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    gradient_checkpointing: bool = False
    require_chat_template: bool = True  # instruct models: train in the same turn format they are served in


class LoraSection(_Section):
    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    # "all-linear" = every linear layer of the blocks (PEFT leaves the output head out)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class PrefixSection(_Section):
    # 128 virtual tokens: the ChatGLM-6B P-tuning v2 recipe (PRE_SEQ_LEN=128)
    num_virtual_tokens: int = Field(128, ge=1)
    prefix_projection: bool = False  # P-tuning v2 trains the per-layer prefixes directly (no MLP reparam.)
    encoder_hidden_size: int | None = None


class QuantSection(_Section):
    quant_type: Literal["nf4", "fp4"] = "nf4"  # NF4 + double quantisation: the QLoRA paper's defaults
    double_quant: bool = True
    compute_dtype: Literal["bf16", "fp16", "fp32"] = "bf16"


class MethodSection(_Section):
    name: str = "lora"  # a name of the method table, diaguide.peft_methods
    lora: LoraSection = Field(default_factory=LoraSection)
    prefix: PrefixSection = Field(default_factory=PrefixSection)
    quant: QuantSection = Field(default_factory=QuantSection)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in NAMES:
            raise ValueError(f"Input should be {' or '.join(repr(n) for n in NAMES)}")
        return name


class CohortSection(_Section):
    """The seeded synthetic cohort built when no dataset is given."""

    patients: int = Field(200, ge=1)
    seed: int = 0
    lang: Literal["en", "zh", "mixed"] = "en"
    history: bool = True
    guidance: bool = False  # guideline line in prompts, train/val targets checked (prompts/guidance.py)
    region: Literal["ada", "cds"] = "ada"  # the guideline behind `guidance`
    notes_facts: bool = False  # a line of the facts read in the notes in each prompt (docs/notes.md)


class DataSection(_Section):
    dir: str | None = None  # a dataset folder (train.jsonl, val.jsonl); None -> build `cohort`
    cohort: CohortSection = Field(default_factory=CohortSection)
    max_length: int = Field(1024, ge=8)  # tokens per example; longer prompts lose their beginning
    pack: bool = True
    seq_len: int = Field(2048, ge=8)  # tokens per packed row
    max_examples: int | None = Field(None, ge=1)
    # {action: n}: a train row whose target has a MED line with that action appears n times (rare decisions,
    # e.g. stopping a drug, seen often enough to be learnt); the largest n of a row's actions applies
    oversample: dict[Literal["start", "continue", "adjust", "stop"], int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _oversample_counts(self) -> DataSection:
        bad = {a: n for a, n in self.oversample.items() if n < 1}
        if bad:
            raise ValueError(f"data.oversample counts must be >= 1 (got {bad})")
        return self

    @model_validator(mode="after")
    def _row_fits_example(self) -> DataSection:
        if self.pack and self.seq_len < self.max_length:
            raise ValueError(f"data.seq_len ({self.seq_len}) must be >= data.max_length ({self.max_length})")
        return self


class TrainSection(_Section):
    seed: int = 0
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(10, ge=0)
    max_steps: int = Field(200, ge=1)
    batch_size: int = Field(1, ge=1)  # rows per micro-batch (packed rows are seq_len tokens each)
    grad_accum: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(100, ge=1)
    eval_max_batches: int | None = Field(50, ge=1)
    save_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    progress: bool = True


class Config(_Section):
    model: ModelSection = Field(default_factory=ModelSection)
    method: MethodSection = Field(default_factory=MethodSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)


def _first_error(exc: ValidationError, source: str) -> ConfigError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif "input" in err and not isinstance(err["input"], dict):
        msg = f"{msg} (got {err['input']!r})"
    if len(exc.errors()) > 1:
        msg += f" (+{len(exc.errors()) - 1} more)"
    return ConfigError(msg, source=source, field=key)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=1e-4` -> (["train", "lr"], 0.0001). Values are read as YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("an override must look like key=value (e.g. train.lr=1e-4)", source=text)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    # strings such as 1e-4 (YAML 1.1 reads them as text) are parsed by the typed field they land in
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """A copy of the raw config dict with dotted overrides set (validation happens afterwards)."""
    out = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    for text in overrides or []:
        keys, value = parse_override(text)
        node = out
        for i, k in enumerate(keys[:-1]):
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise ConfigError("is not a section", source="override", field=".".join(keys[: i + 1]))
            node = child
        node[keys[-1]] = value
    return out


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply `key=value` overrides and validate.

    Raises:
        ConfigError: unreadable YAML, an unknown key or a wrong type (one line naming the dotted key).
    """
    raw: dict[str, Any] = {}
    source = str(path) if path else "<defaults>"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("no such config file", source=source)
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {str(exc).splitlines()[0]}", source=source) from None
        if not isinstance(raw, dict):
            raise ConfigError("a config must be a mapping of sections", source=source)
    raw = apply_overrides(raw, overrides)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc, source) from None


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML (written as config.resolved.yaml in every run folder)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
