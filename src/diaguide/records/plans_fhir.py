"""FHIR R4 -> what the physician did at each visit (docs/records.md, "FHIR bundles").

Medications: the MedicationRequests written at the visit's encounter (its `encounter` reference, else
`authoredOn` inside the encounter's period or on its day) against the list in force just before it
(`plans.medication_actions`). Labs: the ServiceRequests of the encounter; a patient with none in the
bundle gets the lab Observations taken within `lab_days` after the visit, marked "inferred from results".
The HbA1c goal: the latest Goal targeting LOINC 4548-4 set by the visit. Treatment: the encounter's
CarePlan, else a Composition's plan-of-care section (LOINC 18776-5), else the plan section of a note
(DocumentReference, base64 text). Orders that cannot be placed are named in `problems` and left out.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import re
from typing import Any

from diaguide.records import fhir_resources as fr
from diaguide.records import plans as rp
from diaguide.records.fhir_visits import PatientData, medication_of
from diaguide.records.schema import LabOrder, Medication, Plan, Visit
from diaguide.records.units import analyte_for, to_canonical

HBA1C = "4548-4"
PLAN_OF_CARE = "18776-5"
ENDED = ("stopped", "cancelled", "completed")  # an order's status that says it is over
_PLAN_HEADING = re.compile(
    r"^[#\s]*(?:assessment\s*(?:and|&)\s*plan|plan(?:\s+of\s+care)?|处理意见|治疗方案|诊疗计划|处理)\s*[:：]?\s*",
    re.IGNORECASE | re.MULTILINE,
)
_ANY_HEADING = re.compile(r"^\s*#+\s", re.MULTILINE)
OPEN_END = "stopped order without an end date, taken to end at the next visit that writes another drug"
_TAGS = re.compile(r"<[^>]+>")


@dataclasses.dataclass
class _Med:
    """One MedicationRequest (an order) or MedicationStatement (a report of what is taken)."""

    ident: str
    order: bool
    status: str
    medication: Medication
    encounter: str | None  # key of the encounter it was written at
    day: dt.date | None  # the day it was written (authoredOn, else the encounter's day)
    start: dt.date | None
    end: dt.date | None
    open_end: bool  # stopped or completed with no end date


@dataclasses.dataclass
class _Slot:
    """A visit and the encounter it stands for."""

    visit: Visit
    key: str | None
    first: dt.date
    last: dt.date

    def holds(self, encounter: str | None, day: dt.date | None) -> bool:
        """Whether a resource was written at this visit: its encounter, else its day inside the period."""
        if encounter is not None:
            return encounter == self.key
        return day is not None and self.first <= day <= self.last


def patient_plans(
    p: PatientData, visits: list[Visit], ctx: fr.Ctx, lab_days: int, problems: list[str]
) -> list[tuple[Visit, Plan | None]]:
    """Each visit of one patient with its plan (None when nothing of a plan can be derived)."""
    by_vid = {vid: (key, rec) for key, vid, rec in p.encounters}
    keys = {id(ctx.resolve(key)): key for key, _, _ in p.encounters}
    slots = []
    for v in sorted(visits, key=lambda v: v.date):
        key, rec = by_vid.get(v.visit_id, (None, None))
        last = rec.end if rec is not None and rec.end and rec.end >= v.date else v.date
        slots.append(_Slot(v, key, v.date, last))
    raws: dict[str, list[tuple[str, dict]]] = {}
    for ident, raw in p.plan_raws:
        raws.setdefault(raw["resourceType"], []).append((ident, raw))
    dates = {key: rec.date for key, _, rec in p.encounters}
    meds = _medications(raws, ctx, keys, dates, problems)
    stop_at = _open_ends(meds, slots)
    requests = _lab_requests(raws.get("ServiceRequest", []), ctx, keys, problems)
    goals = _goals(raws.get("Goal", []), ctx)
    out: list[tuple[Visit, Plan | None]] = []
    for i, slot in enumerate(slots):
        before, ended, written = _at(i, slot, meds, stop_at, ctx, problems)
        orders = rp.medication_actions(before, written, ended, absent="continue")
        if requests is not None:
            labs = [lab for enc, day, lab in requests if slot.holds(enc, day)]
        else:
            labs = _inferred_labs(p, slot.visit.date, lab_days)
        plan = rp.record_plan(
            medications=orders,
            labs=list({lab.loinc: lab for lab in labs}.values()),
            hba1c_goal=_goal_at(goals, slot.last),
            treatment=_treatment(raws, slot, ctx, keys),
        )
        visit = slot.visit.model_copy(update={"medications": before})  # the visit's own orders are the plan
        if rp.is_empty(plan):
            problems.append(
                f"{ctx.source}: Encounter {slot.visit.visit_id}: no plan derivable (no medication in force or ordered, no lab order, goal or plan text)"
            )
            out.append((visit, None))
        else:
            out.append((visit, plan))
    return out


def _ref(raw: dict, *keys: str) -> str | None:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, list):  # DocumentReference.context.encounter is a list
            value = value[0] if value else None
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            return value["reference"]
    return None


def _encounter(
    raw: dict, rtype: str, ident: str, ctx: fr.Ctx, keys: dict[int, str], problems: list[str], *fields: str
) -> tuple[str | None, bool]:
    """(key of the encounter a resource names, usable): unusable when it names one the bundle does not hold."""
    reference = _ref(raw, *fields)
    if reference is None:
        return None, True
    target = ctx.resolve(reference, raw)
    if target is None or target.get("resourceType") != "Encounter":
        problems.append(
            f"{ctx.source}: {rtype} {ident}: {fields[0]}: refers to {reference}, which is not in this bundle; not used"
        )
        return None, False
    return keys.get(id(target)), True  # an encounter the visits skipped (planned, no date): placed by date


def _medications(
    raws: dict[str, list[tuple[str, dict]]],
    ctx: fr.Ctx,
    keys: dict[int, str],
    dates: dict[str, dt.date],
    problems: list[str],
) -> list[_Med]:
    quiet = fr.Ctx(source=ctx.source, warnings=[], resolve=ctx.resolve)  # fhir.py has already warned
    out: list[_Med] = []
    for rtype in ("MedicationRequest", "MedicationStatement"):
        order = rtype == "MedicationRequest"
        for ident, raw in raws.get(rtype, []):
            status = str(raw.get("status") or "").lower()
            # a cancelled order is read as a stopped one so that it can end a drug (docs/records.md)
            shown = {**raw, "status": "stopped"} if status == "cancelled" else raw
            m = fr.validate(shown, quiet, ident)
            rec = fr.read_medication(m, quiet, shown) if m is not None else None
            if rec is None:
                continue
            enc, usable = _encounter(raw, rtype, ident, ctx, keys, problems, "encounter" if order else "context")
            if not usable:
                continue
            day = fr.to_date(raw.get("authoredOn")) if order else rec.start
            day = day or (dates.get(enc) if enc else None)
            if order and day is None and enc is None:
                problems.append(f"{ctx.source}: {rtype} {ident}: authoredOn, encounter: both missing; order not used")
                continue
            med = medication_of(rec)
            out.append(_Med(ident, order, status, med, enc, day, rec.start or day, rec.end, rec.stopped))
    return out


def _open_ends(meds: list[_Med], slots: list[_Slot]) -> dict[str, int]:
    """ident -> index of the visit a stopped order without an end date is taken to end at: the first later
    visit that writes an order for another drug (Synthea writes a drug it later stops this way). One that
    meets no such visit stays in force: nothing in the record says when it ended."""
    written = [
        {rp.drug_key(o.medication.drug) for o in meds if o.order and slot.holds(o.encounter, o.day)} for slot in slots
    ]
    out: dict[str, int] = {}
    for med in meds:
        if not med.open_end or med.start is None or med.status == "cancelled":
            continue
        key = rp.drug_key(med.medication.drug)
        for i, slot in enumerate(slots):
            if slot.first > med.start and not slot.holds(med.encounter, med.day) and written[i] - {key}:
                out[med.ident] = i
                break
    return out


def _at(
    i: int, slot: _Slot, meds: list[_Med], stop_at: dict[str, int], ctx: fr.Ctx, problems: list[str]
) -> tuple[list[Medication], list[rp.Ended], list[rp.Written]]:
    """(the list in force before visit `i`, what the visit ends, what it writes)."""
    here: list[_Med] = []
    latest: dict[str, _Med] = {}
    for med in sorted(meds, key=lambda m: (m.start or dt.date.min, m.order)):
        if med.order and slot.holds(med.encounter, med.day):
            here.append(med)
        elif _in_force(med, i, slot, stop_at):
            latest[rp.drug_key(med.medication.drug)] = med  # a renewal replaces the order before it
    ended: list[rp.Ended] = []
    for med in latest.values():
        if med.end is not None and slot.first <= med.end <= slot.last:
            ended.append(rp.Ended(med.medication, "end date at the visit"))
        elif med.open_end and stop_at.get(med.ident) == i:
            ended.append(rp.Ended(med.medication, OPEN_END))
    written: list[rp.Written] = []
    seen: dict[tuple[str, str, str], str] = {}
    for med in here:
        key = rp.drug_key(med.medication.drug)
        if med.status in ENDED and key in latest:
            ended.append(rp.Ended(med.medication, f"order at the visit with status {med.status}"))
            continue
        if med.status == "cancelled":
            continue  # a cancelled order of a drug not taken changes nothing
        same = (key, med.medication.dose or "", med.medication.frequency or "")
        if same in seen:
            problems.append(
                f"{ctx.source}: MedicationRequest {med.ident}: medication: duplicate of {seen[same]} "
                "(same drug, dose and frequency at one visit); one kept"
            )
            continue
        seen[same] = med.ident
        written.append(rp.Written(med.medication, rp.ORDERED))
    return [m.medication for m in latest.values()], ended, _merged(written)


def _merged(written: list[rp.Written]) -> list[rp.Written]:
    """Two strengths of one drug written together (500 mg + 1000 mg tablets) are one order of both."""
    out: dict[str, rp.Written] = {}
    for w in written:
        key = rp.drug_key(w.medication.drug)
        if key in out and out[key].medication.dose and w.medication.dose:
            first = out[key].medication
            out[key] = rp.Written(first.model_copy(update={"dose": f"{first.dose} + {w.medication.dose}"}), w.basis)
        else:
            out.setdefault(key, w)
    return list(out.values())


def _in_force(med: _Med, i: int, slot: _Slot, stop_at: dict[str, int]) -> bool:
    """Whether a medication record was in force just before visit `i`."""
    start = med.start or med.day
    if start is None:
        return not med.order  # an undated statement of what the patient takes: taken as current
    # an order from an earlier day; a statement from the visit's day or before (what the patient reports taking)
    if start > slot.first or (med.order and start == slot.first) or med.status == "cancelled":
        return False
    if med.end is not None:
        return med.end >= slot.first
    if med.open_end and med.ident in stop_at:
        return stop_at[med.ident] >= i
    return True


def _loinc(concept: Any) -> tuple[str, str] | None:
    """(LOINC code, display) of a raw CodeableConcept, when it has one."""
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or ():
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            continue
        system = str(coding.get("system") or "")
        if "loinc" in system.lower() or (not system and re.fullmatch(r"\d{1,7}-\d", coding["code"])):
            return coding["code"].strip(), str(coding.get("display") or concept.get("text") or "")
    return None


def _lab_requests(
    raws: list[tuple[str, dict]], ctx: fr.Ctx, keys: dict[int, str], problems: list[str]
) -> list[tuple[str | None, dt.date | None, LabOrder]] | None:
    """(encounter key, day, order) of each lab ServiceRequest; None when the patient has none (labs are then
    inferred from results)."""
    out = []
    for ident, raw in raws:
        if str(raw.get("status") or "").lower() in ("entered-in-error", "revoked") or raw.get("doNotPerform"):
            continue
        code = _loinc(raw.get("code"))
        if code is None:
            continue  # imaging, referrals, procedures: not a lab order
        enc, usable = _encounter(raw, "ServiceRequest", ident, ctx, keys, problems, "encounter")
        if not usable:
            continue
        day = fr.to_date(raw.get("authoredOn") or raw.get("occurrenceDateTime"))
        if day is None and enc is None:
            problems.append(f"{ctx.source}: ServiceRequest {ident}: authoredOn, encounter: both missing; not used")
            continue
        analyte = analyte_for(code[0])
        name = code[1] or (analyte.name if analyte else "")
        out.append((enc, day, LabOrder(loinc=code[0], name=name, basis="ServiceRequest at the visit")))
    return out or None


def _inferred_labs(p: PatientData, day: dt.date, lab_days: int) -> list[LabOrder]:
    """Labs measured within `lab_days` after the visit (not on its day: those are what the visit read)."""
    out: dict[str, LabOrder] = {}
    for o in sorted((o for o in p.obs if o.kind == "lab" and o.date is not None), key=lambda o: o.date):
        if day < o.date <= day + dt.timedelta(days=lab_days) and o.key not in out:
            out[o.key] = LabOrder(loinc=o.key, name=o.name, basis=rp.INFERRED_LABS)
    return list(out.values())


def _goals(raws: list[tuple[str, dict]], ctx: fr.Ctx) -> list[tuple[dt.date | None, float]]:
    """(day set, HbA1c % goal) of each Goal whose target measures LOINC 4548-4."""
    out = []
    for ident, raw in raws:
        if str(raw.get("lifecycleStatus") or "").lower() in ("cancelled", "entered-in-error", "rejected"):
            continue
        for target in raw.get("target") or ():
            if not isinstance(target, dict) or (_loinc(target.get("measure")) or ("",))[0] != HBA1C:
                continue
            value = _goal_value(target)
            if value is None:
                ctx.warnings.append(f"{ctx.source}: Goal {ident}: target.detail: no HbA1c value read; goal not used")
                continue
            out.append((fr.to_date(raw.get("startDate") or raw.get("statusDate")), value))
    return out


def _goal_value(target: dict) -> float | None:
    """The goal in % (NGSP): a quantity ('< 7 %'), or a range's upper end; mmol/mol (IFCC) converted."""
    q = target.get("detailQuantity")
    r = target.get("detailRange")
    if not isinstance(q, dict) and isinstance(r, dict):
        q = r.get("high")
    if not isinstance(q, dict) or not isinstance(q.get("value"), (int, float)):
        return None
    unit = str(q.get("unit") or q.get("code") or "%")
    try:
        value, _ = to_canonical(HBA1C, float(q["value"]), unit)
    except Exception:  # noqa: BLE001 - a unit units.py does not know: the goal is not read
        return None
    return round(value, 1)


def _goal_at(goals: list[tuple[dt.date | None, float]], day: dt.date) -> float | None:
    """The latest goal set by `day`; an undated goal holds for every visit."""
    dated = sorted((g for g in goals if g[0] is not None and g[0] <= day), key=lambda g: g[0])  # type: ignore[arg-type,return-value]
    if dated:
        return dated[-1][1]
    undated = [v for d, v in goals if d is None]
    return undated[-1] if undated else None


def _text(value: Any) -> str:
    """Plain text of a string, a Narrative's xhtml or a CodeableConcept."""
    if isinstance(value, str):
        return " ".join(_TAGS.sub(" ", value).split())
    if isinstance(value, dict):
        if "div" in value:
            return _text(value["div"])
        if value.get("text"):
            return _text(value["text"])
        return next(
            (str(c["display"]) for c in value.get("coding") or () if isinstance(c, dict) and c.get("display")), ""
        )
    return ""


def _careplan_text(raw: dict) -> str:
    title = (
        raw.get("title")
        or raw.get("description")
        or next((t for c in raw.get("category") or () if (t := _text(c))), "")
    )
    steps = []
    for activity in raw.get("activity") or ():
        detail = activity.get("detail") if isinstance(activity, dict) else None
        if isinstance(detail, dict):
            step = _text(detail.get("description")) or _text(detail.get("code"))
            if step:
                steps.append(step)
    text = f"{title}: {'; '.join(steps)}" if title and steps else title or "; ".join(steps)
    return text or _text(raw.get("text"))


def _sections(sections: Any) -> list[dict]:
    out = []
    for section in sections or ():
        if isinstance(section, dict):
            out.append(section)
            out += _sections(section.get("section"))
    return out


def _note_plan(raw: dict) -> str:
    """The plan section of a note's text (base64 or inline); nothing when the note has no plan heading."""
    for content in raw.get("content") or ():
        attachment = content.get("attachment") if isinstance(content, dict) else None
        if not isinstance(attachment, dict) or not str(attachment.get("contentType") or "text/").startswith("text/"):
            continue
        data = attachment.get("data")
        try:
            text = base64.b64decode(data).decode("utf-8") if isinstance(data, str) else ""
        except (binascii.Error, ValueError):
            continue
        headings = list(_PLAN_HEADING.finditer(text))
        if not headings:
            continue
        rest = text[headings[-1].end() :]
        nxt = _ANY_HEADING.search(rest)
        return " ".join((rest[: nxt.start()] if nxt else rest).split())
    return ""


def _treatment(raws: dict[str, list[tuple[str, dict]]], slot: _Slot, ctx: fr.Ctx, keys: dict[int, str]) -> str:
    """The first of: the visit's CarePlan, its Composition's plan-of-care section, its note's plan section."""
    ignore: list[str] = []  # unresolvable references were named for the orders; here the text is just not used

    def at_visit(raw: dict, *fields: str, day: Any = None) -> bool:
        enc, usable = _encounter(raw, "", "", ctx, keys, ignore, *fields)
        return usable and slot.holds(enc, fr.to_date(day))

    plans = [
        _careplan_text(raw)
        for _, raw in raws.get("CarePlan", [])
        if str(raw.get("status") or "") not in ("entered-in-error", "revoked")
        and at_visit(raw, "encounter", day=raw.get("created") or (raw.get("period") or {}).get("start"))
    ]
    if text := "; ".join(t for t in plans if t):
        return text
    for _, raw in raws.get("Composition", []):
        if at_visit(raw, "encounter", day=raw.get("date")):
            for section in _sections(raw.get("section")):
                if (_loinc(section.get("code")) or ("",))[0] == PLAN_OF_CARE and (text := _text(section.get("text"))):
                    return text
    for _, raw in raws.get("DocumentReference", []):
        context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
        day = raw.get("date") or (context.get("period") or {}).get("start")
        if at_visit(context, "encounter", day=day) and (text := _note_plan(raw)):
            return text
    return ""
