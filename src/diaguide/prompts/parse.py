"""Model text -> Plan, tolerantly.

A 135M model writes almost-right text: prose around the answer, lowercase or Chinese keys,
markdown bullets, full-width punctuation (｜：，), lines in another order, a missing class
field, or output cut off by the token limit. `parse_plan` takes what is usable, says what
it skipped in `errors`, and reports `complete=False` when `END` never came and counts the lines it
could not read (`unread`), so a caller can retry instead of passing a half plan off as whole
(`ParseResult.whole`). A JSON Plan is accepted too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import unicodedata

from pydantic import ValidationError

from diaguide import clinical_data
from diaguide.drugs import classes as drug_classes
from diaguide.drugs.formulary import ingredients, lookup
from diaguide.prompts.target import KEYS as TARGET_KEYS
from diaguide.prompts.target import NO_VALUE
from diaguide.prompts.text import squash
from diaguide.records.schema import DRUG_CLASSES, LabOrder, MedicationOrder, Plan
from diaguide.records.units import ANALYTES


@dataclasses.dataclass
class ParseResult:
    """`plan` is None only when nothing usable was found; `complete` is False without `END`; `unread` counts the
    GOAL/MED/LAB/CAUTION lines (or JSON orders) that were there but could not be read, and were skipped."""

    plan: Plan | None
    complete: bool
    errors: list[str] = dataclasses.field(default_factory=list)
    unread: int = 0

    @property
    def whole(self) -> bool:
        """The answer ended with `END` and every line of it was read: nothing the model wrote is missing."""
        return self.complete and self.unread == 0


_KEY_LINE = re.compile(
    r"^\s*(?:[-*+•·]\s*|\d{1,2}[.)、]\s*|#+\s*)?[*_`]*\s*"
    r"(?P<key>[A-Za-z][A-Za-z0-9 _-]{0,24}?|[\u4e00-\u9fff]{1,6})"
    r"\s*[*_`]*\s*[:：]\s*[*_`]*\s*(?P<value>.*)$"
)
_END_LINE = re.compile(r"^[\W_]*(?:end|结束)[\W_]*$", re.IGNORECASE)
_LOINC = re.compile(r"^\d{1,7}-\d$")
# a dose where the drug belongs ("MED: continue | 17 U | basal_insulin"): a number, with or without its unit
_DOSE = re.compile(r"^\d+(?:[.,]\d+)?\s*(?:mg|g|mcg|μg|ug|u|iu|units?|ml|单位|毫克|片|粒|支)?$", re.IGNORECASE)
_SPLIT = re.compile(r"\s*[|｜]\s*")
_LOOSE_SPLIT = re.compile(r"\s*[,，;；]\s*")
_CLOSE_ENOUGH = re.compile(r"[\s_\-./()（）·]+")
_BRACKETED = re.compile(r"[(（]([^)）]+)[)）]")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _compact(text: str) -> str:
    """Lowercase with spaces and joiners removed: `SGLT-2 inhibitor` -> `sglt2inhibitor`."""
    return _CLOSE_ENOUGH.sub("", _nfkc(text).lower())


@functools.lru_cache(maxsize=1)
def _vocab() -> dict[str, dict[str, str]]:
    raw = clinical_data.load("prompts/vocab.yaml")
    keys = {_compact(s): key for key, spellings in raw["keys"].items() for s in [key, *spellings]}
    actions = {_nfkc(s).lower(): action for action, spellings in raw["actions"].items() for s in spellings}
    classes = {_compact(c): c for c in DRUG_CLASSES}
    classes |= {_compact(s): c for c, spellings in drug_classes.spellings().items() for s in spellings}
    labs = {_compact(a.name): a.loincs[0] for a in ANALYTES.values()}
    labs |= {_compact(s): str(code) for code, spellings in raw["labs"].items() for s in spellings}
    not_drug = {w.lower() for words in raw["not_drug_words"].values() for w in words}
    return {"keys": keys, "actions": actions, "classes": classes, "labs": labs, "not_drug": not_drug}


def normalise_action(text: str) -> str | None:
    """`begin`, `Added`, `加用`, `减量` ... -> start|continue|adjust|stop (None when unknown).

    The whole field must be the action (an English word may carry -s/-d/-ed/-ing): a field
    such as `start metformin` also names the drug and is split by `_split_leading_action`.
    """
    word = _nfkc(text).strip().lower().strip(".,:;!。，：；！")
    actions = _vocab()["actions"]
    if word in actions:
        return actions[word]
    for suffix in ("s", "d", "ed", "ped", "ing", "ping"):
        if word.endswith(suffix) and word[: -len(suffix)] in actions and word.isascii():
            return actions[word[: -len(suffix)]]
    return None


def normalise_class(text: str | None, drug: str) -> str:
    """The drug's class in the docs/design.md vocabulary: the formulary's for a single drug it knows (the class it is,
    whatever the line wrote: the default adapter writes "MED: continue | 司美格鲁肽 | other", and the safety checker
    reads semaglutide as a GLP-1 RA either way), else the written class, else `other`. A combination product keeps
    the written class when it names one of the product's own."""
    known = ingredients(drug)
    if len(known) == 1:
        return known[0].drug_class
    found = _vocab()["classes"].get(_compact(text or ""))
    if found and (not known or found in {d.drug_class for d in known}):
        return found
    return known[0].drug_class if known else "other"


def _value(text: str) -> str | None:
    text = squash(text)
    return None if text in ("", NO_VALUE, "—", "无", "none", "None", "n/a", "N/A") else text


def _fields(value: str) -> list[str]:
    parts = _SPLIT.split(value)
    if len(parts) == 1:
        loose = _LOOSE_SPLIT.split(value)
        if len(loose) >= 3:
            parts = loose
    return [p.strip() for p in parts]


def _split_leading_action(field: str) -> tuple[str | None, str]:
    """`start metformin` or `加用二甲双胍` -> (`start`, the drug)."""
    head, _, rest = field.partition(" ")
    action = normalise_action(head) if rest else None
    if action:
        return action, rest.strip()
    for spelling, action in sorted(_vocab()["actions"].items(), key=lambda kv: -len(kv[0])):
        if not spelling.isascii() and field.startswith(spelling) and len(field) > len(spelling):
            return action, field[len(spelling) :].strip()
    return None, field


def _not_a_drug(text: str) -> str | None:
    """What a MED line's drug field holds instead of a drug (a small model's slips: an action on a looping line,
    "MED: continue | continue | adjust", or the dose, a LOINC code or a test moved into it, "MED: continue | 17 U",
    "MED: continue | 4548-4", "MED: continue | FBG"), else None. A name the formulary knows is a drug whatever it
    looks like."""
    if normalise_action(text):
        return "an action"
    text = squash(_nfkc(text))
    if lookup(text) is not None:
        return None
    if _LOINC.match(text):
        return "a LOINC code"
    if _DOSE.match(text):
        return "a dose"
    labs = _vocab()["labs"]
    if _compact(text) in labs or any(_compact(inner) in labs for inner in _BRACKETED.findall(text)):
        return "a laboratory test"  # "FBG", "尿白蛋白/肌酐比", "血脂(LDL-C)"
    if _compact(text) in _vocab()["classes"]:
        return None  # a class: parse_med shows it as one
    return _implausible(text)


# a plausible name the formulary does not know: letters (Latin or Chinese), spaces, hyphens, apostrophes, dots
_NAME_CHARS = re.compile(r"^[A-Za-z\u4e00-\u9fff][A-Za-z\u4e00-\u9fff .'-]*$")
_MIXED_TOKEN = re.compile(r"[A-Za-z]\d|\d[A-Za-z]")


def _implausible(text: str) -> str | None:
    """Why a name the formulary does not know cannot be a drug ("eBP2", "二甲双胍(片)/日", "口干多饮"), else None."""
    if len(text) > 40 or len(text.split()) > 4:
        return "too long for a drug name"
    if _MIXED_TOKEN.search(text) or not _NAME_CHARS.match(text):
        return "not a drug name"
    lowered = text.lower()
    if any(word in lowered for word in _vocab()["not_drug"]):
        return "a symptom or an instruction"
    return None


def _class_only(drug: str) -> str | None:
    """The class a drug field names instead of a drug ("sulfonylurea", "磺脲类"), when it does."""
    if lookup(drug) is not None:
        return None
    return _vocab()["classes"].get(_compact(drug))


def class_label(written: str, cls: str) -> str:
    """How a class-only line is shown: as a class to be named, never as a drug to take."""
    if re.search(r"[\u4e00-\u9fff]", written):
        return f"{written}（药物类别，请指明具体药物）"
    return f"{written} (a class — name the drug)"


def parse_med(value: str) -> MedicationOrder:
    """`action | drug | class | dose | frequency | reason`, tolerating a missing or moved field.

    Raises:
        ValueError: no drug named (nothing, an action, a dose, a LOINC code or a test where the drug belongs).
    """
    fields = _fields(value)
    action = None
    for i, f in enumerate(fields):
        action = normalise_action(f) if f else None
        if action:
            del fields[i]
            break
    if action is None and fields:
        action, fields[0] = _split_leading_action(fields[0])
    if not fields or not _value(fields[0]):
        raise ValueError("no drug named")
    wrong = _not_a_drug(fields[0])
    if wrong:
        raise ValueError(f"no drug named ({squash(fields[0])[:40]!r} is {wrong})")
    drug, rest = squash(fields[0]), fields[1:]
    named_class = _class_only(drug)
    given_class = None
    if rest:
        head = rest[0]
        # a field that starts with a digit is the dose: the class was left out
        if _compact(head) in _vocab()["classes"] or not re.match(r"\s*\d", _nfkc(head)):
            given_class = rest.pop(0)
    dose = _value(rest.pop(0)) if rest else None
    frequency = _value(rest.pop(0)) if rest else None
    reason = _value(" ".join(rest)) or ""
    if named_class is not None:
        drug, given_class = class_label(drug, named_class), named_class
    return MedicationOrder(
        drug=drug,
        drug_class=named_class or normalise_class(given_class, drug),  # type: ignore[arg-type]
        action=action or "continue",
        dose=dose,
        frequency=frequency,
        reason=reason,
    )


def parse_lab(value: str) -> LabOrder:
    """`LOINC | name | reason`; a known test name without a code gets its LOINC code.

    Raises:
        ValueError: neither a LOINC code nor a known test name.
    """
    fields = [f for f in _fields(value) if f]
    code = next((f for f in fields if _LOINC.match(_nfkc(f))), None)
    if code is not None:
        fields.remove(code)
        code = _nfkc(code)
    name = fields.pop(0) if fields else ""
    if code is None:
        code = _vocab()["labs"].get(_compact(name))
    if code is None:
        raise ValueError(f"no LOINC code and unknown test name {name[:40]!r}")
    return LabOrder(loinc=code, name=_value(name) or "", reason=_value(" ".join(fields)) or "")


_GOAL_NUMBER = re.compile(r"(?:(?P<lt>[<≤]|below|under|低于|小于|以下)\s*)?(?P<n>\d+(?:\.\d+)?)", re.IGNORECASE)
_GOAL_IN_TEXT = re.compile(r"(?:hba1c|a1c|糖化血红蛋白)\s*(?:goal|target|目标)?\s*[<≤＜]\s*(\d+(?:\.\d+)?)\s*[%％]",
                           re.IGNORECASE)  # fmt: skip


def parse_goal(value: str) -> float | None:
    """`HbA1c <7.0%` -> 7.0; `-`/`none` -> None. Raises ValueError for an implausible goal."""
    text = re.sub(r"hba1c|a1c", " ", _nfkc(value), flags=re.IGNORECASE)
    numbers = [(m.group("lt") is not None, float(m.group("n"))) for m in _GOAL_NUMBER.finditer(text)]
    if not numbers:
        return None
    goal = next((n for lt, n in numbers if lt), numbers[0][1])
    # ADA §6 / CDS goals run 6.5-8.5% (older adults up to 9%); outside 5-10% is not a goal.
    if not 5.0 <= goal <= 10.0:
        raise ValueError(f"implausible HbA1c goal {goal:g}")
    return goal


_PLAN_KEYS = {"treatment", "medications", "labs", "prompts", "hba1c_goal"}


def without_echo(text: str, prompt: str) -> str:
    """The answer without the lines it copied from its prompt. A base model often writes its prompt back
    (`Medications: metformin 500 mg` ...), and `medications` is a spelling the parser takes for MED: read as the
    model's answer, the copied list would be scored as the model continuing it. Dropped: the lines at the top of
    the answer that equal lines of the prompt (its format example and END included), and any later line that
    equals one of the prompt's record lines (not a line of the target format, which an answer may well repeat).
    Line ends are kept, so a cut-off last line stays cut off."""
    copied = {line.strip() for line in prompt.splitlines() if line.strip()}
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].strip() in copied):
        start += 1  # the prompt written back from the top, its format example and END included
    data = copied - {line for line in copied if _target_line(line)}
    return "".join(line for line in lines[start:] if line.strip() not in data)


def _target_line(line: str) -> bool:
    """A line in the target format itself (`MED: ...`, `END`): a prompt may show one as an example of the format,
    and an answer that writes it is answering, not copying."""
    key = line.split(":", 1)[0]
    return key in TARGET_KEYS and (key == "END" or ":" in line)


def _from_json(text: str) -> ParseResult | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("plan"), dict):
        data = data["plan"]
    if not isinstance(data, dict) or not _PLAN_KEYS & data.keys():
        return None
    errors: list[str] = []
    meds = []
    for i, m in enumerate(data.get("medications") or []):
        if not isinstance(m, dict) or not m.get("drug"):
            errors.append(f"medications[{i}]: no drug named, skipped")
            continue
        m = dict(m)
        m["action"] = normalise_action(str(m.get("action") or "")) or "continue"
        m["drug_class"] = normalise_class(m.get("drug_class"), str(m["drug"]))
        meds.append(m)
    data = {**data, "medications": meds, "findings": []}  # findings come from the checker, never the model
    try:
        return ParseResult(Plan.model_validate(data), True, errors, unread=len(errors))
    except ValidationError as exc:
        first = exc.errors()[0]
        return ParseResult(None, False, [f"JSON plan: {'.'.join(map(str, first['loc']))}: {first['msg']}"])


def parse_plan(text: str | None) -> ParseResult:
    """Read a Plan from model output (the target format of `target.py`, or JSON).

    Prose before and after is ignored, lines may come in any order, keys in any case or in
    Chinese. Without `END` the output counts as truncated: `complete=False`, and a last line
    that does not end in a newline is dropped as cut off.
    """
    text = text or ""
    if not text.strip():
        return ParseResult(None, False, ["empty output"])
    as_json = _from_json(text)
    if as_json is not None and as_json.plan is not None:
        return as_json
    return _from_lines(text, as_json.errors if as_json else [])


def _from_lines(text: str, errors: list[str]) -> ParseResult:
    lines = text.splitlines()
    items: list[tuple[int, str, str]] = []
    complete = False
    for n, line in enumerate(lines):
        if _END_LINE.match(line):
            complete = True
            break
        m = _KEY_LINE.match(line)
        key = _vocab()["keys"].get(_compact(m.group("key"))) if m else None
        if key == "END":
            complete = True
            break
        if key:
            items.append((n, key, m.group("value").strip().rstrip("*_`").strip()))  # type: ignore[union-attr]
    if not complete:
        errors.append("no END line: output incomplete")
        last = max((n for n, line in enumerate(lines) if line.strip()), default=-1)
        if not text.endswith(("\n", "\r")) and items and items[-1][0] == last:
            items.pop()
            errors.append(f"line {last + 1}: cut off, dropped")
    plan, unread = _assemble(items, errors)
    return ParseResult(plan, complete, errors, unread=unread)


def _assemble(items: list[tuple[int, str, str]], errors: list[str]) -> tuple[Plan | None, int]:
    """The plan of the keyed lines (None when nothing usable) and how many of them could not be read."""
    goal, treatment, meds, labs, cautions = None, [], [], [], []
    unread = 0
    seen: set[tuple[str, ...]] = set()
    for n, key, value in items:
        where = f"line {n + 1}"
        try:
            if key == "GOAL":
                goal = goal if goal is not None else parse_goal(value)
            elif key == "TREATMENT" and _value(value):
                treatment.append(squash(value))
            elif key == "MED":
                med = parse_med(value)
                ident = ("MED", med.action, med.drug.lower())
                if ident not in seen:  # small models loop: one line repeated is one order
                    seen.add(ident)
                    meds.append(med)
            elif key == "LAB":
                lab = parse_lab(value)
                if ("LAB", lab.loinc) not in seen:
                    seen.add(("LAB", lab.loinc))
                    labs.append(lab)
            elif key == "CAUTION" and _value(value) and squash(value) not in cautions:
                cautions.append(squash(value))
        except (ValueError, ValidationError) as exc:
            message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            errors.append(f"{where}: {key}: {message}")
            unread += 1
    text = " ".join(treatment)
    if goal is None and text:
        found = _GOAL_IN_TEXT.search(_nfkc(text))
        goal = float(found.group(1)) if found and 5.0 <= float(found.group(1)) <= 10.0 else None
    if goal is None and not (text or meds or labs or cautions):
        errors.append("no GOAL, TREATMENT, MED, LAB or CAUTION line found")
        return None, unread
    return Plan(treatment=text, medications=meds, labs=labs, prompts=cautions, hba1c_goal=goal), unread
