"""Sample patients for the page: the demo cohort when there is one, else three bundled
synthetic visits (samples.json; invented patients, no real person)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from diaguide.records.schema import Plan, Visit

log = logging.getLogger("diaguide.service")
BUNDLED = Path(__file__).resolve().parent / "samples.json"
MAX_SAMPLES = 24


@dataclasses.dataclass(frozen=True)
class Sample:
    id: str
    label: str
    visit: Visit
    plan: Plan | None = None  # a physician's plan to check; None: the guideline engine's


def _label(v: Visit) -> str:
    sex = {"male": "M", "female": "F"}.get(v.patient.sex, "?")
    hba1c = v.latest_lab("4548-4", "17856-6")
    a1c = f", HbA1c {hba1c.value:g}%" if hba1c else ""
    return f"{v.patient_id} · {v.patient.age or '?'}{sex}{a1c} · {v.language}"


def _record(data: dict) -> tuple[Visit, Plan | None]:
    plan = data.get("plan")
    return Visit.model_validate(data.get("visit", data)), Plan.model_validate(plan) if isinstance(plan, dict) else None


def _read_jsonl(path: Path) -> list[tuple[Visit, Plan | None]]:
    visits = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                visits.append(_record(json.loads(line)))
            except ValueError:
                log.warning("sample line skipped", extra={"event": "sample_skipped", "reason": f"{path.name}:{n}"})
    return visits


def load_samples(source: str | None) -> list[Sample]:
    """Latest visit of each patient from a visits.jsonl, or a demo folder's `*.jsonl` files."""
    files: list[Path] = []
    if source:
        path = Path(source)
        if path.is_dir():
            files = sorted(path.glob("ingested-*.jsonl")) or sorted(path.glob("*/visits.jsonl"))
        elif path.is_file():
            files = [path]
    records = [r for f in files for r in _read_jsonl(f)] or [
        _record(r) for r in json.loads(BUNDLED.read_text(encoding="utf-8"))
    ]
    latest: dict[str, tuple[Visit, Plan | None]] = {}
    for v, plan in records:
        if v.patient_id not in latest or v.date >= latest[v.patient_id][0].date:
            latest[v.patient_id] = (v, plan)
    ordered = sorted(latest.values(), key=lambda r: (r[0].language, r[0].patient_id))
    # an even share per language, so a Chinese cohort is not crowded out by an English one
    languages = sorted({v.language for v, _ in ordered})
    share = max(1, MAX_SAMPLES // max(1, len(languages)))
    chosen = [r for lang in languages for r in [r for r in ordered if r[0].language == lang][:share]]
    return [
        Sample(f"s{i}", _label(v) + (" · physician plan" if plan else ""), v, plan)
        for i, (v, plan) in enumerate(chosen)
    ]
