"""HIS exports (CSV, JSONL) + a YAML column mapping -> Visits, one row at a time.

Chinese Excel exports arrive as UTF-8 with a BOM, or as GBK/GB18030; both are read. Lab
values are converted to the canonical units of `units.py`. A row that cannot be read (bad
date, implausible or non-numeric value, unknown unit) becomes an `InputError` naming the
file, row and column; the rows around it are read as usual. Rows are turned into Visits
without `history`: grouping a patient's visits is `ingest.py`'s job.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from diaguide.drugs.formulary import drug_class_of
from diaguide.errors import InputError
from diaguide.records import terminology
from diaguide.records.jsonl import json_lines
from diaguide.records.mapping import DiagnosisColumns, Mapping, MeasureColumn, load_mapping, parse_date, text_columns
from diaguide.records.schema import Allergy, Diagnosis, Lab, Medication, Patient, Visit, Vitals
from diaguide.records.units import analyte_for, canonical_loinc, to_canonical

_SAMPLE = 1 << 16  # bytes read to choose the encoding
_NUMBER = re.compile(r"^(?P<cmp>[<>≤≥]=?)?\s*(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>.*)$")
# a dose as prescriptions write it: one strength, a combination's strengths or a range sharing one unit
# ("49/51 mg", "50/1000 mg", "24-26 mg", "5/1000毫克", "10-14U"), in English or Chinese units
_UNIT = r"(?:mg|g|ug|mcg|µg|μg|iu|u|units?|单位|国际单位|毫克|克|微克|ml|毫升|片|粒|支|袋)"
_DOSE = re.compile(rf"(?P<dose>\d+(?:\.\d+)?(?:\s*[/-]\s*\d+(?:\.\d+)?)?\s*{_UNIT})(?![a-z])", re.IGNORECASE)
# where the frequency begins when the dose came first ("1000 mg metformin twice daily")
_FREQUENCY_START = re.compile(
    r"\s(?=(?:qd|bid|tid|qid|qn|qhs|q\d+h|daily|once|twice|three times|every|at bedtime|weekly|with meals|before|after)\b)"
    r"|\s*(?=每日|每天|一日|每晚|每周|睡前|早晚|早餐|餐前|餐后|随餐)",
    re.IGNORECASE,
)
# instructions written between the name and the dose, or instead of one ("per sliding scale", "按血糖调整")
_INSTRUCTION = re.compile(r"\s+(?=(?:(?:as )?per )?sliding scale\b)|\s*(?=按血糖|根据血糖)", re.IGNORECASE)
_ICD10 = re.compile(r"\b([A-TV-Z]\d{2}(?:\.?[0-9A-Z]{1,4})?)\b")  # E11.9, E119, I10
_TRUE = {"1", "true", "yes", "y", "是", "有", "孕", "妊娠"}


@dataclasses.dataclass
class RowResult:
    """One row of an export: a Visit or the error that stopped it, plus names for de-identification."""

    row: int
    visit: Visit | None = None
    error: InputError | None = None
    names: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    warnings: list[str] = dataclasses.field(default_factory=list)
    plan_in: Any = None  # plans_his.PlanInput, read with `plans=True`


def open_text(path: Path) -> io.TextIOWrapper:
    """Open an export as text, choosing UTF-8 (BOM or not), UTF-16 (BOM) or GB18030 from its first bytes.

    Raises:
        InputError: empty file, binary data, or bytes in no supported encoding.
    """
    raw = open(path, "rb")  # noqa: SIM115 - handed to the TextIOWrapper, which closes it
    head = raw.read(_SAMPLE)
    try:
        encoding = _encoding_of(head, path)
    except InputError:
        raw.close()
        raise
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


def _encoding_of(head: bytes, path: Path) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text" export
    if not head.strip():
        raise InputError("empty file", source=str(path))
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):  # xlsx (zip) and xls (OLE) workbooks
        raise InputError("an Excel workbook, not CSV text; save it as CSV (UTF-8) first", source=str(path))
    controls = sum(1 for b in head if b < 0x20 and b not in (9, 10, 13))
    if b"\x00" in head or controls > len(head) // 100:
        raise InputError("binary data, not a CSV/JSONL text export", source=str(path))
    for encoding in ("utf-8", "gb18030"):  # GB18030 is a superset of GBK and GB2312
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=len(head) < _SAMPLE)
            return encoding
        except UnicodeDecodeError:
            continue
    raise InputError("not text in UTF-8, UTF-16 or GB18030/GBK", source=str(path))


def iter_rows(
    path: Path, fmt: str, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, dict[str, Any] | InputError, list[str]]]:
    """(row number, cells or a row error, the columns of the file) for each record of the file.

    CSV rows are numbered as a spreadsheet shows them (the header is row 1); JSONL by line.
    `progress` hears the bytes read so far, every thousand rows.
    """
    with open_text(path) as stream:
        for row, cells, header in _rows(stream, path, fmt):
            if progress and row % 1000 == 0:
                progress(stream.buffer.tell())  # the text layer cannot tell() while iterating
            yield row, cells, header


def _rows(
    stream: io.TextIOWrapper, path: Path, fmt: str
) -> Iterator[tuple[int, dict[str, Any] | InputError, list[str]]]:
    try:
        yield from _csv_rows(stream, path) if fmt == "csv" else _jsonl_rows(stream, path)
    except UnicodeDecodeError:
        raise InputError(f"bytes that are not {stream.encoding} text part-way through", source=str(path)) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", source=str(path)) from None


def _csv_rows(stream: io.TextIOWrapper, path: Path) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    first = stream.readline()
    stream.seek(0)
    delimiter = "\t" if first.count("\t") > first.count(",") else ","  # Excel "text (tab-separated)" exports
    reader = csv.DictReader(stream, delimiter=delimiter)
    header = [(h or "").strip().lstrip("\ufeff") for h in (reader.fieldnames or [])]
    if not any(header):
        raise InputError("no header row", source=str(path))
    reader.fieldnames = header
    for i, row in enumerate(reader, start=2):
        yield i, {k: v for k, v in row.items() if k is not None}, header


def is_json_array(path: Path) -> bool:
    """True when a .json/.jsonl export is one JSON array of records (as CDrugRed ships) rather than JSON Lines."""
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip(codecs.BOM_UTF8).lstrip()
    return head.startswith(b"[")


def _jsonl_rows(stream: io.TextIOWrapper, path: Path) -> Iterator[tuple[int, dict[str, Any] | InputError, list[str]]]:
    header: list[str] = []  # the keys of the first record stand for the file's columns
    if is_json_array(path):  # records numbered from 1 in the array's order
        try:
            items = json.load(stream)
        except json.JSONDecodeError as exc:
            raise InputError(f"not a JSON array: {exc.msg} at line {exc.lineno}", source=str(path)) from None
        lines: Any = enumerate(items, start=1)
    else:
        lines = json_lines(stream)
    for i, obj in lines:
        if isinstance(obj, json.JSONDecodeError):
            yield i, InputError(f"not JSON: {obj.msg}", source=f"{path} line {i}"), header
            continue
        if not isinstance(obj, dict):
            yield i, InputError("not a JSON object", source=f"{path} line {i}"), header
            continue
        header = header or list(obj)
        yield i, obj, header


def read_tabular(
    path: str | Path,
    fmt: str,
    mapping: Mapping | str | Path,
    progress: Callable[[int], None] | None = None,
    plans: bool = False,
) -> Iterator[RowResult]:
    """Each row of a CSV/JSONL export as a Visit (without history) or the error that stopped it.

    Args:
        mapping: a loaded Mapping, a mapping file, or the name of a shipped one (`zh_his`).
        plans: also read the columns of the physician's plan (`plans_his.plan_input`, docs/records.md).

    Raises:
        InputError: file-level problems (empty, binary, not text, a mapped column the file lacks).
        ConfigError: a mapping that cannot be loaded.
    """
    path = Path(path)
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    checked = False
    where = row_word(path, fmt)
    for row, cells, header in iter_rows(path, fmt, progress):
        if not checked and not isinstance(cells, InputError):
            wanted = [*mapping.columns(), *(_plan_columns(mapping) if plans else [])]
            missing = [c for c in dict.fromkeys(wanted) if c not in header]
            if missing:
                raise InputError(
                    f"mapping {mapping.path or mapping.name} names column(s) {', '.join(missing)} "
                    f"that the file does not have",
                    source=str(path),
                )
            checked = True
        if isinstance(cells, InputError):
            yield RowResult(row, error=cells)
            continue
        result = RowResult(row)
        try:
            result.visit = visit_from_row(cells, mapping, result)
        except InputError as exc:
            result.error = InputError(exc.message, source=f"{path} {where} {row}", field=exc.field)
        if plans and result.visit is not None:
            from diaguide.records.plans_his import plan_input

            result.plan_in = plan_input(cells, mapping, f"{path} {where} {row}")
        yield result


def row_word(path: Path, fmt: str) -> str:
    """How a file's records are named in messages: CSV rows, JSONL lines, records of a JSON array."""
    if fmt == "csv":
        return "row"
    return "record" if is_json_array(path) else "line"


def _plan_columns(mapping: Mapping) -> list[str]:
    """With --plans a file must hold the prescription column; the others are read when they are there."""
    return [mapping.prescription.column] if mapping.prescription else []


def text_of(cells: dict[str, Any], spec: str | list[str] | None) -> str:
    """A text field: one column as it is, several joined one a line, each headed by its column's name."""
    columns = text_columns(spec)
    if len(columns) == 1:
        return _cell(cells, columns[0])
    parts = [(c, _cell(cells, c)) for c in columns]
    return "\n".join(f"{c}{'：' if not c.isascii() else ': '}{v}" for c, v in parts if v)


def _cell(cells: dict[str, Any], column: str | None) -> str:
    if not column:
        return ""
    value = cells.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value).strip()


def _number(text: str, column: str) -> tuple[float, str, str]:
    """(value, unit written in the cell, comparator) of a cell such as `7.8`, `7.8 mmol/L`, `<3`."""
    match = _NUMBER.match(unicodedata.normalize("NFKC", text).replace(",", ""))  # full-width digits: ７.８
    if not match:
        raise InputError(f"not a number: {text[:20]!r}", field=column)
    return float(match["num"]), match["unit"].strip(), match["cmp"] or ""


def _measure(cells: dict[str, Any], spec: MeasureColumn | None, analyte: str) -> float | None:
    text = _cell(cells, spec.column if spec else None)
    if not text or spec is None:
        return None
    value, unit, _ = _number(text, spec.column)
    try:
        return round(to_canonical(analyte, value, unit or spec.unit)[0], 2)
    except InputError as exc:
        raise InputError(exc.message, field=spec.column) from None


def visit_from_row(cells: dict[str, Any], m: Mapping, result: RowResult | None = None) -> Visit:
    """One row -> one Visit, via the mapping. Raises InputError naming the column at fault."""
    warnings = result.warnings if result else []
    visit_id, patient_id = _cell(cells, m.visit_id), _cell(cells, m.patient_id)
    for column, value in ((m.visit_id, visit_id), (m.patient_id, patient_id)):
        if not value:
            raise InputError("empty identifier", field=column)
    date = _date(cells, m.date.column, m.date_formats(m.date))
    if result is not None:
        result.names = tuple(n for n in re.split(r"[;,，；]", _cell(cells, m.patient_name)) if n.strip())
        result.identifiers = tuple(v for v in (_cell(cells, c) for c in m.identifiers) if v)

    patient = Patient()
    age_text = _cell(cells, m.age)
    if age_text:
        age, _, _ = _number(age_text.rstrip("岁"), m.age or "")
        if not 0 <= age <= 130:
            raise InputError(f"implausible age {age_text!r}", field=m.age)
        patient.age = int(age)
    elif m.birth_date and _cell(cells, m.birth_date.column):
        born = _date(cells, m.birth_date.column, m.date_formats(m.birth_date))
        years = date.year - born.year - ((date.month, date.day) < (born.month, born.day))
        if not 0 <= years <= 130:
            raise InputError("birth date gives an implausible age", field=m.birth_date.column)
        patient.age = years
    if m.sex and (sex := _cell(cells, m.sex.column)):
        known = m.sex.values.get(sex) or m.sex.values.get(sex.lower())
        if known is None and sex.lower() in ("male", "female", "other", "unknown"):
            known = sex.lower()
        if known is None:
            warnings.append(f"{m.sex.column}: unknown value, read as 'unknown'")
        patient.sex = known or "unknown"
    patient.height_cm = _measure(cells, m.height, "height")
    patient.weight_kg = _measure(cells, m.weight, "weight")
    bmi = _measure(cells, MeasureColumn(column=m.bmi, unit="kg/m2") if m.bmi else None, "bmi")
    if bmi is None and patient.height_cm and patient.weight_kg:
        bmi = round(patient.weight_kg / (patient.height_cm / 100) ** 2, 1)
    patient.bmi = bmi
    diagnoses = _diagnoses(cells, m)
    # a pregnancy code (O00-O48, Z33.1, Z34) says so even when the export has no pregnancy column
    coded = any(d.icd10 and terminology.is_pregnancy_icd10(d.icd10) for d in diagnoses)
    patient.pregnant = _cell(cells, m.pregnant).lower() in _TRUE or coded

    vitals = Vitals(weight_kg=patient.weight_kg, bmi=patient.bmi)
    for field, spec in m.vitals.items():
        analyte = field if analyte_for(field) else ""
        text = _cell(cells, spec.column)
        if text:
            value = _measure(cells, spec, analyte) if analyte else _number(text, spec.column)[0]
            setattr(vitals, field, value)

    try:
        return Visit(
            visit_id=visit_id,
            patient_id=patient_id,
            date=date,
            patient=patient,
            chief_complaint=text_of(cells, m.chief_complaint),
            present_illness=text_of(cells, m.present_illness),
            past_history=text_of(cells, m.past_history),
            allergies=_allergies(cells, m),
            diagnoses=diagnoses,
            vitals=vitals,
            labs=_labs(cells, m, date),
            medications=_medications(cells, m),
            language=m.language,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(err["msg"], field=".".join(str(p) for p in err["loc"])) from None


def _date(cells: dict[str, Any], column: str, formats: list[str]):
    text = _cell(cells, column)
    if not text:
        raise InputError("empty date", field=column)
    try:
        return parse_date(text, formats)
    except ValueError as exc:
        raise InputError(str(exc), field=column) from None


def _items(cells: dict[str, Any], column: str, delimiter: str, none_values: list[str]) -> list[str]:
    text = _cell(cells, column)
    nothing = {v.lower() for v in none_values}
    if not text or text.lower() in nothing:
        return []
    return [item.strip() for item in re.split(delimiter, text) if item.strip() and item.strip().lower() not in nothing]


def _allergies(cells: dict[str, Any], m: Mapping) -> list[Allergy]:
    if not m.allergies:
        return []
    out = []
    for item in _items(cells, m.allergies.column, m.allergies.delimiter, m.allergies.none_values):
        cls = drug_class_of(item)
        out.append(Allergy(substance=item, drug_class=None if cls == "other" else cls))
    return out


def _diagnoses(cells: dict[str, Any], m: Mapping) -> list[Diagnosis]:
    spec = m.diagnoses
    if not spec:
        return []
    codes = _items(cells, spec.column, spec.delimiter, []) if spec.column else []
    displays = _items(cells, spec.display_column, spec.delimiter, []) if spec.display_column else []
    pairs = [
        (codes[i] if i < len(codes) else "", displays[i] if i < len(displays) else "")
        for i in range(max(len(codes), len(displays)))
    ]
    return [_diagnosis(item, display, spec) for item, display in pairs]


def _diagnosis(item: str, display: str, spec: DiagnosisColumns) -> Diagnosis:
    """One diagnosis from a code cell item ("E11.9 2型糖尿病", "2型糖尿病(E11.9)", "44054006") and/or text."""
    if spec.system == "snomed" and (found := re.match(r"\s*(\d{6,18})\b\s*(.*)", item)):
        code = found[1]
        text = display or found[2].strip(" -:：()（）") or terminology.snomed_display(code) or ""
        return Diagnosis(system="snomed", code=code, display=text, icd10=terminology.snomed_to_icd10(code))
    found = _ICD10.search(item) if spec.system == "icd10" else None
    if found:
        code = terminology.normalise_icd10(found[1])
        text = display or re.sub(r"[()（）\[\]]", " ", item.replace(found[1], "")).strip(" -:：")
        return Diagnosis(system="icd10", code=code, display=text, icd10=code)
    if spec.system not in ("icd10", "snomed", "text") and item:
        return Diagnosis(system=spec.system, code=item, display=display)
    # text alone: the mapping's own dictionary first, then the shared recogniser (English)
    text = display or item
    icd10 = spec.text_codes.get(text) or terminology.icd10_from_text(text)
    return Diagnosis(system="text", code=text, display=text, icd10=icd10)


def _labs(cells: dict[str, Any], m: Mapping, date) -> list[Lab]:
    labs = []
    for column, spec in m.labs.items():
        text = _cell(cells, column)
        if not text:
            continue
        value, unit, comparator = _number(text, column)
        try:
            converted, canonical_unit = to_canonical(spec.loinc, value, unit or spec.unit)
        except InputError as exc:
            raise InputError(exc.message, field=column) from None
        analyte = analyte_for(spec.loinc)
        source_unit = unit or spec.unit
        flag = f"censored {comparator}" if comparator else None
        if analyte and source_unit and source_unit.strip() != analyte.unit:
            flag = ", ".join(filter(None, [flag, f"converted from {value:g} {source_unit}"]))
        labs.append(
            Lab(
                loinc=canonical_loinc(spec.loinc),
                name=spec.name or (analyte.name if analyte else column),
                value=round(converted, 2),
                unit=canonical_unit,
                date=date,
                flag=flag,
            )
        )
    return labs


def parse_medication(text: str) -> Medication:
    """`二甲双胍 0.5g bid` / `metformin 1000 mg twice daily` / `Entresto 49/51 mg twice daily` /
    `1000 mg metformin bid` -> drug, class, dose, frequency. The drug is the words before the dose (after it when
    the dose comes first), never a piece of the dose."""
    text = text.strip()
    match = _DOSE.search(text)
    if match is None:
        drug, dose, frequency = text, None, None
    else:
        dose = re.sub(r"\s+", " ", match["dose"]).strip()
        if match.start() > 0:
            drug, frequency = text[: match.start()], text[match.end() :]
        else:  # the dose first: the drug runs to where the frequency begins
            rest = text[match.end() :]
            split = _FREQUENCY_START.search(rest)
            drug, frequency = (rest[: split.start()], rest[split.end() :]) if split else (rest, "")
    # a frequency or an instruction written before the dose belongs with the frequency, not the name
    cut = [
        m.start() for m in (_FREQUENCY_START.search(drug), _INSTRUCTION.search(drug)) if m is not None and m.start() > 0
    ]
    if cut:
        drug, frequency = drug[: min(cut)], f"{drug[min(cut) :].strip()} {(frequency or '').strip()}"
    drug = drug.strip(" ,，:：")
    frequency = (frequency or "").strip(" ,，") or None
    return Medication(drug=drug or text, drug_class=drug_class_of(text), dose=dose, frequency=frequency)


def _medications(cells: dict[str, Any], m: Mapping) -> list[Medication]:
    if not m.medications:
        return []
    items = _items(cells, m.medications.column, m.medications.delimiter, m.medications.none_values)
    return [parse_medication(item) for item in items]
