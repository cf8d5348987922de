"""`diaguide demo`: the main job on the embedded defaults, then the physician page.

1. a seeded synthetic cohort (English and Chinese) with FHIR bundles of the same patients,
2. those bundles and the shipped Chinese HIS export ingested as any hospital's would be,
3. every patient's latest visit through the guideline engine and the safety checker,
4. a summary on stdout, and the page served on 127.0.0.1:8000 (auth off, labelled demo).
"""

from __future__ import annotations

import collections
import json
import os
import sys
from pathlib import Path

DEMO_DIR = Path(os.environ.get("DIAGUIDE_DEMO_DIR", "var/demo"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _latest_visits(visits_path: Path) -> list:
    from diaguide.records.schema import Visit

    latest: dict[str, Visit] = {}
    with visits_path.open(encoding="utf-8") as fh:
        for line in fh:
            visit = Visit.model_validate_json(line)
            if visit.patient_id not in latest or visit.date >= latest[visit.patient_id].date:
                latest[visit.patient_id] = visit
    return list(latest.values())


def prepare(out: Path = DEMO_DIR, patients: int = 24, seed: int = 7) -> dict:
    """Build the demo data and run the rules engine on it; return the summary."""
    from diaguide.cohort.generate import cohort_command
    from diaguide.knowledge.guideline import recommend
    from diaguide.records.ingest import ingest_command
    from diaguide.safety.checker import apply_safety
    from diaguide.safety.complexity import complexity

    summary: dict = {"folder": str(out)}
    for lang in ("en", "zh"):
        cohort_dir = out / f"cohort-{lang}"
        if not (cohort_dir / "visits.jsonl").exists():
            cohort_command(patients=patients, seed=seed, lang=lang, out=str(cohort_dir), fhir=True)
        ingested = out / f"ingested-{lang}.jsonl"
        status = ingest_command(
            paths=[str(cohort_dir / "fhir")],
            fmt="fhir",
            mapping=None,
            deidentify=False,
            salt=None,
            out=str(ingested),
            progress=False,
        )
        summary[f"ingest_{lang}_status"] = status
    his = EXAMPLES / "his_zh.csv"
    if his.exists():
        summary["ingest_his_zh_status"] = ingest_command(
            paths=[str(his)],
            fmt="csv",
            mapping="zh_his",
            deidentify=True,
            salt="demo-salt",
            out=str(out / "ingested-his-zh.jsonl"),
            progress=False,
        )

    severities: collections.Counter = collections.Counter()
    levels: collections.Counter = collections.Counter()
    plans = []
    for lang in ("en", "zh"):
        for visit in _latest_visits(out / f"ingested-{lang}.jsonl"):
            plan = apply_safety(visit, recommend(visit))
            severities.update(f.severity for f in plan.findings)
            levels[complexity(visit).level] += 1
            plans.append({"visit_id": visit.visit_id, "language": lang, "plan": plan.model_dump(mode="json")})
    (out / "plans.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in plans), encoding="utf-8")
    summary.update(
        patients=len(plans),
        findings_by_severity=dict(sorted(severities.items())),
        complexity=dict(sorted(levels.items())),
    )
    return summary


def load_model() -> dict:
    """Load the default model (the shipped LoRA adapter on SmolLM2, else the base model), timed."""
    import time

    from diaguide.inference.registry import default_adapter, generator_for

    t0 = time.perf_counter()
    generator = generator_for()
    return {
        "model": generator.model_name,
        "adapter": str(default_adapter() or "none (base model)"),
        "engine": generator.kind,
        "load_seconds": round(time.perf_counter() - t0, 1),
    }


def demo_command(host: str = "127.0.0.1", port: int = 8000, serve: bool = True) -> int:
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    summary = prepare(DEMO_DIR)
    summary.update(load_model())
    print("DiaGuide demo (synthetic patients only)")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    if not serve:
        return 0
    os.environ.setdefault("DIAGUIDE_DEMO", "1")
    # the demo's own database: demo mode is refused on any other (docs/security.md#demo-mode)
    os.environ.setdefault("DIAGUIDE_DATABASE_URL", f"sqlite:///{(DEMO_DIR / 'diaguide-demo.db').resolve()}")
    os.environ.setdefault("DIAGUIDE_CDS_AUTH", "off")
    os.environ.setdefault("DIAGUIDE_SAMPLES", str(DEMO_DIR))
    # the model's narrative is computed in the background and shown beside the checked plan
    os.environ.setdefault("DIAGUIDE_NARRATOR", "diaguide.inference.narrator:model_narrator")
    os.environ.setdefault("DIAGUIDE_MODEL_VERSION", str(summary["model"]))
    from diaguide.service.app import serve_command

    print(f"  serving the physician page on http://{host}:{port}/ (demo mode: auth off)", file=sys.stderr)
    return serve_command(host=host, port=port, workers=1)
