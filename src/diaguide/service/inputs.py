"""Limits on what a request may carry, checked before anything reads it (docs/security.md, "Input limits").

JSON nested deeper than `MAX_DEPTH`, NUL bytes and unpaired UTF-16 surrogates are refused with
the path of the first offender. None of them occurs in a real FHIR resource, clinical note or
login, and each would otherwise fail later and deeper as a 500: Python's recursion limit,
PostgreSQL's text type (no NUL), UTF-8 encoding (no lone surrogate).
"""

from __future__ import annotations

import json
from typing import Any

from diaguide.errors import InputError

# FHIR R4 resources nest about 10 levels, a Bundle of them about 15; 64 leaves room for extensions
MAX_DEPTH = 64


def bad_text(text: str) -> str | None:
    """Why `text` cannot be stored or encoded, or None when it can."""
    if "\x00" in text:
        return "contains a NUL byte"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode)"
    return None


def storable(text: str, limit: int) -> str:
    """`text` with NUL bytes and lone surrogates escaped, cut to `limit`: for a record that must be
    written whatever the request held (an audit record's route)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


def check_text(text: str, field: str, source: str | None = None) -> str:
    """`text` itself, or an InputError naming `field`."""
    problem = bad_text(text)
    if problem:
        raise InputError(problem, source=source, field=field)
    return text


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_json(value: Any, source: str) -> Any:
    """`value` (parsed JSON) itself, or an InputError naming the first string or level it cannot have.

    Iterative, so a deep document is refused by the depth limit, never by the interpreter's stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, path or "(top level)", source)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise InputError(f"JSON nested deeper than {MAX_DEPTH} levels", source=source, field=path or None)
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    check_text(key, _join(path, "(a key)"), source)
                stack.append((child, _join(path, key), depth + 1))
    return value


def parse_json(raw: bytes | str, source: str, invalid: str = "not valid JSON") -> Any:
    """Parse a request body or pasted text and apply `check_json`; an InputError (`invalid` when the
    text is not JSON at all) for anything unusable."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise InputError(f"JSON nested deeper than {MAX_DEPTH} levels", source=source) from None
    except (ValueError, UnicodeDecodeError):
        raise InputError(invalid, source=source) from None
    return check_json(value, source)
