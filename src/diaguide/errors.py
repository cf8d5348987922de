"""Project exceptions: each names the input (file, row, field) so a person can act on it."""

from __future__ import annotations


class DiaGuideError(Exception):
    """Base of every error a user may see. `str()` is one line: `source: field: message`."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        super().__init__(self.line())

    def line(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        return ": ".join([*parts, self.message])


class InputError(DiaGuideError):
    """A record, file or request that cannot be read as given."""


class ConfigError(DiaGuideError):
    """A configuration key or value that is wrong."""


class ModelError(DiaGuideError):
    """A model, tokenizer or adapter that cannot be used."""
