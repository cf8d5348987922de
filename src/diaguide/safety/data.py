"""The safety module's YAML files, parsed once; a broken file is a ConfigError that names it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from diaguide import clinical_data
from diaguide.errors import ConfigError

RULES_PATH = clinical_data.path("safety/rules.yaml")


@functools.cache
def load_yaml(path: Path) -> dict[str, Any]:
    """A knowledge YAML file, parsed once."""
    return clinical_data.read(path)


@functools.cache
def rules_data() -> dict[str, Any]:
    """safety/rules.yaml, with every per-drug rule checked for its id, severity, message and source.

    Checked once per process: the checker asks for it about a dozen times per visit.
    """
    data = load_yaml(RULES_PATH)
    for i, rule in enumerate(data.get("rules") or []):
        for key in ("id", "severity", "message", "source"):
            if not rule.get(key):
                raise ConfigError(f"missing {key!r}", source=str(RULES_PATH), field=f"rules[{i}]")
        check_message(rule["message"], str(RULES_PATH), f"rules[{i}].message")
    return data


def check_message(message: Any, source: str, field: str) -> None:
    """A message is one English string or a mapping with `en` (and, for Chinese visits, `zh`)."""
    if isinstance(message, dict) and not (isinstance(message.get("en"), str) and message["en"]):
        raise ConfigError("a message mapping needs an 'en' text", source=source, field=field)
    if not isinstance(message, (str, dict)):
        raise ConfigError("a message is a string or an {en, zh} mapping", source=source, field=field)
