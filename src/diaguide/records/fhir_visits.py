"""Assemble Visits from one patient's extracted FHIR records.

One Visit per ambulatory encounter (or one at the latest observation when a bundle has none);
labs are the latest of each LOINC within a window before the visit; vitals prefer the visit's
own encounter; diagnoses, medications and allergies are those active on the visit date.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import datetime as dt
import functools
import re

from pydantic import ValidationError

from diaguide.drugs import formulary
from diaguide.records import fhir_resources as fr
from diaguide.records import terminology
from diaguide.records.schema import Allergy, Lab, Medication, Patient, Visit, Vitals

LAB_WINDOW_DAYS = 365  # labs older than a year do not describe the patient at this visit
VITALS_WINDOW_DAYS = 30  # a blood pressure from last season is not today's
PREGNANCY_WINDOW_DAYS = 270  # a pregnancy status older than ~9 months describes a pregnancy now over
# a strength in a medication's text; a combination's strengths share the unit ("sacubitril 49 MG / valsartan 51 MG"
# is read per ingredient by RxNorm; "Entresto 49/51 MG" as "49/51 mg")
_STRENGTH = re.compile(
    r"(\d+(?:\.\d+)?(?:\s*[/-]\s*\d+(?:\.\d+)?)?)\s*(MG|MCG|UG|G|UNT|UNITS?|IU|ML|MG/ML|UNT/ML)\b", re.IGNORECASE
)


@dataclasses.dataclass
class PatientData:
    pid: str
    info: fr.PatientRec | None = None
    encounters: list[tuple[str, str, fr.EncounterRec]] = dataclasses.field(default_factory=list)
    conditions: list[fr.ConditionRec] = dataclasses.field(default_factory=list)
    obs: list[fr.ObsRec] = dataclasses.field(default_factory=list)
    meds: list[fr.MedRec] = dataclasses.field(default_factory=list)
    allergies: list[fr.AllergyRec] = dataclasses.field(default_factory=list)
    plan_raws: list[tuple[str, dict]] = dataclasses.field(default_factory=list)  # (key, resource), for --plans


def patient_visits(p: PatientData, ctx: fr.Ctx, window_days: int) -> list[Visit]:
    amb = sorted((e for e in p.encounters if e[2].ambulatory), key=lambda e: e[2].date)
    slots: list[tuple[str | None, str, dt.date, str]] = [(key, vid, rec.date, rec.reason) for key, vid, rec in amb]
    if not slots:
        dated = [o.date for o in p.obs if o.date] or [c.onset for c in p.conditions if c.onset]
        if not dated:
            return []
        last = max(dated)
        if p.encounters:
            # no patient id here: warnings reach logs, and the visit itself carries the id
            ctx.warnings.append(
                f"{ctx.source}: Encounter: a patient has no ambulatory encounter; one visit made "
                "at the latest observation"
            )
        slots = [(None, f"{p.pid}-{last.isoformat()}", last, "")]
    series = _Series(p.obs)
    visits = []
    for enc_key, vid, date, reason in slots:
        try:
            visits.append(_visit(p, series, enc_key, vid, date, reason, window_days))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err.get("loc", ()))
            ctx.warn("Encounter", vid, f"{field}: {err.get('msg')}; visit skipped")
    return visits


class _Series:
    """Observations of one patient by kind and key, sorted by date, for windowed look-ups."""

    def __init__(self, obs: list[fr.ObsRec]) -> None:
        self.by: dict[tuple[str, str], list[fr.ObsRec]] = collections.defaultdict(list)
        for o in obs:
            self.by[(o.kind, o.key)].append(o)
        for lst in self.by.values():
            lst.sort(key=lambda o: o.date)
        self.dates = {k: [o.date for o in lst] for k, lst in self.by.items()}

    def keys(self, kind: str) -> list[str]:
        return [k for (kd, k) in self.by if kd == kind]

    def latest(self, kind: str, key: str, date: dt.date, days: int | None, encounter: str | None = None):
        lst = self.by.get((kind, key))
        if not lst:
            return None
        if encounter is not None:
            own = [o for o in lst if o.encounter == encounter]
            if own:
                return own[-1]
        i = bisect.bisect_right(self.dates[(kind, key)], date)
        if i == 0:
            return None
        o = lst[i - 1]
        return o if days is None or (date - o.date).days <= days else None


def _visit(p: PatientData, s: _Series, enc: str | None, vid: str, date: dt.date, reason: str, window: int) -> Visit:
    labs = []
    for loinc in s.keys("lab"):
        o = s.latest("lab", loinc, date, window)
        if o is not None:
            labs.append(Lab(loinc=loinc, name=o.name, value=o.value, unit=o.unit, date=o.date, flag=o.flag))
    vit = {k: s.latest("vital", k, date, VITALS_WINDOW_DAYS, enc) for k in fr.VITAL_KEYS}
    height = s.latest("vital", "height", date, None, enc)
    val = {k: (o.value if o is not None else None) for k, o in vit.items()}

    active, past = [], []
    for c in sorted(p.conditions, key=lambda c: c.onset or dt.date.min):
        if c.onset is not None and c.onset > date:
            continue
        if (c.abated is not None and c.abated <= date) or (c.resolved and c.abated is None):
            if c.diagnosis.icd10:
                when = f", resolved {c.abated.isoformat()}" if c.abated else ", resolved"
                past.append(f"{c.diagnosis.display or c.diagnosis.code} ({c.diagnosis.icd10}{when})")
            continue
        if all((d.system, d.code) != (c.diagnosis.system, c.diagnosis.code) for d in active):
            active.append(c.diagnosis)

    preg = s.latest("pregnancy", fr.PREGNANCY_STATUS[0], date, PREGNANCY_WINDOW_DAYS)
    preg2 = s.latest("pregnancy", fr.PREGNANCY_STATUS[1], date, PREGNANCY_WINDOW_DAYS)
    preg = max((o for o in (preg, preg2) if o is not None), key=lambda o: o.date, default=None)
    pregnant = any(d.icd10 and terminology.is_pregnancy_icd10(d.icd10) for d in active) or bool(preg and preg.value)

    complaint = _text_at(s, "complaint", fr.CHIEF_COMPLAINT, enc, date)
    present = _text_at(s, "narrative", "present_illness", enc, date) or ""
    # a condition's note, written at this visit, tells its story when no narrative does
    notes = [
        f"{c.diagnosis.display or c.diagnosis.code}: {c.note}"
        for c in p.conditions
        if c.note and ((enc is not None and c.encounter == enc) or c.onset == date) and c.note not in present
    ]
    present = "; ".join(x for x in (present, *dict.fromkeys(notes)) if x)
    # past history accumulates: the latest narrative up to this visit, then the resolved conditions
    written = _text_at(s, "narrative", "past_history", enc, date)
    if written is None and (o := s.latest("narrative", "past_history", date, None)) is not None:
        written = str(o.value)
    past = [x for x in dict.fromkeys(past) if not written or x not in written]
    info = p.info or fr.PatientRec(birth=None, sex="unknown")
    texts = [str(complaint or reason or ""), present, *(d.display for d in active)]
    return Visit(
        visit_id=vid,
        patient_id=p.pid,
        date=date,
        patient=Patient(
            age=_age(info.birth, date),
            sex=info.sex,
            height_cm=height.value if height is not None else None,
            weight_kg=val["weight"],
            bmi=val["bmi"],
            pregnant=pregnant,
        ),
        chief_complaint=str(complaint or reason or ""),
        present_illness=present,
        past_history=_joined(written, past),
        allergies=[_allergy(a) for a in p.allergies if a.date is None or a.date <= date],
        diagnoses=active,
        vitals=Vitals(
            systolic_bp=val["systolic_bp"],
            diastolic_bp=val["diastolic_bp"],
            heart_rate=val["heart_rate"],
            weight_kg=val["weight"],
            bmi=val["bmi"],
        ),
        labs=labs,
        medications=_medications(p.meds, date),
        language=info.language or _language_of(texts),
    )


def _joined(written: str | None, resolved: list[str]) -> str:
    """The written past history, then the resolved conditions it does not already name."""
    tail = "; ".join(resolved)
    if not written or not tail:
        return written or tail
    return f"{written}{' ' if written.endswith(('.', '。', ';', '；')) else '; '}{tail}"


def _text_at(s: _Series, kind: str, key: str, enc: str | None, date: dt.date) -> str | None:
    """The latest text of this kind written at this encounter (or, lacking a link, on this date)."""
    return next(
        (
            str(o.value)
            for o in reversed(s.by.get((kind, key), []))
            if (enc is not None and o.encounter == enc) or o.date == date
        ),
        None,
    )


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def _language_of(texts: list[str]) -> str:
    """`zh` when the visit's texts hold more Chinese characters than Latin words, else `en`.

    A Chinese word is one to three characters, so counting characters against words leans to
    `zh` for a Chinese note that names its drugs and labs in English ("HbA1c 8.1%，口干多饮").
    """
    text = " ".join(t for t in texts if t)
    cjk = len(_CJK.findall(text))
    return "zh" if cjk and cjk >= len(_LATIN_WORD.findall(text)) else "en"


def _age(birth: dt.date | None, on: dt.date) -> int | None:
    if birth is None or birth > on:
        return None
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return years if years <= 130 else None


def _active(m: fr.MedRec, date: dt.date) -> bool:
    if m.start is not None and m.start > date:
        return False
    if m.end is not None:
        return m.end >= date
    if m.stopped:  # stopped at an unknown date: trust it only at the visit that ordered it
        return m.start == date
    return True


def medication_of(m: fr.MedRec) -> Medication:
    """One medication record as a Medication: the formulary's name and class, the dose from the text when the
    record has no dose of its own."""
    name, cls = _classify(m.text, m.rxnorm)
    dose = m.dose
    if dose is None and (hit := _STRENGTH.search(m.text)):
        dose = f"{hit[1]} {hit[2].lower()}"
    return Medication(drug=name, drug_class=cls, dose=dose, frequency=m.frequency, since=m.start)


def _medications(meds: list[fr.MedRec], date: dt.date) -> list[Medication]:
    chosen: dict[str, Medication] = {}
    for m in sorted((m for m in meds if _active(m, date)), key=lambda m: m.start or dt.date.min):
        name, cls = _classify(m.text, m.rxnorm)
        dose = m.dose
        if dose is None and (hit := _STRENGTH.search(m.text)):
            dose = f"{hit[1]} {hit[2].lower()}"
        earlier = chosen.get(name)
        since = earlier.since if earlier is not None and earlier.since else m.start
        if earlier is not None and earlier.since == m.start and earlier.dose and dose and earlier.dose != dose:
            dose = f"{earlier.dose} + {dose}"  # two strengths ordered together (500 mg + 1000 mg tablets)
        # a renewal keeps the first start date; its dose and frequency are the current ones
        chosen[name] = Medication(drug=name, drug_class=cls, dose=dose, frequency=m.frequency, since=since)
    return list(chosen.values())


def _allergy(a: fr.AllergyRec) -> Allergy:
    cls = None
    if a.is_drug:
        name, c = _classify(a.substance, a.rxnorm)
        cls = c
    return Allergy(substance=a.substance, drug_class=cls, reaction=a.reaction)


@functools.lru_cache(maxsize=4096)
def _classify(text: str, rxnorm: str | None) -> tuple[str, str]:
    """(generic drug name, drug class) from the formulary; the text itself and `other` when unknown."""
    drug = formulary.lookup(text) or (formulary.lookup(rxnorm) if rxnorm else None)
    if drug is not None:
        return drug.name, drug.drug_class
    return text, formulary.drug_class_of(text)
