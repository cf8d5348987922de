"""`diaguide bench ingest`: FHIR ingestion speed and memory on Synthea-style longitudinal bundles.

The benchmark writes its own input: ~100 MB (quick: ~2 MB) of transaction bundles shaped like
Synthea's, one patient per file, years of encounters each with vitals, labs, conditions and
medication orders, and (as in Synthea, where they are most of the bytes) a Claim and an
ExplanationOfBenefit per encounter. It ingests them file by file the way `diaguide ingest`
does (read, visits with history, one JSON line per visit) in a fresh process, so the peak RSS
is the ingest's own.

Baseline, same run: the naive path — `json.load` and then `fhir.resources` `Bundle` validation
of every resource — timed on one file, in its own process, and extrapolated linearly by size
to the whole set. It is marked as an extrapolation in the JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import random
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

GOAL_SECONDS_PER_100MB = 180.0
GOAL_PEAK_MB = 2048.0
_SNOMED = "http://snomed.info/sct"
_LOINC = "http://loinc.org"
_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_UCUM = "http://unitsofmeasure.org"


def _cc(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _entry(rtype: str, rid: str, body: dict) -> dict:
    return {
        "fullUrl": f"urn:uuid:{rid}",
        "resource": {"resourceType": rtype, "id": rid, **body},
        "request": {"method": "POST", "url": rtype},
    }


def _quantity_obs(pat: str, enc: str, when: str, code: str, name: str, value: float, unit: str, cat: str) -> dict:
    return {
        "status": "final",
        "category": [_cc("http://terminology.hl7.org/CodeSystem/observation-category", cat, cat)],
        "code": _cc(_LOINC, code, name),
        "subject": {"reference": f"urn:uuid:{pat}"},
        "encounter": {"reference": f"urn:uuid:{enc}"},
        "effectiveDateTime": when,
        "issued": when.replace("+00:00", ".000+00:00"),
        "valueQuantity": {"value": value, "unit": unit, "system": _UCUM, "code": unit},
    }


def _money(v: float) -> dict:
    return {"value": round(v, 2), "currency": "USD"}


def _claims(rng: random.Random, pat: str, enc: str, when: str, org: str, n_items: int) -> list[dict]:
    """A Claim and its ExplanationOfBenefit, bulky the way Synthea's are (per-item adjudication)."""
    cid, eid = _uuid(rng), _uuid(rng)
    period = {"start": when, "end": when}
    items = [
        {
            "sequence": i + 1,
            "productOrService": _cc(_SNOMED, "185349003", "Encounter for check up (procedure)"),
            "servicedPeriod": period,
            "locationCodeableConcept": _cc(
                "http://terminology.hl7.org/CodeSystem/ex-serviceplace", "21", "Inpatient Hospital"
            ),
            "net": _money(rng.uniform(50, 900)),
        }
        for i in range(n_items)
    ]
    claim = {
        "status": "active",
        "type": _cc("http://terminology.hl7.org/CodeSystem/claim-type", "institutional", "Institutional"),
        "use": "claim",
        "patient": {"reference": f"urn:uuid:{pat}", "display": "Synthetic Patient"},
        "billablePeriod": period,
        "created": when,
        "provider": {"reference": f"urn:uuid:{org}"},
        "priority": _cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal", "normal"),
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
        "item": items,
        "total": _money(sum(i["net"]["value"] for i in items)),
    }
    adjudication = [
        {
            "category": _cc("https://bluebutton.cms.gov/resources/codesystem/adjudication", c, c),
            "amount": _money(rng.uniform(0, 500)),
        }
        for c in (
            "https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt",
            "https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt",
            "https://bluebutton.cms.gov/resources/variables/line_sbmtd_chrg_amt",
            "https://bluebutton.cms.gov/resources/variables/line_alowd_chrg_amt",
        )
    ]
    eob = {
        "contained": [
            {
                "resourceType": "Coverage",
                "id": "coverage",
                "status": "active",
                "type": {"text": "Medicare"},
                "beneficiary": {"reference": f"urn:uuid:{pat}"},
                "payor": [{"display": "Medicare"}],
            }
        ],
        "identifier": [{"system": "https://bluebutton.cms.gov/resources/variables/clm_id", "value": cid}],
        "status": "active",
        "type": claim["type"],
        "use": "claim",
        "patient": {"reference": f"urn:uuid:{pat}"},
        "billablePeriod": period,
        "created": when,
        "insurer": {"display": "Medicare"},
        "provider": {"reference": f"urn:uuid:{org}"},
        "claim": {"reference": f"urn:uuid:{cid}"},
        "outcome": "complete",
        "careTeam": [
            {
                "sequence": 1,
                "provider": {"reference": f"urn:uuid:{org}"},
                "role": _cc("http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary", "Primary provider"),
            }
        ],
        "insurance": [{"focal": True, "coverage": {"reference": "#coverage", "display": "Medicare"}}],
        "item": [{**it, "encounter": [{"reference": f"urn:uuid:{enc}"}], "adjudication": adjudication} for it in items],
        "total": [
            {
                "category": _cc("http://terminology.hl7.org/CodeSystem/adjudication", "submitted", "Submitted Amount"),
                "amount": claim["total"],
            }
        ],
        "payment": {"amount": _money(rng.uniform(0, 300))},
    }
    return [_entry("Claim", cid, claim), _entry("ExplanationOfBenefit", eid, eob)]


_VITALS = [
    ("8302-2", "Body Height", "cm"),
    ("29463-7", "Body Weight", "kg"),
    ("39156-5", "Body mass index", "kg/m2"),
    ("8867-4", "Heart rate", "/min"),
    ("9279-1", "Respiratory rate", "/min"),
]
_LABS = [
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%"),
    ("2345-7", "Glucose", "mg/dL"),
    ("2160-0", "Creatinine", "mg/dL"),
    ("33914-3", "eGFR", "mL/min/{1.73_m2}"),
    ("2093-3", "Cholesterol", "mg/dL"),
    ("13457-7", "LDL Cholesterol", "mg/dL"),
    ("2571-8", "Triglycerides", "mg/dL"),
    ("2085-9", "HDL Cholesterol", "mg/dL"),
    ("2951-2", "Sodium", "mmol/L"),
    ("2823-3", "Potassium", "mmol/L"),
]
_MEDS = [
    ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("1545653", "empagliflozin 10 MG Oral Tablet"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("617310", "atorvastatin 20 MG Oral Tablet"),
]


def synthea_like_bundle(seed: int, encounters: int, claim_items: int = 6) -> dict:
    """One patient's longitudinal transaction bundle, Synthea-shaped (see the module docstring)."""
    rng = random.Random(seed)
    pat, org = _uuid(rng), _uuid(rng)
    born = f"{rng.randint(1940, 1975)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    entries = [
        _entry(
            "Patient",
            pat,
            {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                        "extension": [{"url": "text", "valueString": "White"}],
                    }
                ],
                "identifier": [{"system": "https://github.com/synthetichealth/synthea", "value": pat}],
                "name": [{"use": "official", "family": f"Family{seed}", "given": [f"Given{seed}"]}],
                "gender": rng.choice(["female", "male"]),
                "birthDate": born,
                "address": [{"line": [f"{seed} Example Street"], "city": "Springfield", "country": "US"}],
            },
        ),
        _entry("Organization", org, {"name": "Example Outpatient Clinic", "active": True}),
        _entry(
            "Condition",
            _uuid(rng),
            {
                "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
                "code": _cc(_SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
                "subject": {"reference": f"urn:uuid:{pat}"},
                "onsetDateTime": "2005-03-01T10:00:00+00:00",
            },
        ),
    ]
    day = 0
    gap = max(7, 20 * 365 // encounters)  # ~20 years of care, denser for the sicker (bigger) patients
    hba1c = rng.uniform(6.5, 9.5)
    for k in range(encounters):
        day += rng.randint(gap // 2, gap * 3 // 2)
        when = (dt.date(2005, 1, 1) + dt.timedelta(days=day)).isoformat() + "T09:00:00+00:00"
        enc = _uuid(rng)
        amb = rng.random() > 0.1
        entries.append(
            _entry(
                "Encounter",
                enc,
                {
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB" if amb else "EMER",
                    },
                    "type": [_cc(_SNOMED, "185349003", "Encounter for check up (procedure)")],
                    "subject": {"reference": f"urn:uuid:{pat}"},
                    "period": {"start": when, "end": when},
                    "serviceProvider": {"reference": f"urn:uuid:{org}"},
                },
            )
        )
        hba1c = min(14.0, max(5.5, hba1c + rng.uniform(-0.4, 0.4)))
        values = [165.0, rng.uniform(70, 110), 0.0, rng.uniform(60, 90), rng.uniform(12, 20)]
        values[2] = round(values[1] / (1.65**2), 1)
        for (code, name, unit), v in zip(_VITALS, values, strict=True):
            obs = _quantity_obs(pat, enc, when, code, name, round(v, 1), unit, "vital-signs")
            entries.append(_entry("Observation", _uuid(rng), obs))
        bp = _quantity_obs(pat, enc, when, "85354-9", "Blood pressure panel", 0, "mm[Hg]", "vital-signs")
        del bp["valueQuantity"]
        bp["component"] = [
            {
                "code": _cc(_LOINC, c, n),
                "valueQuantity": {"value": rng.randint(lo, hi), "unit": "mm[Hg]", "system": _UCUM, "code": "mm[Hg]"},
            }
            for c, n, lo, hi in (("8480-6", "Systolic", 110, 160), ("8462-4", "Diastolic", 65, 95))
        ]
        entries.append(_entry("Observation", _uuid(rng), bp))
        if k % 2 == 0:
            labs = [
                hba1c,
                rng.uniform(90, 250),
                rng.uniform(0.7, 1.6),
                rng.uniform(35, 95),
                rng.uniform(150, 240),
                rng.uniform(60, 160),
                rng.uniform(80, 300),
                rng.uniform(35, 70),
                rng.uniform(135, 145),
                rng.uniform(3.6, 5.0),
            ]
            for (code, name, unit), v in zip(_LABS, labs, strict=True):
                obs = _quantity_obs(pat, enc, when, code, name, round(v, 1), unit, "laboratory")
                entries.append(_entry("Observation", _uuid(rng), obs))
        if k % 4 == 0:
            code, text = _MEDS[(k // 4) % len(_MEDS)]
            entries.append(
                _entry(
                    "MedicationRequest",
                    _uuid(rng),
                    {
                        "status": "active" if k > encounters - 8 else "stopped",
                        "intent": "order",
                        "medicationCodeableConcept": _cc(_RXNORM, code, text),
                        "subject": {"reference": f"urn:uuid:{pat}"},
                        "encounter": {"reference": f"urn:uuid:{enc}"},
                        "authoredOn": when,
                        "dosageInstruction": [
                            {"sequence": 1, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}
                        ],
                    },
                )
            )
        entries += _claims(rng, pat, enc, when, org, claim_items)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def write_bundles(folder: Path, megabytes: float, file_mb: tuple[float, ...]) -> list[Path]:
    """Write Synthea-style bundles totalling about `megabytes` into `folder`, one patient per file,
    file sizes cycling through `file_mb` (patients differ: a few huge records, many smaller ones)."""
    paths: list[Path] = []
    total, seed = 0.0, 0
    while total < megabytes * 0.98:
        target = min(file_mb[seed % len(file_mb)], megabytes - total + 0.5)
        encounters = max(8, int(target * 1e6 / 52_000))  # ~52 kB of indented JSON per encounter
        path = folder / f"patient_{seed:03d}.json"
        with path.open("w", encoding="utf-8") as fh:
            json.dump(synthea_like_bundle(seed, encounters), fh, indent=2)
        total += path.stat().st_size / 1e6
        paths.append(path)
        seed += 1
    return paths


def _ingest_worker(paths: list[str], out_path: str, results: Any) -> None:
    from diaguide.records.fhir import read_fhir_file

    start = time.perf_counter()
    visits = warnings = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for p in paths:
            got, warns = read_fhir_file(p)
            warnings += len(warns)
            visits += len(got)
            for v in got:
                out.write(v.model_dump_json() + "\n")
            del got
    seconds = time.perf_counter() - start
    results.put(
        {
            "seconds": seconds,
            "visits": visits,
            "warnings": warnings,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _naive_worker(path: str, results: Any) -> None:
    from fhir.resources.R4B.bundle import Bundle

    start = time.perf_counter()
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    error = None
    try:
        Bundle.model_validate(data)
    except Exception as exc:  # reported, not hidden: a failed validation makes the baseline void
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    results.put(
        {
            "seconds": time.perf_counter() - start,
            "error": error,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _in_child(target: Any, *args: Any) -> dict:
    ctx = mp.get_context("spawn")  # a fresh interpreter: its peak RSS is the work's own
    q = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, q))
    proc.start()
    result = q.get()
    proc.join()
    return result


def bench_ingest(out: str, quick: bool = False) -> int:
    """Generate Synthea-style bundles, ingest them, time it against the naive path; write JSON to `out`."""
    import fhir.resources
    import pydantic

    import diaguide
    from diaguide.machine import machine_info

    megabytes, file_mb = (2.0, (1.0,)) if quick else (100.0, (30.0, 4.0, 12.0, 6.0, 20.0, 3.0, 9.0, 5.0, 15.0))
    with tempfile.TemporaryDirectory(prefix="diaguide-bench-ingest-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        paths = write_bundles(folder, megabytes, file_mb)
        generate_s = time.perf_counter() - t0
        sizes = [p.stat().st_size / 1e6 for p in paths]
        total_mb = sum(sizes)
        run = _in_child(_ingest_worker, [str(p) for p in paths], str(folder / "visits.jsonl"))
        naive = _in_child(_naive_worker, str(paths[0]))
    per_mb = naive["seconds"] / sizes[0]
    result = {
        "benchmark": "ingest",
        "quick": quick,
        "machine": machine_info(),
        "versions": {
            "diaguide": diaguide.__version__,
            "fhir.resources": fhir.resources.__version__,
            "pydantic": pydantic.VERSION,
        },
        "input": "Synthea-style longitudinal transaction bundles generated by diaguide.bench.ingest "
        "(one patient per file; Claim + ExplanationOfBenefit per encounter)",
        "files": len(paths),
        "megabytes": round(total_mb, 2),
        "generate_seconds": round(generate_s, 2),
        "visits": run["visits"],
        "warnings": run["warnings"],
        "seconds": round(run["seconds"], 3),
        "visits_per_s": round(run["visits"] / run["seconds"], 1),
        "mb_per_s": round(total_mb / run["seconds"], 2),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
        "baseline": {
            "method": "json.load + fhir.resources R4B Bundle.model_validate of every resource (no Visit "
            "assembly), on the first file only, in its own process",
            "file_megabytes": round(sizes[0], 2),
            "seconds_one_file": round(naive["seconds"], 3),
            "peak_rss_mb_one_file": round(naive["peak_rss_mb"], 1),
            "validation_error": naive["error"],
            "extrapolated": True,
            "extrapolated_seconds_all_files": round(per_mb * total_mb, 1),
            "note": "linear extrapolation by megabytes from one file; not measured on the whole set",
        },
        "goal": {
            "seconds_per_100mb": GOAL_SECONDS_PER_100MB,
            "peak_rss_mb": GOAL_PEAK_MB,
            "met": run["seconds"] * 100.0 / total_mb <= GOAL_SECONDS_PER_100MB and run["peak_rss_mb"] <= GOAL_PEAK_MB,
        },
    }
    result["speedup_vs_baseline"] = round(result["baseline"]["extrapolated_seconds_all_files"] / run["seconds"], 1)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"ingest: {result['files']} files, {result['megabytes']} MB, {result['visits']} visits in "
        f"{result['seconds']} s ({result['mb_per_s']} MB/s), peak {result['peak_rss_mb']} MB; naive path "
        f"~{result['baseline']['extrapolated_seconds_all_files']} s (extrapolated) -> {out}"
    )
    return 0
