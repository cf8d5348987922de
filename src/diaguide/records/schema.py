"""The clinical data model: what every part of DiaGuide reads and writes.

Field names are a contract (see docs/design.md): `Visit` is one line of `visits.jsonl`, `Plan` is
what every engine returns. Lab values are in the canonical units of `units.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from diaguide.drugs import classes as drug_classes
from diaguide.errors import InputError

# the drug classes of drugs/classes.yaml, in its order (docs/design.md, "Drug classes"): a Literal, so pydantic
# refuses any other and `diaguide schema` lists them
DrugClass = Literal[drug_classes.CLASS_IDS]  # type: ignore[valid-type]
DRUG_CLASSES: tuple[str, ...] = DrugClass.__args__  # type: ignore[attr-defined]
GLUCOSE_LOWERING_CLASSES: frozenset[str] = drug_classes.GLUCOSE_LOWERING_CLASSES

Action = Literal["start", "continue", "adjust", "stop"]
# how a fact written in the notes is asserted (ConText, Harkema et al. 2009): only "present" (and, per fact kind,
# "historical" or "family") is acted on; "possible" is asked about (docs/notes.md)
Assertion = Literal["present", "negated", "family", "historical", "hypothetical", "possible"]
Severity = Literal["info", "warning", "critical"]
Language = Literal["en", "zh"]
Sex = Literal["male", "female", "other", "unknown"]


class _Model(BaseModel):
    # Inputs come from many hands: unknown keys are dropped, not fatal. NaN and infinities (Python's
    # JSON reads them) are no measurement, dose or goal: refused, never compared against a threshold.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, allow_inf_nan=False)


class Patient(_Model):
    age: int | None = Field(None, ge=0, le=130, description="years at the visit")
    sex: Sex = "unknown"
    height_cm: float | None = Field(None, gt=0, le=260)
    weight_kg: float | None = Field(None, gt=0, le=400)
    bmi: float | None = Field(None, gt=0, le=100)
    pregnant: bool = False


class Allergy(_Model):
    substance: str
    drug_class: DrugClass | None = None
    reaction: str | None = None


class Diagnosis(_Model):
    system: str = Field(description="icd10 | snomed | text, or a code-system URL")
    code: str
    display: str = ""
    icd10: str | None = Field(None, description="ICD-10 code, mapped from SNOMED where needed")


class Vitals(_Model):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _finite_extras(self) -> Vitals:
        for key, value in (self.model_extra or {}).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"vital {key}: value {value!r} is not a finite number")
        return self

    systolic_bp: float | None = Field(None, description="mmHg")
    diastolic_bp: float | None = Field(None, description="mmHg")
    heart_rate: float | None = Field(None, description="beats/min")
    weight_kg: float | None = None
    bmi: float | None = None


class Lab(_Model):
    loinc: str
    name: str = ""
    value: float
    unit: str = ""
    date: dt.date | None = None
    flag: str | None = Field(None, description="set when a value is implausible or was converted")

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        # named by analyte, so the person fixing the record knows which result is unusable
        if isinstance(data, dict) and not isinstance(data.get("value"), bool):
            try:
                number = float(data.get("value"))
            except (TypeError, ValueError):
                return data
            if not math.isfinite(number):
                name = f" ({data['name']})" if data.get("name") else ""
                raise ValueError(f"lab {data.get('loinc')}{name}: value {data.get('value')!r} is not a finite number")
        return data


class Medication(_Model):
    drug: str
    drug_class: DrugClass = "other"
    dose: str | None = None
    frequency: str | None = None
    since: dt.date | None = None


class VisitSummary(_Model):
    """An earlier visit, condensed to what a later decision needs."""

    visit_id: str | None = None
    date: dt.date
    hba1c: float | None = Field(None, description="% (NGSP)")
    fasting_glucose: float | None = Field(None, description="mg/dL")
    egfr: float | None = Field(None, description="mL/min/1.73m2")
    uacr: float | None = Field(None, description="mg/g")
    ldl: float | None = Field(None, description="mg/dL")
    weight_kg: float | None = None
    systolic_bp: float | None = None
    diagnoses: list[str] = Field(default_factory=list, description="ICD-10 codes")
    medications: list[Medication] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list, description="e.g. hypoglycaemia, medication change")
    chief_complaint: str | None = None


class Visit(_Model):
    visit_id: str
    patient_id: str
    date: dt.date
    patient: Patient = Field(default_factory=Patient)
    chief_complaint: str = ""
    present_illness: str = ""
    past_history: str = ""
    allergies: list[Allergy] = Field(default_factory=list)
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    vitals: Vitals = Field(default_factory=Vitals)
    labs: list[Lab] = Field(default_factory=list)
    medications: list[Medication] = Field(default_factory=list)
    history: list[VisitSummary] = Field(default_factory=list)
    language: Language = "en"

    @field_validator("vitals", mode="before")
    @classmethod
    def _none_vitals(cls, v: Any) -> Any:
        return {} if v is None else v

    def latest_lab(self, *loincs: str) -> Lab | None:
        """The most recent lab among the given LOINC codes (labs without a date count as oldest)."""
        found = [lab for lab in self.labs if lab.loinc in loincs]
        if not found:
            return None
        return max(found, key=lambda lab: lab.date or dt.date.min)

    def icd10_codes(self) -> list[str]:
        codes = []
        for d in self.diagnoses:
            code = d.icd10 or (d.code if d.system.lower() in ("icd10", "icd-10", "icd10cm", "icd-10-cm") else None)
            if code:
                codes.append(code.upper())
        return codes

    def has_diagnosis(self, *prefixes: str) -> bool:
        """True when any ICD-10 code starts with one of the prefixes (`E11`, `N18.4` ...)."""
        return any(code.startswith(p.upper()) for code in self.icd10_codes() for p in prefixes)


class Evidence(_Model):
    """A clinical fact read in the free text of a record, with the words it came from (notes/extract.py)."""

    kind: str = Field(description="the fact: a condition of knowledge/guideline.yaml, or a value (egfr, glucose ...)")
    field: str = Field(description="chief_complaint | present_illness | past_history | diagnosis")
    text: str = Field(description="the clause it was read in, as written")
    term: str = Field("", description="the exact words that named the fact")
    start: int = Field(0, ge=0, description="offset of `term` in the field's text")
    assertion: Assertion = "present"
    value: float | None = Field(None, description="for a value: in the canonical unit of records/units.py")
    unit: str | None = None
    date: dt.date | None = Field(None, description="for a value: when it was measured, when the text says")


class MedicationOrder(_Model):
    drug: str
    drug_class: DrugClass = "other"
    action: Action = "continue"
    dose: str | None = None
    frequency: str | None = None
    reason: str = ""
    evidence: list[Evidence] = Field(default_factory=list, description="text facts the decision rests on")
    basis: str = Field("", description="in a plan read from records: how this order was derived (docs/records.md)")


class LabOrder(_Model):
    loinc: str
    name: str = ""
    reason: str = ""
    basis: str = Field(
        "",
        description="in a plan read from records: how it was derived, e.g. 'inferred from results' (docs/records.md)",
    )


class Finding(_Model):
    rule_id: str
    severity: Severity
    drugs: list[str] = Field(default_factory=list)
    message: str
    source: str = Field(min_length=1)
    evidence: list[Evidence] = Field(default_factory=list, description="text facts the finding rests on")


class Plan(_Model):
    treatment: str = ""
    medications: list[MedicationOrder] = Field(default_factory=list)
    labs: list[LabOrder] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list, description="physician-facing cautions")
    findings: list[Finding] = Field(default_factory=list)
    hba1c_goal: float | None = Field(None, description="% — the glycaemic goal chosen for this patient")
    source: str | None = Field(
        None, description="'record': what the physician did, read from a hospital's records (docs/records.md)"
    )


def kept_glucose_classes(plan: Plan) -> set[str]:
    """Glucose-lowering classes the patient is on after the plan (start/continue/adjust)."""
    return {m.drug_class for m in plan.medications if m.action != "stop" and m.drug_class in GLUCOSE_LOWERING_CLASSES}


class CohortRecord(_Model):
    """One line of a cohort's `visits.jsonl`: the visit and what the physician did."""

    visit: Visit
    plan: Plan
    style: str | None = None


SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "Visit": Visit,
    "Plan": Plan,
    "Finding": Finding,
    "CohortRecord": CohortRecord,
}


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every public model, keyed by model name."""
    return {name: model.model_json_schema() for name, model in SCHEMA_MODELS.items()}


def print_schema(model: str | None = None) -> int:
    """`diaguide schema [MODEL]`: print the JSON Schema(s)."""
    schemas = json_schemas()
    if model:
        if model not in schemas:
            raise InputError(f"unknown model {model!r}; known: {', '.join(schemas)}", field="model")
        print(json.dumps(schemas[model], indent=2, ensure_ascii=False))
    else:
        print(json.dumps(schemas, indent=2, ensure_ascii=False))
    return 0
