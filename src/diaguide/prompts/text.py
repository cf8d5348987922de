"""Small text helpers shared by the prompt renderer and the target writer."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def squash(text: str | None) -> str:
    """One line: runs of whitespace (newlines included) become one space."""
    return _SPACE.sub(" ", text or "").strip()


def shorten(text: str | None, limit: int, ellipsis: str = "…", sentence_ends: str = ".;!?") -> str:
    """`text` on one line, cut to at most `limit` characters (ellipsis included).

    Cuts at the last sentence end in the second half of the budget, else at the last space,
    else mid-word: a clinical note loses its tail, not its opening (which names the problem).
    """
    flat = squash(text)
    if len(flat) <= limit:
        return flat
    budget = max(1, limit - len(ellipsis))
    head = flat[:budget]
    ends = [head.rfind(ch) for ch in sentence_ends]
    cut = max(ends)
    if cut >= budget // 2:
        return head[: cut + 1]
    space = head.rfind(" ")
    if space >= budget // 2:
        head = head[:space]
    return head.rstrip(" ,;，、") + ellipsis


def number(value: float, decimals: int | None = None, strip: bool = True) -> str:
    """A lab or vital value without noise: 8.4, 52, 1.23 (trailing zeros dropped unless `strip`
    is False: HbA1c reads 8.0, never 8)."""
    if decimals is None:
        size = abs(value)
        decimals = 0 if size >= 100 else 1 if size >= 10 else 2
    text = f"{round(value, decimals):.{decimals}f}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def field(text: str | None) -> str:
    """A value that is safe inside a `|`-separated target line ('-' when empty)."""
    flat = squash(text).replace("|", "/").replace("｜", "/")
    return flat or "-"
