"""One FHIR R4 resource at a time: validate it with `fhir.resources` (R4B models) and pull out
what a Visit needs as plain records.

Only the resource types DiaGuide reads are validated (`MODELS`); everything else in a bundle
(Claim, ExplanationOfBenefit, Procedure ... most of a Synthea file) is never parsed. A resource
that fails validation becomes one warning line naming the file, the resource and the field, and
is skipped. Observations are read in `fhir_observations.py`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from diaguide.records import terminology
from diaguide.records.schema import Diagnosis

MODELS: dict[str, type] = {
    m.__name__: m
    for m in (
        Patient,
        Encounter,
        Condition,
        Observation,
        MedicationRequest,
        MedicationStatement,
        AllergyIntolerance,
        Medication,
        Composition,
    )
}

CHIEF_COMPLAINT = "10154-3"
# Clinical-note narratives (LOINC document section codes) -> the Visit field they fill.
NARRATIVES = {"10164-2": "present_illness", "11348-0": "past_history"}
BP_PANELS = ("85354-9", "55284-4", "35094-2")  # BP panel; systolic+diastolic; BP panel (older)
PREGNANCY_STATUS = ("82810-3", "11449-6")
PREGNANT_SNOMED = "77386006"
NOT_PREGNANT_SNOMED = "60001007"
# Analyte keys of units.py that are vital signs, and where they go on a Visit.
VITAL_KEYS = {"systolic_bp", "diastolic_bp", "heart_rate", "weight", "bmi", "height"}
# Observation categories that are neither labs nor the vitals above (questionnaire scores, smoking).
NON_LAB_CATEGORIES = {"survey", "social-history", "exam", "imaging", "procedure", "therapy", "activity", "vital-signs"}
_LOINC_SHAPE = re.compile(r"^\d{1,7}-\d$")
DROP_STATUS = {"entered-in-error", "cancelled"}

Resolve = Callable[[str | None, Any], dict | None]


@dataclasses.dataclass
class Ctx:
    """Where warnings go, and how references resolve, while one bundle is read."""

    source: str
    warnings: list[str]
    resolve: Resolve

    def warn(self, rtype: str, ident: str, message: str) -> None:
        self.warnings.append(f"{self.source}: {rtype} {ident}: {message}")


@dataclasses.dataclass
class PatientRec:
    birth: dt.date | None
    sex: str
    language: str | None = None  # en | zh, from Patient.communication


@dataclasses.dataclass
class EncounterRec:
    date: dt.date
    ambulatory: bool
    reason: str
    subject: str | None
    end: dt.date | None = None  # period.end: orders dated up to it belong to the visit (docs/records.md)


@dataclasses.dataclass
class ConditionRec:
    diagnosis: Diagnosis
    onset: dt.date | None
    abated: dt.date | None
    resolved: bool  # clinicalStatus inactive/resolved/remission
    subject: str | None
    note: str = ""  # Condition.note texts
    encounter: str | None = None  # reference, then the encounter's key once resolved


@dataclasses.dataclass
class ObsRec:
    kind: str  # lab | vital | complaint | pregnancy | narrative
    key: str  # LOINC for labs, vital name for vitals, Visit field for narratives
    date: dt.date | None
    value: float | str | bool
    unit: str
    name: str
    flag: str | None
    subject: str | None
    encounter: str | None


@dataclasses.dataclass
class MedRec:
    text: str
    rxnorm: str | None
    dose: str | None
    frequency: str | None
    start: dt.date | None
    end: dt.date | None
    stopped: bool  # status says it ended, date unknown
    subject: str | None


@dataclasses.dataclass
class AllergyRec:
    substance: str
    rxnorm: str | None
    is_drug: bool
    reaction: str | None
    date: dt.date | None
    subject: str | None


def validate(raw: dict, ctx: Ctx, ident: str) -> Any | None:
    """The validated model of a raw resource, or None (with a warning naming the first bad field)."""
    rtype = raw.get("resourceType", "?")
    try:
        return MODELS[rtype].model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "(resource)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        ctx.warn(rtype, ident, f"{where}: {err.get('msg', 'invalid')}{more}; resource skipped")
    except (ValueError, TypeError) as exc:  # fhir.resources raises these for some malformed shapes
        ctx.warn(rtype, ident, f"invalid resource ({type(exc).__name__}); resource skipped")
    return None


def to_date(value: Any) -> dt.date | None:
    """A FHIR date/dateTime/instant as a date; partial dates (`2020`, `2020-05`) take the first day."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    m = re.match(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", str(value))
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2] or 1), int(m[3] or 1))
    except ValueError:
        return None


def ref(reference: Any) -> str | None:
    return getattr(reference, "reference", None) if reference is not None else None


def concept_text(cc: Any) -> str:
    """Human text of a CodeableConcept: its text, else the first coding's display, else its code."""
    if cc is None:
        return ""
    if cc.text:
        return cc.text.strip()
    for c in cc.coding or ():
        if c.display:
            return c.display.strip()
    for c in cc.coding or ():
        if c.code:
            return c.code.strip()
    return ""


def codes(cc: Any, system: str) -> list[str]:
    """Codes of a CodeableConcept in one code system (by nickname); LOINC also accepts a bare
    `NNNN-N` code without a system, as hand-written records often have."""
    out = []
    for c in (cc.coding or ()) if cc is not None else ():
        if not c.code:
            continue
        name = terminology.system_name(c.system)
        if name == system or (system == terminology.LOINC and not c.system and _LOINC_SHAPE.match(c.code)):
            out.append(c.code.strip())
    return out


_LANGUAGE_WORDS = {"zh": ("chinese", "mandarin", "cantonese", "中文", "汉语", "普通话"), "en": ("english", "英语")}


def _language(cc: Any) -> str | None:
    """`zh` or `en` from a BCP-47 coded language (`zh-CN`, `en-US`) or its text; None otherwise."""
    for c in (cc.coding or ()) if cc is not None else ():
        code = (c.code or "").lower()
        if code[:2] in ("zh", "en"):
            return code[:2]
    text = concept_text(cc).lower()
    return next((lang for lang, words in _LANGUAGE_WORDS.items() if any(w in text for w in words)), None)


def read_patient(m: Patient) -> PatientRec:
    sex = m.gender if m.gender in ("male", "female", "other", "unknown") else "unknown"
    # the preferred language first, then the others in the order written
    spoken = sorted(m.communication or (), key=lambda c: not c.preferred)
    language = next((lang for c in spoken if (lang := _language(c.language))), None)
    return PatientRec(birth=to_date(m.birthDate), sex=sex, language=language)


def note_text(notes: Any) -> str:
    """The texts of a list of Annotations, joined."""
    return " ".join(n.text.strip() for n in notes or () if n.text and n.text.strip())


# Encounter class codes (v3 ActCode and the spellings Synthea and others write) that mean an
# outpatient visit. VR (virtual) is a remote outpatient visit, still a consultation.
_AMB_CLASSES = {"amb", "ambulatory", "outpatient", "wellness", "vr", "virtual", "urgentcare"}
_AMB_TEXT = re.compile(r"ambulatory|outpatient|out-patient|office|clinic|check ?up|follow[- ]?up|consult|well", re.I)
_NON_AMB_CLASSES = {
    "imp",
    "inpatient",
    "obsenc",
    "emer",
    "emergency",
    "acute",
    "nonac",
    "prenc",
    "ss",
    "hh",
    "home",
    "snf",
    "hospice",
}


def read_encounter(m: Encounter, ctx: Ctx, ident: str) -> EncounterRec | None:
    if m.status in DROP_STATUS or m.status == "planned":
        return None
    period = m.period
    date = to_date(period.start if period and period.start else (period.end if period else None))
    if date is None:
        ctx.warn("Encounter", ident, "period.start: missing; encounter skipped")
        return None
    cls = (m.class_fhir.code or "").lower() if m.class_fhir else ""
    if cls in _AMB_CLASSES:
        ambulatory = True
    elif cls in _NON_AMB_CLASSES:
        ambulatory = False
    else:  # no usable class: read the encounter type text
        ambulatory = any(_AMB_TEXT.search(concept_text(t)) for t in (m.type or ()))
    reason = next((concept_text(r) for r in (m.reasonCode or ()) if concept_text(r)), "")
    end = to_date(period.end) if period else None
    return EncounterRec(date=date, ambulatory=ambulatory, reason=reason, subject=ref(m.subject), end=end)


def status_code(cc: Any) -> str:
    for c in (cc.coding or ()) if cc is not None else ():
        if c.code:
            return c.code.lower()
    return (cc.text or "").lower() if cc is not None else ""


def read_condition(m: Condition) -> ConditionRec | None:
    if status_code(m.verificationStatus) in ("entered-in-error", "refuted"):
        return None
    display = concept_text(m.code)
    icd = codes(m.code, terminology.ICD10)
    snomed = codes(m.code, terminology.SNOMED)
    if icd:
        code = terminology.normalise_icd10(icd[0])
        diag = Diagnosis(system="icd10", code=code, display=display, icd10=code)
    elif snomed:
        mapped = next((terminology.snomed_to_icd10(c) for c in snomed if terminology.snomed_to_icd10(c)), None)
        diag = Diagnosis(
            system="snomed", code=snomed[0], display=display, icd10=mapped or terminology.icd10_from_text(display)
        )
    elif display:
        diag = Diagnosis(system="text", code=display, display=display, icd10=terminology.icd10_from_text(display))
    else:
        return None
    onset = to_date(m.onsetDateTime) or (to_date(m.onsetPeriod.start) if m.onsetPeriod else None)
    abated = to_date(m.abatementDateTime) or (to_date(m.abatementPeriod.end) if m.abatementPeriod else None)
    status = status_code(m.clinicalStatus)
    return ConditionRec(
        diagnosis=diag,
        onset=onset or to_date(m.recordedDate),
        abated=abated,
        resolved=status in ("inactive", "resolved", "remission"),
        subject=ref(m.subject),
        note=note_text(m.note),
        encounter=ref(m.encounter),
    )


def _medication_concept(ctx: Ctx, container: Any, cc: Any, reference: Any, raw: dict) -> Any:
    if cc is not None:
        return cc
    target = ctx.resolve(ref(reference), raw)
    if target and target.get("resourceType") == "Medication":
        med = validate(target, ctx, str(ref(reference)))
        return med.code if med is not None else None
    return None


def _dose_and_frequency(dosages: Any) -> tuple[str | None, str | None]:
    for d in dosages or ():
        dose = None
        for dr in d.doseAndRate or ():
            q = dr.doseQuantity
            if q is not None and q.value is not None:
                dose = f"{q.value:g} {q.unit or q.code or ''}".strip()
                break
        freq = None
        rep = d.timing.repeat if d.timing else None
        if rep is not None and rep.frequency and rep.period and rep.periodUnit:
            freq = f"{rep.frequency} per {rep.period:g} {rep.periodUnit}"
        elif d.timing is not None and d.timing.code is not None:
            freq = concept_text(d.timing.code) or None
        if freq is None and d.text:
            freq = d.text.strip()
        return dose, freq
    return None, None


def read_medication(m: Any, ctx: Ctx, raw: dict) -> MedRec | None:
    """MedicationRequest or MedicationStatement -> one medication with its active period."""
    if m.status in ("entered-in-error", "cancelled", "draft", "not-taken"):
        return None
    if getattr(m, "intent", None) in ("proposal",):
        return None
    cc = _medication_concept(ctx, m, m.medicationCodeableConcept, m.medicationReference, raw)
    text = concept_text(cc)
    if not text:
        return None
    start, end = None, None
    if isinstance(m, MedicationRequest):
        dosages = m.dosageInstruction
        start = to_date(m.authoredOn)
        vp = m.dispenseRequest.validityPeriod if m.dispenseRequest else None
        if vp is not None:
            start, end = start or to_date(vp.start), to_date(vp.end)
        subject = ref(m.subject)
    else:
        dosages = m.dosage
        if m.effectivePeriod is not None:
            start, end = to_date(m.effectivePeriod.start), to_date(m.effectivePeriod.end)
        start = start or to_date(m.effectiveDateTime) or to_date(m.dateAsserted)
        subject = ref(m.subject)
    for d in dosages or ():
        bp = d.timing.repeat.boundsPeriod if d.timing and d.timing.repeat else None
        if bp is not None:
            start, end = start or to_date(bp.start), end or to_date(bp.end)
    dose, freq = _dose_and_frequency(dosages)
    rx = codes(cc, terminology.RXNORM)
    return MedRec(
        text=text,
        rxnorm=rx[0] if rx else None,
        dose=dose,
        frequency=freq,
        start=start,
        end=end,
        stopped=m.status in ("stopped", "completed") and end is None,
        subject=subject,
    )


def read_allergy(m: AllergyIntolerance) -> AllergyRec | None:
    if status_code(m.verificationStatus) in ("entered-in-error", "refuted"):
        return None
    if status_code(m.clinicalStatus) in ("inactive", "resolved"):
        return None
    substance = concept_text(m.code)
    if not substance:
        return None
    reaction = None
    for r in m.reaction or ():
        reaction = next((concept_text(x) for x in r.manifestation or () if concept_text(x)), None)
        if reaction:
            break
    rx = codes(m.code, terminology.RXNORM)
    return AllergyRec(
        substance=substance,
        rxnorm=rx[0] if rx else None,
        is_drug="medication" in (m.category or ()) or bool(rx),
        reaction=reaction,
        date=to_date(m.onsetDateTime) or to_date(m.recordedDate),
        subject=ref(m.patient),
    )
