"""FHIR R4 Bundle -> Visits: one Visit per ambulatory encounter, with the patient's earlier
visits summarised in `history`.

Reads what real generators write: Synthea's longitudinal bundles (tens of MB, mostly Claim and
ExplanationOfBenefit, which are skipped unparsed), US Core bundles, collection / transaction /
batch / searchset bundles, references by `fullUrl` (`urn:uuid:...`, resources without `id`),
relative (`Patient/123`) or absolute references, and contained resources. What the physician
wrote comes from narrative Observations (10154-3 chief complaint, 10164-2 present illness, 11348-0
past history), document Compositions with those sections, and Condition.note; the visit's
language from Patient.communication, else from the share of Chinese in those texts. Resource extraction
lives in `fhir_resources.py` and `fhir_observations.py`, Visit assembly in `fhir_visits.py`;
this module reads the file, indexes the bundle and resolves references. With plans
(`records_from_bundle`), the orders, goals and care plans are also kept for `plans_fhir.py`
(docs/records.md).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from pathlib import Path
from typing import Any

from diaguide.errors import InputError
from diaguide.records import fhir_observations as fo
from diaguide.records import fhir_resources as fr
from diaguide.records.fhir_visits import LAB_WINDOW_DAYS, PatientData, patient_visits
from diaguide.records.history import attach_history
from diaguide.records.schema import Plan, Visit

# read only for a plan (`records_from_bundle`): resources no Visit field comes from, kept raw
PLAN_ONLY = frozenset({"ServiceRequest", "Goal", "CarePlan", "DocumentReference"})
PLAN_ALSO = frozenset({"MedicationRequest", "MedicationStatement", "Composition"})
_PATIENT_REF = re.compile(r"(?:^|/)(Patient/[^/]+)$")


def read_fhir_file(path: str | Path, *, window_days: int = LAB_WINDOW_DAYS) -> tuple[list[Visit], list[str]]:
    """Read one FHIR Bundle file (JSON, optionally gzipped) into Visits.

    Returns:
        (visits, warnings): visits of every patient in the bundle, each with its history;
        one warning line per resource or value that was skipped.

    Raises:
        InputError: the file is missing, empty, not JSON (truncated, binary) or not a Bundle.
    """
    return visits_from_bundle(load_bundle(path), str(path), window_days=window_days)


def read_fhir_records(
    path: str | Path, *, window_days: int = LAB_WINDOW_DAYS, lab_days: int = 30
) -> tuple[list[tuple[Visit, Plan | None]], list[str], list[str]]:
    """`read_fhir_file` with the physician's plan of each visit (`records_from_bundle`)."""
    return records_from_bundle(load_bundle(path), str(path), window_days=window_days, lab_days=lab_days)


def load_bundle(path: str | Path) -> Any:
    """The parsed JSON of a FHIR file (optionally gzipped).

    Raises:
        InputError: the file is missing, empty, or not JSON (truncated, binary).
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
        if exc.msg == "Extra data" and exc.lineno > 1:
            raise InputError("one JSON resource per line (NDJSON), not a FHIR Bundle", source=source) from None
        raise InputError(
            f"not valid JSON (truncated?) at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
        ) from None
    except (UnicodeDecodeError, RecursionError):
        raise InputError("not a JSON text file (binary or not UTF-8)", source=source) from None
    return bundle


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
    people, warnings, _ = _read_bundle(bundle, source, window_days, plans=False)
    return [v for _, visits in people for v in visits], warnings


def records_from_bundle(
    bundle: dict, source: str = "<bundle>", *, window_days: int = LAB_WINDOW_DAYS, lab_days: int = 30
) -> tuple[list[tuple[Visit, Plan | None]], list[str], list[str]]:
    """Each visit of a bundle with the physician's plan read from it (`plans_fhir.py`, docs/records.md).

    Returns:
        (pairs, warnings, problems): a visit whose plan cannot be derived comes with None; `problems` names
        each order or visit the plan derivation could not use (file, resource, field).

    Raises:
        InputError: `bundle` is not a FHIR Bundle.
    """
    from diaguide.records.plans_fhir import patient_plans

    people, warnings, ctx = _read_bundle(bundle, source, window_days, plans=True)
    pairs: list[tuple[Visit, Plan | None]] = []
    problems: list[str] = []
    for p, visits in people:
        pairs += patient_plans(p, visits, ctx, lab_days, problems)
    return pairs, warnings, problems


def _subject(raw: dict) -> str | None:
    for key in ("subject", "patient"):
        value = raw.get(key)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            return value["reference"]
    return None


def _read_bundle(
    bundle: dict, source: str, window_days: int, plans: bool
) -> tuple[list[tuple[PatientData, list[Visit]]], list[str], fr.Ctx]:
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
        if not isinstance(raw, dict):
            continue
        if raw.get("resourceType") not in fr.MODELS and not (plans and raw.get("resourceType") in PLAN_ONLY):
            continue  # Claim, EOB, DELETE requests, OperationOutcome ... never parsed
        request = entry.get("request")
        request_url = request.get("url") if isinstance(request, dict) and isinstance(request.get("url"), str) else None
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        key = index.add(raw, full_url, request_url)
        if raw["resourceType"] != "Medication":  # Medications are read when something refers to them
            used.append((key or f"entry[{i}]", raw))

    ctx = fr.Ctx(source=source, warnings=warnings, resolve=index.resolve)
    patients: dict[int, PatientData] = {}  # id(raw Patient) -> data
    for ident, raw in used:
        if raw["resourceType"] == "Patient":
            m = fr.validate(raw, ctx, ident)
            pid = raw.get("id") or (_tail(ident) or ident)
            patients[id(raw)] = PatientData(pid=str(pid), info=fr.read_patient(m) if m is not None else None)
    pseudo: dict[str, PatientData] = {}

    def owner(subject: str | None, rtype: str, ident: str) -> PatientData | None:
        target = index.resolve(subject)
        if target is not None and id(target) in patients:
            return patients[id(target)]
        if subject and (m := _PATIENT_REF.search(subject)):
            return pseudo.setdefault(m[1], PatientData(pid=m[1].split("/", 1)[1]))
        if len(patients) == 1:
            return next(iter(patients.values()))
        if not patients:
            return pseudo.setdefault("", PatientData(pid=subject or "unknown"))
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
        if rtype in PLAN_ONLY:  # read raw by plans_fhir.py, only for --plans
            if (p := owner(_subject(raw), rtype, ident)) is not None:
                p.plan_raws.append((ident, raw))
            continue
        if rtype in ("Patient", "Encounter") or (m := fr.validate(raw, ctx, ident)) is None:
            continue
        try:
            recs = _records(m, raw, ident, ctx, index, enc_keys, enc_dates)
        except Exception as exc:  # a shape no generator we know writes: one warning, not a lost file
            ctx.warn(rtype, ident, f"could not be read ({type(exc).__name__}: {exc}); resource skipped")
            continue
        if plans and rtype in PLAN_ALSO:  # a cancelled order reads as no medication, yet it can be a stop
            p = owner(recs[0].subject if recs else _subject(raw), rtype, ident)
            if p is not None:
                p.plan_raws.append((ident, raw))
            if not recs or p is None:
                continue
        elif not recs or (p := owner(recs[0].subject, rtype, ident)) is None:
            continue
        kinds = {
            "Condition": p.conditions,
            "Observation": p.obs,
            "Composition": p.obs,
            "AllergyIntolerance": p.allergies,
        }
        kinds.get(rtype, p.meds).extend(recs)

    people = [(p, attach_history(patient_visits(p, ctx, window_days))) for p in [*patients.values(), *pseudo.values()]]
    return people, warnings, ctx


def _records(
    m: Any, raw: dict, ident: str, ctx: fr.Ctx, index: _Index, enc_keys: dict[int, str], enc_dates: dict[str, dt.date]
) -> list[Any]:
    rtype = raw["resourceType"]
    if rtype == "Condition":
        if (r := fr.read_condition(m)) is None:
            return []
        target = index.resolve(r.encounter)
        r.encounter = enc_keys.get(id(target)) if target is not None else None
        return [r]
    if rtype in ("MedicationRequest", "MedicationStatement"):
        return [r] if (r := fr.read_medication(m, ctx, raw)) else []
    if rtype == "AllergyIntolerance":
        return [r] if (r := fr.read_allergy(m)) else []
    recs = fo.read_composition(m) if rtype == "Composition" else fo.read_observation(m, ctx, ident)
    for o in recs:
        target = index.resolve(o.encounter)
        o.encounter = enc_keys.get(id(target)) if target is not None else None
        if o.date is None and o.encounter:
            o.date = enc_dates.get(o.encounter)
    if any(o.date is None for o in recs):
        ctx.warn(rtype, ident, "effective[x]: missing; observation skipped")
        recs = [o for o in recs if o.date is not None]
    return recs
