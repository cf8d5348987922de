"""FHIR R4 Bundle -> Visits: one Visit per ambulatory encounter, with the patient's earlier
visits summarised in `history`.

Reads what real generators write: Synthea's longitudinal bundles (tens of MB, mostly Claim and
ExplanationOfBenefit, which are skipped unparsed), US Core bundles, collection / transaction /
batch / searchset bundles, references by `fullUrl` (`urn:uuid:...`, resources without `id`),
relative (`Patient/123`) or absolute references, and contained resources. Resource extraction
lives in `fhir_resources.py`; this module indexes the bundle and assembles the Visits.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import datetime as dt
import functools
import gzip
import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from diaguide.errors import InputError
from diaguide.records import fhir_resources as fr
from diaguide.records import terminology
from diaguide.records.history import attach_history
from diaguide.records.schema import Allergy, Lab, Medication, Patient, Visit, Vitals

LAB_WINDOW_DAYS = 365  # labs older than a year do not describe the patient at this visit
VITALS_WINDOW_DAYS = 30  # a blood pressure from last season is not today's
PREGNANCY_WINDOW_DAYS = 270  # a pregnancy status older than ~9 months describes a pregnancy now over

_PATIENT_REF = re.compile(r"(?:^|/)(Patient/[^/]+)$")
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(MG|MCG|UG|G|UNT|UNITS?|IU|ML|MG/ML|UNT/ML)\b", re.IGNORECASE)


def read_fhir_file(path: str | Path, *, window_days: int = LAB_WINDOW_DAYS) -> tuple[list[Visit], list[str]]:
    """Read one FHIR Bundle file (JSON, optionally gzipped) into Visits.

    Returns:
        (visits, warnings): visits of every patient in the bundle, each with its history;
        one warning line per resource or value that was skipped.

    Raises:
        InputError: the file is missing, empty, not JSON (truncated, binary) or not a Bundle.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", source=source) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"corrupt gzip file: {exc}", source=source) from None
    if not data.strip():
        raise InputError("empty file", source=source)
    try:
        bundle = json.loads(data)  # bytes in: the json module detects UTF-8/16/32 and a BOM itself
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON (truncated?) at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
        ) from None
    except (UnicodeDecodeError, RecursionError):
        raise InputError("not a JSON text file (binary or not UTF-8)", source=source) from None
    del data
    return visits_from_bundle(bundle, source, window_days=window_days)


@dataclasses.dataclass
class _PatientData:
    pid: str
    info: fr.PatientRec | None = None
    encounters: list[tuple[str, str, fr.EncounterRec]] = dataclasses.field(default_factory=list)
    conditions: list[fr.ConditionRec] = dataclasses.field(default_factory=list)
    obs: list[fr.ObsRec] = dataclasses.field(default_factory=list)
    meds: list[fr.MedRec] = dataclasses.field(default_factory=list)
    allergies: list[fr.AllergyRec] = dataclasses.field(default_factory=list)


class _Index:
    """Reference resolution over one bundle: fullUrl, `Type/id`, absolute URLs, `#contained`."""

    def __init__(self) -> None:
        self.by_ref: dict[str, dict] = {}

    def add(self, raw: dict, full_url: str | None, request_url: str | None) -> str | None:
        rtype, rid = raw.get("resourceType"), raw.get("id")
        keys = []
        if full_url:
            keys.append(full_url)
            tail = _tail(full_url)
            keys.append(f"{rtype}/{tail}" if tail and "/" not in tail else tail)
        if rid:
            keys.append(f"{rtype}/{rid}")
        if request_url and "/" in request_url:  # transaction PUT Patient/123
            keys.append(request_url.split("?")[0].strip("/"))
        for k in keys:
            if k:
                self.by_ref.setdefault(k, raw)
        return next((k for k in keys if k), None)

    def resolve(self, reference: str | None, container: dict | None = None) -> dict | None:
        if not reference:
            return None
        if reference.startswith("#"):
            for c in (container or {}).get("contained") or ():
                if isinstance(c, dict) and c.get("id") == reference[1:]:
                    return c
            return None
        hit = self.by_ref.get(reference)
        if hit is None:
            tail = _tail(reference)
            hit = self.by_ref.get(tail) if tail else None
        return hit


def _tail(url: str) -> str | None:
    """`http://x/fhir/Patient/1/_history/2` -> `Patient/1`; `urn:uuid:abc` -> `abc`."""
    if url.startswith("urn:uuid:") or url.startswith("urn:oid:"):
        return url.rsplit(":", 1)[1]
    parts = url.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def visits_from_bundle(
    bundle: dict, source: str = "<bundle>", *, window_days: int = LAB_WINDOW_DAYS
) -> tuple[list[Visit], list[str]]:
    """Turn one FHIR R4 Bundle (already parsed JSON) into Visits, with history attached.

    Args:
        bundle: the Bundle as a dict (collection, transaction, batch, searchset, document ...).
        source: names the input in warnings (a file path).
        window_days: labs are the latest of each LOINC within this many days before a visit.

    Raises:
        InputError: `bundle` is not a FHIR Bundle.
    """
    if not isinstance(bundle, dict):
        raise InputError(f"not a FHIR Bundle (top-level JSON is a {type(bundle).__name__})", source=source)
    if bundle.get("resourceType") != "Bundle":
        raise InputError(f"not a FHIR Bundle (resourceType={bundle.get('resourceType')!r})", source=source)
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InputError("Bundle.entry is not a list", source=source, field="entry")

    warnings: list[str] = []
    index = _Index()
    used: list[tuple[str, dict]] = []  # (identity for warnings, raw resource)
    for i, entry in enumerate(entries):
        raw = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(raw, dict) or raw.get("resourceType") not in fr.MODELS:
            continue  # Claim, EOB, DELETE requests, OperationOutcome ... never parsed
        request = entry.get("request")
        request_url = request.get("url") if isinstance(request, dict) and isinstance(request.get("url"), str) else None
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        key = index.add(raw, full_url, request_url)
        if raw["resourceType"] != "Medication":  # Medications are read when something refers to them
            used.append((key or f"entry[{i}]", raw))

    ctx = fr.Ctx(source=source, warnings=warnings, resolve=index.resolve)
    patients: dict[int, _PatientData] = {}  # id(raw Patient) -> data
    for ident, raw in used:
        if raw["resourceType"] == "Patient":
            m = fr.validate(raw, ctx, ident)
            pid = raw.get("id") or (_tail(ident) or ident)
            patients[id(raw)] = _PatientData(pid=str(pid), info=fr.read_patient(m) if m is not None else None)
    pseudo: dict[str, _PatientData] = {}

    def owner(subject: str | None, rtype: str, ident: str) -> _PatientData | None:
        target = index.resolve(subject)
        if target is not None and id(target) in patients:
            return patients[id(target)]
        if subject and (m := _PATIENT_REF.search(subject)):
            return pseudo.setdefault(m[1], _PatientData(pid=m[1].split("/", 1)[1]))
        if len(patients) == 1:
            return next(iter(patients.values()))
        if not patients:
            return pseudo.setdefault("", _PatientData(pid=subject or "unknown"))
        ctx.warn(rtype, ident, "subject: does not name a patient of this bundle; resource skipped")
        return None

    enc_keys: dict[int, str] = {}
    for ident, raw in used:
        if raw["resourceType"] == "Encounter" and (m := fr.validate(raw, ctx, ident)) is not None:
            rec = fr.read_encounter(m, ctx, ident)
            if rec is not None and (p := owner(rec.subject, "Encounter", ident)) is not None:
                enc_keys[id(raw)] = ident
                p.encounters.append((ident, raw.get("id") or _tail(ident) or ident, rec))
    enc_dates = {key: rec.date for p in [*patients.values(), *pseudo.values()] for key, _, rec in p.encounters}

    for ident, raw in used:
        rtype = raw["resourceType"]
        if rtype in ("Patient", "Encounter") or (m := fr.validate(raw, ctx, ident)) is None:
            continue
        if rtype == "Condition":
            recs: list[Any] = [r] if (r := fr.read_condition(m)) else []
        elif rtype == "Observation":
            recs = fr.read_observation(m, ctx, ident)
            for o in recs:
                target = index.resolve(o.encounter)
                o.encounter = enc_keys.get(id(target)) if target is not None else None
                if o.date is None:
                    o.date = enc_dates.get(o.encounter) if o.encounter else None
            if any(o.date is None for o in recs):
                ctx.warn(rtype, ident, "effective[x]: missing; observation skipped")
                recs = [o for o in recs if o.date is not None]
        elif rtype in ("MedicationRequest", "MedicationStatement"):
            recs = [r] if (r := fr.read_medication(m, ctx, raw)) else []
        else:
            recs = [r] if (r := fr.read_allergy(m)) else []
        if not recs or (p := owner(recs[0].subject, rtype, ident)) is None:
            continue
        {"Condition": p.conditions, "Observation": p.obs, "AllergyIntolerance": p.allergies}.get(rtype, p.meds).extend(
            recs
        )

    visits: list[Visit] = []
    for p in [*patients.values(), *pseudo.values()]:
        visits.extend(attach_history(_patient_visits(p, ctx, window_days)))
    return visits, warnings


def _patient_visits(p: _PatientData, ctx: fr.Ctx, window_days: int) -> list[Visit]:
    amb = sorted((e for e in p.encounters if e[2].ambulatory), key=lambda e: e[2].date)
    slots: list[tuple[str | None, str, dt.date, str]] = [(key, vid, rec.date, rec.reason) for key, vid, rec in amb]
    if not slots:
        dated = [o.date for o in p.obs if o.date] or [c.onset for c in p.conditions if c.onset]
        if not dated:
            return []
        last = max(dated)
        if p.encounters:
            ctx.warn("Bundle", f"patient {p.pid}", "no ambulatory encounter; one visit made at the latest observation")
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


def _visit(p: _PatientData, s: _Series, enc: str | None, vid: str, date: dt.date, reason: str, window: int) -> Visit:
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

    complaint = next(
        (
            o.value
            for o in reversed(s.by.get(("complaint", fr.CHIEF_COMPLAINT), []))
            if (enc is not None and o.encounter == enc) or o.date == date
        ),
        None,
    )
    info = p.info or fr.PatientRec(birth=None, sex="unknown")
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
        past_history="; ".join(dict.fromkeys(past)),
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
    )


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
    from diaguide.knowledge import formulary  # the safety teammate's module; imported at use

    drug = formulary.lookup(text) or (formulary.lookup(rxnorm) if rxnorm else None)
    if drug is not None:
        return drug.name, drug.drug_class
    return text, formulary.drug_class_of(text)
