"""Prompt templates as data: one YAML per language, read once and checked by pydantic."""

from __future__ import annotations

import functools
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from diaguide.errors import ConfigError


class DisplayUnit(BaseModel):
    """Show a canonical value in a local unit: value / divide_by, rounded."""

    model_config = ConfigDict(extra="forbid")

    unit: str
    divide_by: float
    decimals: int = 1


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str
    header: str
    labels: dict[str, str]
    none: str
    now: str
    sep: str
    words: dict[str, str]
    limits: dict[str, int]
    ellipsis: str
    sentence_ends: str
    lab_names: dict[str, str]
    display_units: dict[str, DisplayUnit] = {}
    abbreviations: dict[str, str] = {}
    instruction: str
    strict: str


LANGUAGES = ("en", "zh")


@functools.cache
def load_template(lang: str) -> Template:
    """The template of a language (`en` or `zh`).

    Raises:
        ConfigError: unknown language, or a template file that does not match `Template`.
    """
    if lang not in LANGUAGES:
        raise ConfigError(f"no prompt template for language {lang!r}; known: {', '.join(LANGUAGES)}", field="language")
    name = f"{lang}.yaml"
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    try:
        return Template.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(first["msg"], source=name, field=where) from None
