"""The ingest benchmark: its Synthea-style input reads cleanly, and a quick run writes honest JSON."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from diaguide.bench.ingest import bench_ingest, synthea_like_bundle
from diaguide.records.fhir import visits_from_bundle


def test_synthea_like_bundle_is_valid_fhir_and_yields_its_ambulatory_visits():
    b = synthea_like_bundle(seed=4, encounters=12)
    Bundle.model_validate(b)  # the naive baseline must be able to validate it, or it measures nothing
    kinds = [e["resource"]["resourceType"] for e in b["entry"]]
    assert kinds.count("Claim") == kinds.count("ExplanationOfBenefit") == 12
    ambulatory = [
        e["resource"]
        for e in b["entry"]
        if e["resource"]["resourceType"] == "Encounter" and e["resource"]["class"]["code"] == "AMB"
    ]
    visits, warnings = visits_from_bundle(b, "bench.json")
    assert warnings == []
    assert len(visits) == len(ambulatory)
    assert all(v.has_diagnosis("E11") for v in visits)
    assert [len(v.history) for v in visits] == list(range(len(visits)))
    assert visits[-1].latest_lab("4548-4") is not None


def test_quick_bench_writes_measurements_and_a_same_run_baseline(tmp_path):
    out = tmp_path / "ingest.json"
    assert bench_ingest(str(out), quick=True) == 0
    r = json.loads(out.read_text())
    assert r["files"] >= 2 and 1.5 < r["megabytes"] < 3
    assert r["visits"] > 0 and r["seconds"] > 0 and r["peak_rss_mb"] > 0
    assert r["visits_per_s"] == pytest.approx(r["visits"] / r["seconds"], rel=0.02)  # seconds is rounded
    assert r["warnings"] == 0
    base = r["baseline"]
    assert base["extrapolated"] is True and base["validation_error"] is None
    assert base["extrapolated_seconds_all_files"] > 0
    assert "cpu_count" in r["machine"] and r["versions"]["fhir.resources"]
