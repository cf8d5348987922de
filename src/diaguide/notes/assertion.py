"""ConText for English and Chinese clinical text: is a mention present, negated, a relative's, past, hypothetical
or only possible? (Harkema et al. 2009; the cues are data in context.yaml, measured in docs/notes.md.)

A text is cut into sentences, each sentence into clauses (the scope of a cue), once; a term found in a clause takes
the assertion of the strongest cue that reaches it: negated, then family, hypothetical, possible, historical.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from diaguide import clinical_data

CONTEXT_YAML = clinical_data.path("notes/context.yaml")
PRIORITY = ("negated", "family", "hypothetical", "possible", "historical")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# sentence ends: Chinese and English stops, line breaks; a full stop only when not inside a number (2.8 mmol/L)
# ("?" is not an end: "?gastroparesis", "胃轻瘫？" mark a possible finding)
_SENTENCE = re.compile(r"[。！!\n；;]+|(?<!\d)\.(?!\d)")
_CLAUSE_ZH = re.compile(r"[，,、]?[，,]")  # a Chinese clause ends at a comma; 、 (enumeration) does not end one


@dataclasses.dataclass(frozen=True)
class Sentence:
    start: int  # offset in the field's text
    text: str
    clauses: tuple[tuple[int, int], ...]  # (start, end) offsets within `text`
    family_section: bool
    cues: tuple[tuple[str, str, int, int], ...]  # (category, direction, start, end) within `text`
    zh: bool


@functools.cache
def _context() -> dict:
    return clinical_data.read(CONTEXT_YAML)


def _alternation(patterns: list[str]) -> re.Pattern[str]:
    return compile_patterns(patterns)


def compile_patterns(patterns: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    """One alternation of clinical-text patterns. ASCII word boundaries: a Chinese character is not a word
    character, so `\\bDKA\\b` finds the DKA of "发生DKA住院"."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE | re.ASCII)


@functools.cache
def _compiled() -> dict:
    ctx = _context()
    cues = []
    for category, directions in ctx["cues"].items():
        for direction, by_lang in directions.items():
            for lang in ("en", "zh"):
                if by_lang.get(lang):
                    cues.append((category, direction, lang, _alternation(by_lang[lang])))
    sections = {kind: _alternation(p["en"] + p["zh"]) for kind, p in ctx["sections"].items()}
    return {
        "cues": cues,
        "pseudo": _alternation(ctx["pseudo"]["en"] + ctx["pseudo"]["zh"]),
        "terminators": {lang: _alternation(ctx["terminators"][lang]) for lang in ("en", "zh")},
        "sections": sections,
        "window": ctx["window"],
    }


def _family_spans(text: str) -> list[tuple[int, int]]:
    """Where a family-history heading's section runs: from the heading to the next heading of any kind."""
    c = _compiled()["sections"]
    heads = sorted(
        [(m.start(), m.end(), kind) for kind, rx in c.items() for m in rx.finditer(text)], key=lambda h: h[0]
    )
    spans = []
    for i, (_start, end, kind) in enumerate(heads):
        if kind == "family":
            spans.append((end, heads[i + 1][0] if i + 1 < len(heads) else len(text)))
    return spans


def _mask(text: str, rx: re.Pattern[str]) -> str:
    """The text with the pseudo-cue phrases blanked out (same length, so offsets hold)."""
    return rx.sub(lambda m: " " * len(m.group(0)), text)


def _clauses(text: str, zh: bool, terminators: dict) -> tuple[tuple[int, int], ...]:
    cuts = {0, len(text)}
    if zh:
        cuts |= {m.end() for m in _CLAUSE_ZH.finditer(text)}
    for lang in ("en", "zh") if zh else ("en",):
        cuts |= {m.start() for m in terminators[lang].finditer(text)}
    ordered = sorted(cuts)
    return tuple((a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b > a)


@functools.lru_cache(maxsize=4096)
def sentences(text: str) -> tuple[Sentence, ...]:
    """A text cut into sentences with their clauses and cues, computed once per text."""
    c = _compiled()
    family = _family_spans(text)
    out = []
    pieces, start = [], 0
    for m in _SENTENCE.finditer(text):
        pieces.append((start, m.start()))
        start = m.end()
    pieces.append((start, len(text)))
    for start, end in pieces:
        chunk = text[start:end]
        if not chunk.strip():
            continue
        zh = bool(_CJK.search(chunk))
        masked = _mask(chunk, c["pseudo"])
        cues = tuple(
            (category, direction, m.start(), m.end())
            for category, direction, lang, rx in c["cues"]
            if lang == "en" or zh
            for m in rx.finditer(masked)
        )
        in_family = any(a <= start < b for a, b in family)
        out.append(Sentence(start, chunk, _clauses(masked, zh, c["terminators"]), in_family, cues, zh))
    return tuple(out)


def assertion_of(sentence: Sentence, start: int, end: int) -> str:
    """How the term at [start, end) of the sentence is asserted."""
    window = _compiled()["window"]["zh" if sentence.zh else "en"]
    clause = next(((a, b) for a, b in sentence.clauses if a <= start < b), (0, len(sentence.text)))
    found = set()
    for category, direction, c_start, c_end in sentence.cues:
        if c_start < clause[0] or c_end > clause[1] or (c_start < end and c_end > start):
            continue  # outside the term's clause, or the term itself (a cue inside a fact's own words)
        before = c_end <= start and start - c_end <= window
        after = c_start >= end and c_start - end <= window
        if (direction in ("forward", "both") and before) or (direction in ("backward", "both") and after):
            found.add(category)
    if sentence.family_section:
        found.add("family")
    return next((p for p in PRIORITY if p in found), "present")


def quote(sentence: Sentence, start: int, end: int, width: int = 36) -> str:
    """The words a term was read in: its clause when that is short, else ~width characters either side of it."""
    text = sentence.text
    a, b = next(((a, b) for a, b in sentence.clauses if a <= start < b), (0, len(text)))
    if b - a > 2 * width or end > b:
        a, b = max(0, start - width), min(len(text), end + width)
    return text[a:b].strip(" ，,、：:;；")
