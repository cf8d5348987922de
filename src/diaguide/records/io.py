"""Reading one Visit for the commands that work on a single record (`recommend`, `check`).

`fmt="fhir"`: the latest visit of a FHIR Bundle. `fmt="visit"`: a JSON Visit, a
{"visit", "plan"} record (a cohort line), or the first line of a visits.jsonl file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from diaguide.errors import InputError
from diaguide.records.jsonl import json_lines
from diaguide.records.schema import Visit


def load_visit(path: str | Path, fmt: str = "visit") -> Visit:
    """One Visit from a file.

    Raises:
        InputError: missing, empty, binary or malformed file; a record that is not a Visit
            (the line names the field); a FHIR bundle with no ambulatory visit.
    """
    source = str(path)
    if fmt == "fhir":
        from diaguide.records.fhir import read_fhir_file  # the FHIR stack loads only when asked for

        visits, _ = read_fhir_file(path)
        if not visits:
            raise InputError("the bundle has no ambulatory visit to read", source=source)
        return max(visits, key=lambda v: v.date)
    if fmt != "visit":
        raise InputError(f"unknown format {fmt!r}; expected fhir or visit", source=source, field="format")
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        first = text.lstrip().split("\n", 1)[0]
        try:  # visits.jsonl: the first line is the record
            data = json.loads(first)
        except json.JSONDecodeError:
            raise InputError(
                f"not valid JSON (truncated?) at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
            ) from None
    return visit_from_json(data, source)


def visit_from_json(data: Any, source: str = "<visit>") -> Visit:
    """A Visit from parsed JSON: a Visit object or a {"visit": ..., "plan": ...} record."""
    if isinstance(data, dict) and isinstance(data.get("visit"), dict):
        data = data["visit"]
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object (a Visit), got {type(data).__name__}", source=source)
    try:
        return Visit.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InputError(f"{err['msg']}{more}", source=source, field=field) from None


def iter_visits(path: str | Path) -> Iterator[Visit]:
    """Each Visit of a visits.jsonl (or cohort visits.jsonl) file, streamed line by line.

    Raises:
        InputError: a line that is not a Visit, naming the line number.
    """
    _read_head(path)
    with open(path, encoding="utf-8-sig") as stream:
        for i, data in json_lines(stream):
            if isinstance(data, json.JSONDecodeError):
                raise InputError(f"not valid JSON: {data.msg}", source=f"{path} line {i}")
            yield visit_from_json(data, f"{path} line {i}")


def _read_head(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096)
    except IsADirectoryError:
        raise InputError("is a folder, not a file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", source=str(path)) from None
    if not head.strip():
        raise InputError("empty file", source=str(path))
    if b"\x00" in head:
        raise InputError("binary data, not a JSON text file", source=str(path))
    return head


def _read_text(path: str | Path) -> str:
    _read_head(path)
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text (binary data?)", source=str(path)) from None
