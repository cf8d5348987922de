"""`diaguide ingest`: FHIR bundles or HIS exports -> visits.jsonl, one Visit per line.

Streaming: a FHIR file is read, written and dropped before the next one. HIS rows are
converted one at a time and parked in a temporary file with an index of byte offsets per
patient; then each patient's visits are read back, given their history and written. Memory
holds one patient's visits and the index, never the input. Problems are one line each on
stderr (file, row, field); the good rows and files are written all the same, and the exit
status is 1 when anything was rejected.

With `plans`, each line is a `{visit, plan}` record (docs/records.md): the physician's plan read from
the record, the visit's medication list the one in force before it. Problems met while deriving plans
(an order without a date, a reference to an encounter the bundle lacks, a prescription that cannot be
read, a duplicate order) are named one per line and counted; a visit whose plan cannot be derived is
named, counted and not written.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from tqdm import tqdm

from diaguide.errors import ConfigError, InputError
from diaguide.records.deid import Deidentifier
from diaguide.records.mapping import Mapping, load_mapping, shipped_mappings
from diaguide.records.schema import CohortRecord, Plan, Visit

SALT_ENV = "DIAGUIDE_DEID_SALT"
LARGE_INPUT = 8 << 20  # bytes; below this a progress bar only flickers
SHOWN_WARNINGS = 20  # warnings printed one per line; the rest are counted in the summary
SUFFIXES = {"fhir": {".json", ".gz"}, "csv": {".csv", ".tsv", ".txt"}, "jsonl": {".jsonl", ".ndjson", ".json"}}


@dataclasses.dataclass
class _Run:
    out: IO[str]
    deid: Deidentifier | None
    files: int = 0
    files_failed: int = 0
    rows_failed: int = 0
    visits: int = 0
    warnings: int = 0
    plans: bool = False
    lab_days: int = 30
    plan_problems: int = 0
    no_plan: int = 0

    def plan_problem(self, line: str) -> None:
        """A problem met deriving plans: counted; the first SHOWN_WARNINGS are shown."""
        self.plan_problems += 1
        if self.plan_problems <= SHOWN_WARNINGS:
            tqdm.write(f"plan: {line}", file=sys.stderr)

    def problem(self, line: str) -> None:
        tqdm.write(line, file=sys.stderr)  # above the progress bar, when there is one

    def warn(self, line: str) -> None:
        self.warnings += 1
        if self.warnings <= SHOWN_WARNINGS:
            tqdm.write(f"warning: {line}", file=sys.stderr)

    def crashed(self, path: Path, exc: Exception) -> None:
        """A bug met on one file: reported, and the other files still read (DIAGUIDE_DEBUG re-raises)."""
        if os.environ.get("DIAGUIDE_DEBUG"):
            raise exc
        self.files_failed += 1
        self.problem(f"{path}: internal error reading this file ({type(exc).__name__}); the other files go on")

    def write(
        self, visit: Visit, names: Iterable[str] = (), identifiers: Iterable[str] = (), plan: Plan | None = None
    ) -> None:
        if self.deid is not None:
            if plan is not None and plan.treatment:
                text = self.deid.scrub(
                    plan.treatment,
                    patient_id=visit.patient_id,
                    known_names=list(names),
                    identifiers={visit.patient_id, visit.visit_id},
                    known_identifiers=list(identifiers),
                )
                plan = plan.model_copy(update={"treatment": text})
            visit, _ = self.deid.deidentify_visit(visit, known_names=names, known_identifiers=identifiers)
        line = visit.model_dump_json() if plan is None else CohortRecord(visit=visit, plan=plan).model_dump_json()
        self.out.write(line + "\n")
        self.visits += 1


def ingest_command(
    paths: list[str] | str,
    fmt: str,
    mapping: str | None = None,
    deidentify: bool = False,
    salt: str | None = None,
    out: str = "visits.jsonl",
    progress: bool = True,
    plans: bool = False,
    lab_days: int = 30,
) -> int:
    """Ingest every file (folders: every file of the format inside) into `out` as Visit JSONL.

    Args:
        plans: write `{visit, plan}` records with the physician's plan read from each record (docs/records.md).
        lab_days: FHIR without lab orders: lab results within this many days after a visit count as ordered.

    Returns:
        0 when every file and row was read, 1 when some were rejected (the rest are written).

    Raises:
        ConfigError: --deidentify without a salt, an unreadable mapping, an unwritable `out`.
    """
    if isinstance(paths, (str, Path)):
        paths = [str(paths)]
    deid = None
    if deidentify:
        salt = salt or os.environ.get(SALT_ENV)
        if not salt:
            raise ConfigError(
                f"--deidentify needs a secret salt: pass --salt SECRET or set {SALT_ENV}; keep it private "
                "and the same across runs so a patient's pseudonym and date shift stay the same",
                field="salt",
            )
        deid = Deidentifier(salt)
    the_mapping = load_mapping(mapping) if mapping and fmt != "fhir" else None
    out_path = Path(out)
    files, missing = _expand(paths, fmt, exclude=out_path)
    if any(f.resolve() == out_path.resolve() for f in files):
        raise ConfigError("is also an input; writing it would destroy what is read", source=str(out_path))
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(out_path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=str(out_path)) from None
    if lab_days < 0:
        raise ConfigError("must be 0 or more days", field="lab-days")
    run = _Run(out=stream, deid=deid, plans=plans, lab_days=lab_days)
    for line in missing:
        run.files_failed += 1
        run.problem(line)
    total = sum(f.stat().st_size for f in files)
    bar = tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        desc="ingest",
        leave=False,
        disable=not progress or total < LARGE_INPUT,
    )
    with stream, bar:
        if fmt == "fhir":
            _ingest_fhir(files, run, bar)
        else:
            _ingest_tabular(files, fmt, the_mapping, run, bar)
    _summary(run, out_path)
    return 1 if run.files_failed or run.rows_failed or run.no_plan else 0


def _expand(paths: list[str], fmt: str, exclude: Path) -> tuple[list[Path], list[str]]:
    """Files to read (folders expanded, sorted) and a problem line for each path that gives none."""
    files, missing = [], []
    skip = exclude.resolve()
    for text in paths:
        path = Path(text)
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUFFIXES[fmt] and not p.name.startswith(".")
            )
            inside = [p for p in inside if p.resolve() != skip]
            if not inside:
                missing.append(f"{text}: no {'/'.join(sorted(SUFFIXES[fmt]))} files in this folder")
            files += inside
        elif path.is_file():
            files.append(path)
        else:
            missing.append(f"{text}: no such file or folder")
    return files, missing


def _ingest_fhir(files: list[Path], run: _Run, bar: tqdm) -> None:
    from diaguide.records.fhir import read_fhir_file, read_fhir_records  # the FHIR stack loads only when asked for

    for path in files:
        run.files += 1
        problems: list[str] = []
        try:
            if run.plans:
                pairs, warnings, problems = read_fhir_records(path, lab_days=run.lab_days)
            else:
                visits, warnings = read_fhir_file(path)
                pairs = [(v, None) for v in visits]
        except InputError as exc:
            run.files_failed += 1
            run.problem(exc.line() if exc.source else f"{path}: {exc.line()}")
            continue
        except Exception as exc:  # noqa: BLE001 - one file's bug must not lose the others
            run.crashed(path, exc)
            continue
        finally:
            bar.update(path.stat().st_size)
        for warning in warnings:
            run.warn(warning if str(path) in warning else f"{path}: {warning}")
        for problem in problems:
            run.plan_problem(problem)
        names, identifiers = _fhir_known(path) if run.deid is not None and pairs else (set(), set())
        for visit, plan in pairs:
            if run.plans and plan is None:
                run.no_plan += 1
                continue
            run.write(visit, names, identifiers, plan)


def _fhir_known(path: Path) -> tuple[set[str], set[str]]:
    """Names and identifying values (MRNs, phones, emails, addresses) of the people in a bundle.

    De-identification removes them from free text wherever they appear. Visits carry none of
    them, so the bundle is read again (only with --deidentify).
    """
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    bundle = json.loads(data)
    names: set[str] = set()
    values: set[str] = set()
    for entry in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") not in ("Patient", "RelatedPerson"):
            continue
        for name in _dicts(resource.get("name")):
            parts = [*(name.get("given") or []), name.get("family") or ""]
            names.update(p for p in [name.get("text") or "", " ".join(parts).strip(), *parts] if isinstance(p, str))
        values.update(i.get("value") for i in _dicts(resource.get("identifier")) + _dicts(resource.get("telecom")))
        for address in _dicts(resource.get("address")):
            values.update([*(address.get("line") or []), address.get("city"), address.get("postalCode")])
            values.add(address.get("text"))
    return {n for n in names if n}, {v for v in values if isinstance(v, str) and v}


def _dicts(value: object) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _pick_mapping(path: Path, fmt: str) -> Mapping | None:
    """The shipped mapping whose columns the file has, for calls without --mapping.

    None: the file already holds Visits (a visits.jsonl or cohort records), read as they are.
    """
    from diaguide.records.tabular import iter_rows

    header: list[str] = []
    for _, cells, columns in iter_rows(path, fmt):
        if not isinstance(cells, InputError):
            header = columns
            break
    if fmt == "jsonl" and ({"visit_id", "patient_id", "date"} <= set(header) or "visit" in header):
        return None
    for name in shipped_mappings():
        candidate = load_mapping(name)
        if set(candidate.columns()) <= set(header):
            return candidate
    raise InputError(
        f"no --mapping given and no shipped mapping ({', '.join(shipped_mappings())}) fits its columns; "
        "pass --mapping FILE",
        source=str(path),
    )


@dataclasses.dataclass
class _Spill:
    """Visits parked on disk until every file is read, with the byte offsets of each patient's."""

    file: IO[bytes]
    index: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    names: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    identifiers: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    seen: set[tuple[str, str]] = dataclasses.field(default_factory=set)


def _ingest_tabular(files: list[Path], fmt: str, mapping: Mapping | None, run: _Run, bar: tqdm) -> None:
    from diaguide.records.history import attach_history

    with tempfile.TemporaryFile("w+b", prefix="diaguide-ingest-") as spill_file:
        spill = _Spill(spill_file)
        for path in files:
            run.files += 1
            done = bar.n
            try:
                file_mapping = mapping or _pick_mapping(path, fmt)
                if file_mapping is None and run.plans:
                    raise InputError("holds Visits already; --plans reads plans from source records", source=str(path))
                if file_mapping is None:
                    _ingest_visit_lines(path, run)
                else:
                    _spill_rows(path, fmt, file_mapping, spill, run, bar)
            except InputError as exc:
                run.files_failed += 1
                run.problem(exc.line() if exc.source else f"{path}: {exc.line()}")
            except OSError as exc:
                run.files_failed += 1
                run.problem(f"{path}: cannot read: {exc.strerror}")
            except Exception as exc:  # noqa: BLE001 - one file's bug must not lose the others
                run.crashed(path, exc)
            bar.update(max(0, done + path.stat().st_size - bar.n))
        # a patient's visits may sit in several files (monthly exports): history is attached at the end
        for patient_id, offsets in spill.index.items():
            names, identifiers = spill.names.get(patient_id, ()), spill.identifiers.get(patient_id, ())
            if run.plans:
                _write_plans(run, list(_read_back_plans(spill.file, offsets)), names, identifiers)
                continue
            for visit in attach_history(list(_read_back(spill.file, offsets))):
                run.write(visit, names, identifiers)


def _write_plans(run: _Run, rows: list, names: Iterable[str], identifiers: Iterable[str]) -> None:
    """One patient's rows with their plans (`plans_his.py`); history summarises each earlier visit as written."""
    from diaguide.records.history import attach_history
    from diaguide.records.plans_his import patient_plans

    inputs = {visit.visit_id: pin for visit, pin in rows}
    with_history = attach_history([visit for visit, _ in rows])
    for derived in patient_plans([(visit, inputs[visit.visit_id]) for visit in with_history]):
        for line in derived.problems:
            run.plan_problem(line)
        if derived.plan is None:
            run.no_plan += 1
            continue
        run.write(derived.visit, names, identifiers, derived.plan)


def _spill_rows(path: Path, fmt: str, mapping: Mapping, spill: _Spill, run: _Run, bar: tqdm) -> None:
    from diaguide.records.tabular import read_tabular, row_word

    where = row_word(path, fmt)
    start = bar.n
    moved = (lambda pos: bar.update(max(0, start + pos - bar.n))) if not bar.disable else None
    for result in read_tabular(path, fmt, mapping, progress=moved, plans=run.plans):
        for warning in result.warnings:
            run.warn(f"{path} {where} {result.row}: {warning}")
        if result.error is not None or result.visit is None:
            run.rows_failed += 1
            run.problem(result.error.line() if result.error else f"{path} {where} {result.row}: unreadable")
            continue
        visit = result.visit
        key = (visit.patient_id, visit.visit_id)
        if key in spill.seen:
            run.warn(f"{path} {where} {result.row}: repeats the id of an earlier visit; the first is kept")
            continue
        spill.seen.add(key)
        spill.index.setdefault(visit.patient_id, []).append(spill.file.tell())
        spill.names.setdefault(visit.patient_id, set()).update(result.names)
        spill.identifiers.setdefault(visit.patient_id, set()).update(result.identifiers)
        line = visit.model_dump_json()
        if run.plans:
            line = f'{{"visit": {line}, "in": {result.plan_in.model_dump_json()}}}'
        spill.file.write(line.encode("utf-8") + b"\n")


def _ingest_visit_lines(path: Path, run: _Run) -> None:
    """A visits.jsonl (or cohort visits.jsonl) read line by line, e.g. to de-identify it; history is kept."""
    from diaguide.records.io import visit_from_json

    with open(path, encoding="utf-8-sig") as stream:
        try:
            for i, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    run.write(visit_from_json(json.loads(line), f"{path} line {i}"))
                except json.JSONDecodeError as exc:
                    run.rows_failed += 1
                    run.problem(f"{path} line {i}: not valid JSON: {exc.msg}")
                except InputError as exc:
                    run.rows_failed += 1
                    run.problem(exc.line())
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text part-way through", source=str(path)) from None


def _read_back_plans(spill: IO[bytes], offsets: list[int]) -> Iterator[tuple[Visit, object]]:
    from diaguide.records.plans_his import PlanInput

    end = spill.seek(0, os.SEEK_END)
    for offset in offsets:
        spill.seek(offset)
        data = json.loads(spill.readline())
        yield Visit.model_validate(data["visit"]), PlanInput.model_validate(data["in"])
    spill.seek(end)


def _read_back(spill: IO[bytes], offsets: list[int]) -> Iterator[Visit]:
    end = spill.seek(0, os.SEEK_END)
    for offset in offsets:
        spill.seek(offset)
        yield Visit.model_validate_json(spill.readline())
    spill.seek(end)


def _summary(run: _Run, out: Path) -> None:
    parts = [f"{run.files} file{'s' if run.files != 1 else ''} read"]
    if run.files_failed:
        parts.append(f"{run.files_failed} failed")
    if run.rows_failed:
        parts.append(f"{run.rows_failed} row{'s' if run.rows_failed != 1 else ''} rejected")
    what = "record" if run.plans else "visit"
    parts.append(f"{run.visits} {what}{'s' if run.visits != 1 else ''} written to {out}")
    if run.plans:
        parts.append(f"{run.no_plan} visit{'s' if run.no_plan != 1 else ''} without a derivable plan (not written)")
        parts.append(f"{run.plan_problems} plan problem{'s' if run.plan_problems != 1 else ''}")
    parts.append(f"{run.warnings} warning{'s' if run.warnings != 1 else ''}")
    print("ingest: " + ", ".join(parts), file=sys.stderr)
    if run.deid is not None:
        counts: Counter[str] = run.deid.counts
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "nothing"
        print(f"de-identified: {shown}", file=sys.stderr)
