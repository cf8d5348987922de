"""Training pairs from a cohort: `diaguide dataset --cohort DIR --out DIR` (or `--records FILE`).

Reads `DIR/visits.jsonl` ({"visit", "plan"} per line; `--records`: any such file, e.g. the physicians' plans
`diaguide ingest --plans` reads from a hospital's records, docs/records.md), renders each visit's prompt and its
plan's target, and writes `train/val/test.jsonl` split BY PATIENT (every visit of a patient
lands in one split, so no test patient's history was seen in training) plus `manifest.json`
with counts, hashes, options and length statistics. Same cohort and seed, same bytes.

With `guidance`, each prompt carries the guideline engine's line and the train/val targets are
checked against the guideline (`guidance.py`): a physician plan that departs from it is replaced
by the guideline plan, and the manifest counts why. The test split keeps the physician's plan:
it is what an evaluation scores against.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from diaguide.errors import InputError
from diaguide.prompts.guidance import checked_target, guideline_plan
from diaguide.prompts.guidance import notes_facts as notes_facts_of
from diaguide.prompts.render import render_prompt
from diaguide.prompts.target import plan_to_text
from diaguide.records.jsonl import json_lines
from diaguide.records.schema import CohortRecord

SPLITS = ("train", "val", "test")
# Bump when the prompts or targets a cohort renders to change: cached datasets are named by it, so a
# training run never reads pairs rendered by an older version (2: the guideline line, target_source; 3: MED lines
# ordered by action, continue lines without a dose, guided prompts without the format instruction; 4: the guideline
# line reads the notes (docs/notes.md), and the notes-facts line).
FORMAT_VERSION = 4


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks: the hashes in manifest.json, and what an
    evaluation records of the test split it read."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _patient_key(patient_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{patient_id}".encode()).hexdigest()


def assign_splits(
    patient_ids: list[str], seed: int, val_frac: float, test_frac: float, strata: dict[str, str] | None = None
) -> dict[str, str]:
    """patient id -> split.

    Within each stratum (the patient's language, so every split holds both languages in
    proportion), patients are ordered by a seeded hash of their id and cut by exact counts:
    at least one patient in val and in test when the stratum has three or more, so a small
    cohort still gets every split, and the same seed always gives the same cut.
    """
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise InputError("val_frac and test_frac must be in [0, 1) and sum below 1", field="val_frac/test_frac")
    groups: dict[str, list[str]] = {}
    for p in sorted(set(patient_ids)):
        groups.setdefault((strata or {}).get(p, ""), []).append(p)
    out: dict[str, str] = {}
    for members in groups.values():
        order = sorted(members, key=lambda p: _patient_key(p, seed))
        n = len(order)

        def count(frac: float, n: int = n) -> int:
            k = round(n * frac)
            return max(k, 1) if frac > 0 and n >= 3 else k

        n_test, n_val = count(test_frac), count(val_frac)
        out |= {p: "test" for p in order[:n_test]}
        out |= {p: "val" for p in order[n_test : n_test + n_val]}
        out |= {p: "train" for p in order[n_test + n_val :]}
    return out


def _read_cohort(path: Path) -> tuple[list[CohortRecord], list[str]]:
    records, errors = [], []
    with path.open(encoding="utf-8") as fh:
        for n, obj in json_lines(fh):
            if isinstance(obj, json.JSONDecodeError):
                errors.append(f"{path}:{n}: not JSON ({obj.msg})")
                continue
            try:
                records.append(CohortRecord.model_validate(obj))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "record"
                errors.append(f"{path}:{n}: {where}: {first['msg']}")
    return records, errors


def _lengths(values: list[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 1),
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def build_dataset(
    cohort_dir: str | Path | None,
    out_dir: str | Path,
    seed: int = 0,
    history: bool = True,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    guidance: bool = False,
    region: str = "ada",
    notes_facts: bool = False,
    records: str | Path | None = None,
) -> dict[str, Any]:
    """Write `out_dir/{train,val,test}.jsonl` and `manifest.json`; return the manifest. `notes_facts`: each prompt
    carries a line of the facts read in the visit's notes (`guidance.notes_facts`). `records`: a `{visit, plan}`
    JSONL file read in place of `cohort_dir/visits.jsonl`.

    Bad lines of the cohort are listed in `manifest["errors"]` (file and line number) and
    skipped; every good line is still used.

    Raises:
        InputError: no `visits.jsonl` in `cohort_dir` (no `records` file), or not one usable record in it.
    """
    if records is not None:
        source = Path(records)
        if not source.is_file():
            raise InputError("no such file (expected {visit, plan} JSONL)", source=str(records), field="records")
    else:
        source = Path(cohort_dir or ".") / "visits.jsonl"
        if not source.is_file():
            raise InputError("no visits.jsonl here (expected a cohort folder)", source=str(cohort_dir), field="cohort")
    read, errors = _read_cohort(source)
    if not read:
        raise InputError(f"no usable record ({len(errors)} bad lines)", source=str(source))
    language: dict[str, str] = {}
    for r in read:
        language.setdefault(r.visit.patient_id, r.visit.language)
    split_of = assign_splits(list(language), seed, val_frac, test_frac, strata=language)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    seen_ids: dict[str, int] = {}
    targets: dict[str, int] = {}
    for record in sorted(read, key=lambda r: (_patient_key(r.visit.patient_id, seed), r.visit.date, r.visit.visit_id)):
        visit, lang = record.visit, record.visit.language
        base = f"{visit.patient_id}/{visit.visit_id}"
        seen_ids[base] = seen_ids.get(base, 0) + 1
        split = split_of[visit.patient_id]
        reference, target, why = None, record.plan, "physician"
        if guidance:
            reference = guideline_plan(visit, region)
            if split != "test":
                target, why = checked_target(visit, record.plan, region, reference)
        targets[why] = targets.get(why, 0) + 1
        rows[split].append(
            {
                "id": base if seen_ids[base] == 1 else f"{base}#{seen_ids[base]}",
                "patient_id": visit.patient_id,
                "visit_id": visit.visit_id,
                "language": lang,
                "prompt": render_prompt(
                    visit,
                    include_history=history,
                    guidance=reference,
                    notes=notes_facts_of(visit, region) if notes_facts else None,
                ),
                "target": plan_to_text(target, lang),
                "target_source": why,
                "visit": visit.model_dump(mode="json"),
                "plan": record.plan.model_dump(mode="json"),
            }
        )
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder ({exc.strerror})", source=str(out), field="out") from None
    splits: dict[str, Any] = {}
    for name in SPLITS:
        path = out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows[name]:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
        languages: dict[str, int] = {}
        for row in rows[name]:
            languages[row["language"]] = languages.get(row["language"], 0) + 1
        splits[name] = {
            "file": path.name,
            "records": len(rows[name]),
            "patients": len({row["patient_id"] for row in rows[name]}),
            "languages": dict(sorted(languages.items())),
            "sha256": sha256_of(path),
            "prompt_chars": _lengths([len(row["prompt"]) for row in rows[name]]),
            "target_chars": _lengths([len(row["target"]) for row in rows[name]]),
        }
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": {"file": str(source), "sha256": sha256_of(source), "records": len(read), "bad_lines": len(errors)},
        "seed": seed,
        "options": {
            "history": history,
            "val_frac": val_frac,
            "test_frac": test_frac,
            "guidance": guidance,
            "notes_facts": notes_facts,
            **({"region": region} if guidance else {}),
        },
        "targets": dict(sorted(targets.items())),
        "splits": splits,
        "errors": errors,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def dataset_command(
    cohort: str | None,
    out: str,
    seed: int = 0,
    history: bool = True,
    guidance: bool = False,
    region: str = "ada",
    notes_facts: bool = False,
    records: str | None = None,
) -> int:
    """`diaguide dataset`: 0 when every line was used, 1 when some were bad (named on stderr)."""
    manifest = build_dataset(
        cohort,
        out,
        seed=seed,
        history=history,
        guidance=guidance,
        region=region,
        notes_facts=notes_facts,
        records=records,
    )
    for line in manifest["errors"]:
        print(f"diaguide dataset: error: {line}", file=sys.stderr)
    counts = ", ".join(f"{name} {s['records']} ({s['patients']} patients)" for name, s in manifest["splits"].items())
    print(f"wrote {out}: {counts}")
    if guidance:
        print("targets: " + ", ".join(f"{why} {n}" for why, n in manifest["targets"].items()))
    return 1 if manifest["errors"] else 0
