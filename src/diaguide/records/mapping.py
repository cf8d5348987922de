"""The YAML column mapping of an HIS export: which column holds which Visit field.

A mapping is data, not code: one YAML per hospital export (see `mappings/zh_his.yaml`).
`--mapping zh_his` names a shipped mapping; anything with a slash or a `.yaml` suffix is a path.
The keys under "plan" (this visit's prescription, the medications before it, lab orders, treatment
advice) are read only by `diaguide ingest --plans` (docs/records.md); a file without those columns
still ingests as Visits.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from diaguide.errors import ConfigError
from diaguide.records.schema import Sex, Vitals
from diaguide.records.units import analyte_for

SHIPPED = Path(__file__).parent / "mappings"

# Dates as HIS systems write them; a mapping's own formats are tried first.
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d", "%m/%d/%Y")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DateColumn(_Spec):
    column: str
    formats: list[str] = Field(default_factory=list, description="strptime formats, tried in order")

    @field_validator("formats", mode="before")
    @classmethod
    def _one_format(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class SexColumn(_Spec):
    column: str
    values: dict[str, Sex] = Field(default_factory=dict, description="cell value -> male|female|other|unknown")


class MeasureColumn(_Spec):
    column: str
    unit: str = ""


class ListColumn(_Spec):
    column: str
    delimiter: str = Field(";", description="a regular expression")
    none_values: list[str] = Field(default_factory=list, description="cells meaning 'none' (无, NKDA ...)")


class DiagnosisColumns(_Spec):
    column: str | None = Field(None, description="codes, or 'display (code)' text")
    display_column: str | None = None
    system: str = Field("icd10", description="icd10 | snomed | text")
    delimiter: str = ";"
    text_codes: dict[str, str] = Field(default_factory=dict, description="diagnosis text -> ICD-10 code")
    source: str | None = Field(None, description="where text_codes come from")


class LabOrderColumn(ListColumn):
    codes: dict[str, str] = Field(
        default_factory=dict, description="lab order name -> LOINC, beyond the names of the `labs` columns"
    )


class LabColumn(_Spec):
    loinc: str
    unit: str = Field("", description="unit of the column's values unless a cell names its own")
    name: str | None = None


class Mapping(_Spec):
    """One HIS export layout. Column names are the export's own headers (or JSONL keys)."""

    name: str = ""
    source: str | None = Field(None, description="the hospital system this layout comes from")
    language: Literal["en", "zh"] = "en"
    visit_id: str
    patient_id: str
    date: DateColumn
    patient_name: str | None = Field(None, description="read only to de-identify; never written out")
    identifiers: list[str] = Field(
        default_factory=list, description="columns (ID number, phone, address) read only to de-identify; never written"
    )
    age: str | None = None
    birth_date: DateColumn | None = None
    sex: SexColumn | None = None
    height: MeasureColumn | None = None
    weight: MeasureColumn | None = None
    bmi: str | None = None
    pregnant: str | None = None
    # a text field may join several columns ("现病史", "入院情况", "诊疗过程"), each then headed by its name
    chief_complaint: str | list[str] | None = None
    present_illness: str | list[str] | None = None
    past_history: str | list[str] | None = None
    allergies: ListColumn | None = None
    diagnoses: DiagnosisColumns | None = None
    vitals: dict[str, MeasureColumn] = Field(default_factory=dict, description="Vitals field -> column")
    labs: dict[str, LabColumn] = Field(default_factory=dict, description="column -> LOINC and unit")
    medications: ListColumn | None = None
    # read by `ingest --plans` only (docs/records.md)
    prescription: ListColumn | None = Field(None, description="this visit's prescription (处方, 医嘱, 出院带药)")
    current_medications: ListColumn | None = Field(
        None, description="medications in force before the visit (现用药); else the previous prescription"
    )
    medications_from_text: list[str] = Field(
        default_factory=list, description="free-text columns whose named drugs are the list before the visit"
    )
    lab_orders: LabOrderColumn | None = Field(None, description="lab tests ordered at the visit (检验申请)")
    plan: str | list[str] | None = Field(None, description="treatment advice (处理意见, 治疗方案)")
    path: str = Field("", exclude=True)

    @field_validator(
        "date",
        "birth_date",
        "sex",
        "height",
        "weight",
        "allergies",
        "medications",
        "prescription",
        "current_medications",
        "lab_orders",
        mode="before",
    )
    @classmethod
    def _bare_column(cls, v: object) -> object:
        return {"column": v} if isinstance(v, str) else v

    @field_validator("vitals", mode="before")
    @classmethod
    def _bare_vitals(cls, v: object) -> object:
        if isinstance(v, dict):
            return {k: {"column": c} if isinstance(c, str) else c for k, c in v.items()}
        return v

    @field_validator("vitals")
    @classmethod
    def _known_vitals(cls, v: dict[str, MeasureColumn]) -> dict[str, MeasureColumn]:
        unknown = set(v) - set(Vitals.model_fields)
        if unknown:
            raise ValueError(f"unknown vitals field(s) {sorted(unknown)}; known: {sorted(Vitals.model_fields)}")
        return v

    @field_validator("labs")
    @classmethod
    def _known_labs(cls, v: dict[str, LabColumn]) -> dict[str, LabColumn]:
        for column, lab in v.items():
            if analyte_for(lab.loinc) is None:
                raise ValueError(f"lab column {column!r}: LOINC {lab.loinc} is not an analyte units.py knows")
        return v

    def columns(self) -> list[str]:
        """Every column the mapping reads, in a stable order."""
        cols: list[str | None] = [self.visit_id, self.patient_id, self.date.column, self.patient_name, self.age]
        cols += [self.birth_date.column if self.birth_date else None, self.sex.column if self.sex else None]
        cols += [m.column if m else None for m in (self.height, self.weight)]
        cols += [self.bmi, self.pregnant, *text_columns(self.chief_complaint)]
        cols += [*text_columns(self.present_illness), *text_columns(self.past_history)]
        cols += [self.allergies.column if self.allergies else None]
        if self.diagnoses:
            cols += [self.diagnoses.column, self.diagnoses.display_column]
        cols += [m.column for m in self.vitals.values()]
        cols += list(self.labs)
        cols += [self.medications.column if self.medications else None]
        cols += self.identifiers
        return list(dict.fromkeys(c for c in cols if c))

    def plan_columns(self) -> list[str]:
        """The columns only `ingest --plans` reads; a file may lack them when it is ingested as Visits."""
        cols = [m.column for m in (self.prescription, self.current_medications, self.lab_orders) if m]
        cols += [*self.medications_from_text, *text_columns(self.plan)]
        return list(dict.fromkeys(cols))

    def date_formats(self, spec: DateColumn) -> list[str]:
        return list(dict.fromkeys([*spec.formats, *DEFAULT_DATE_FORMATS]))


def text_columns(spec: str | list[str] | None) -> list[str]:
    """The columns of a text field: none, one, or several."""
    if spec is None:
        return []
    return [spec] if isinstance(spec, str) else list(spec)


def shipped_mappings() -> dict[str, Path]:
    """Name -> path of every mapping shipped with the package."""
    return {p.stem: p for p in sorted(SHIPPED.glob("*.yaml"))}


def load_mapping(name_or_path: str | Path) -> Mapping:
    """Load a mapping from a path or the name of a shipped one (`zh_his`, `en_his`).

    Raises:
        ConfigError: no such mapping, unreadable YAML, or a key or value the model rejects.
    """
    text = str(name_or_path)
    shipped = shipped_mappings()
    if text in shipped:
        path = shipped[text]
    else:
        path = Path(text)
        if not path.exists():
            raise ConfigError(f"no mapping file {text!r}; shipped mappings: {', '.join(shipped)}", source=text)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read mapping: {type(exc).__name__}", source=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError("a mapping must be a YAML mapping of field -> column", source=str(path))
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"], source=str(path), field=field) from None
    mapping.path = str(path)
    mapping.name = mapping.name or path.stem
    return mapping


def parse_date(value: str, formats: list[str]) -> dt.date:
    """The first format that reads the cell; ValueError when none does.

    The message leaves the value out: dates identify patients, and error lines reach logs.
    """
    text = value.strip()
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    # exports often append a time of day: "2023-05-03 09:30:00", "2023-05-03T09:30"
    head = text.replace("T", " ").split(" ")[0]
    if head != text:
        return parse_date(head, formats)
    raise ValueError(f"not a date in any of the formats {', '.join(formats)}")
