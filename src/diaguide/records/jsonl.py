"""Reading JSON Lines files (visits.jsonl, cohort and dataset splits) one line at a time.

Every reader of a JSONL file numbers lines the same way (from 1, as editors do) and skips
blank lines; what it does with a line that is not JSON (stop, or note it and go on) and how it
words the error stays with the caller, so only the decoding lives here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def json_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any | json.JSONDecodeError]]:
    """(line number, decoded value) for each non-blank line; the JSONDecodeError in place of a
    value when the line is not JSON, so the caller can name the line and carry on."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            value = exc
        yield number, value
