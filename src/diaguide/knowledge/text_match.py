"""Does a text mention a condition? Patterns matched clause by clause, minding negation,
family history and past episodes, in English and Chinese.

The patterns come from the YAML knowledge files (guideline.yaml `conditions`, the safety rules);
each list is compiled once into one alternation, and each text is cut into clauses once, because
the engines ask ~30 conditions of the same few texts for every visit.
"""

from __future__ import annotations

import functools
import re

# A negation before a term in the same clause cancels it ("no CAD", "否认冠心病").
_NEGATION = re.compile(
    r"\b(no|not|denies|denied|deny|without|negative for|free of|ruled out|never)\b|无|否认|未见|没有|未发现|排除",
    re.IGNORECASE,
)
_FAMILY = re.compile(
    r"\b(family history|FHx|mother|father|sister|brother|parent)s?\b|家族史|父亲|母亲|父母|兄弟|姐妹|其父|其母",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[.;,:\n。；，：]|\bbut\b|\bhowever\b|但|然而", re.IGNORECASE)
_PAST = re.compile(r"\b(history of|h/o|hx of|prior|previous|past)\b|既往|曾|以前", re.IGNORECASE)
_NO_CAUSE = re.compile(r"无明显诱因|无诱因")  # "without obvious cause" is not a negation of what follows


@functools.lru_cache(maxsize=2048)
def _alternation(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled regular expression for a list of patterns, built once per list.

    Searching one alternation per clause instead of each pattern through `re.search` saves the
    per-call cache look-up of the `re` module (~12,000 a visit before: most of the engines' time).
    """
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


@functools.lru_cache(maxsize=8192)
def _clauses(text: str) -> tuple[str, ...]:
    """A text cut into clauses; a visit's few texts are read by ~30 conditions, so split once."""
    return tuple(_CLAUSE.split(_NO_CAUSE.sub(" ", text)))


def mentions(texts: list[str], patterns: list[str], family: bool = False, current_only: bool = False) -> bool:
    """True when a pattern occurs in a clause that does not negate it.

    `family`: a family member's condition counts too. `current_only`: a past episode
    ("history of gestational diabetes", "既往妊娠期糖尿病史") does not count.
    """
    return _mentions(tuple(texts), tuple(patterns), family, current_only)


# The guideline engine, the safety checker and the complexity score each derive the same visit's
# facts, asking the same questions of the same texts: answer each once.
@functools.lru_cache(maxsize=16384)
def _mentions(texts: tuple[str, ...], patterns: tuple[str, ...], family: bool, current_only: bool) -> bool:
    found = _alternation(patterns)
    if found is None:
        return False
    for text in texts:
        if not found.search(text):  # most conditions are absent from most texts: skip the clauses
            continue
        for clause in _clauses(text):
            for m in found.finditer(clause):
                # a negation before the earliest match also precedes every later one
                before = clause[: m.start()]
                if _NEGATION.search(before):
                    break
                if not family and _FAMILY.search(clause):
                    break
                if current_only and (_PAST.search(before) or "史" in clause[m.end() : m.end() + 8]):
                    continue
                return True
    return False
