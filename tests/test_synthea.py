"""The Synthea population (src/diaguide/synthea.py) and `make synthea-eval` on a tiny one."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from diaguide import synthea
from diaguide.cli import main
from diaguide.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[1]


def _record(date: str, codes: list[str]) -> dict:
    diagnoses = [{"system": "icd10", "code": c, "display": ""} for c in codes]
    plan = {"treatment": "Patient was given the following immunizations: influenza.", "medications": []}
    return {"visit": {"visit_id": date, "patient_id": "p", "date": date, "diagnoses": diagnoses}, "plan": plan}


def test_select_keeps_visits_with_diabetes_in_the_window_and_names_bad_lines(tmp_path, capsys):
    src = tmp_path / "records.jsonl"
    lines = [
        json.dumps(_record("2014-06-01", ["E11.9"])),  # before the window
        json.dumps(_record("2016-06-01", ["I10"])),  # no diabetes
        json.dumps(_record("2017-06-01", ["I10", "E11.21"])),
        json.dumps(_record("2018-06-01", ["44054006"])),  # a SNOMED code kept as it is
        json.dumps(_record("2019-06-01", ["R73.03"])),  # prediabetes is not diabetes
        "{not json",
        json.dumps({"visit": {"visit_id": "x", "date": "June"}, "plan": {}}),
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "kept.jsonl"

    counts = synthea.select(src, out, since="2015-01-01")

    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["visit"]["date"] for r in kept] == ["2017-06-01", "2018-06-01"]
    assert [r["plan"] for r in kept] == [{"treatment": "", "medications": []}] * 2
    assert counts == {
        "read": 7,
        "kept": 2,
        "before_window": 1,
        "no_diabetes": 2,
        "unreadable": 2,
        "treatment_dropped": 2,
    }
    err = capsys.readouterr().err
    assert "line 6: visit.date" in err and "line 7: visit.date" in err
    assert synthea.select(src, tmp_path / "all.jsonl")["kept"] == 3  # no --since: every visit with diabetes
    synthea.select(src, tmp_path / "as_read.jsonl", since="2015-01-01", keep_treatment=True)
    assert json.loads((tmp_path / "as_read.jsonl").read_text().splitlines()[0])["plan"]["treatment"].startswith(
        "Patient"
    )


def test_select_errors_name_the_input(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        synthea.select(tmp_path / "missing.jsonl", tmp_path / "out.jsonl")
    (tmp_path / "r.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="--since: 'last year' is not a date"):
        synthea.select(tmp_path / "r.jsonl", tmp_path / "out.jsonl", since="last year")


def test_an_ended_request_carries_its_end_date():
    """Synthea's exporter writes `status: stopped` and no date; the stop must reach the bundle (module docstring)."""

    class Exporter:  # stands in for synthea.export.fhir.FHIRExporter
        def _medication_request(self, medication, person):
            return {"resource": {"resourceType": "MedicationRequest", "status": "stopped"}}

    exporter = synthea._exporter_class(Exporter)()
    start, end = dt.datetime(2016, 3, 1, 9), dt.datetime(2019, 4, 2, 9)
    ended = exporter._medication_request(SimpleNamespace(time=start, end_time=end), None)["resource"]
    assert ended["dispenseRequest"]["validityPeriod"] == {"start": "2016-03-01", "end": "2019-04-02"}
    # a valid R4 request, which the ingest reads (a time without a zone was not, and the request was skipped)
    request = {**ended, "intent": "order", "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": {}}
    assert MedicationRequest.model_validate(request).dispenseRequest.validityPeriod.end is not None
    ongoing = exporter._medication_request(SimpleNamespace(time=start, end_time=None), None)["resource"]
    assert "dispenseRequest" not in ongoing


def test_generate_keeps_patients_with_diabetes_until_the_splits_are_filled(tmp_path):
    pytest.importorskip("synthea")
    summary = synthea.generate(tmp_path, seed=7, min_train=1, min_test=1)

    assert summary["split_visits"]["train"] >= 1 and summary["split_visits"]["test"] >= 1
    assert sum(summary["split_visits"].values()) == summary["window"]["visits"]
    bundles = sorted((tmp_path / "fhir").glob("*.json"))
    assert len(bundles) == summary["patients_kept"] >= 3
    for path in bundles:
        resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
        codes = {c["code"] for r in resources if r["resourceType"] == "Condition" for c in r["code"]["coding"]}
        assert synthea.DIABETES_SNOMED in codes, path.name
        for r in resources:
            if r["resourceType"] == "MedicationRequest" and r["status"] == "stopped":
                assert r["dispenseRequest"]["validityPeriod"]["end"], path.name
    assert json.loads((tmp_path / "summary.json").read_text())["patients_sha256"] == summary["patients_sha256"]


def test_generate_without_synthea_says_how_to_install(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_synthea(name, *args, **kw):
        if name.startswith("synthea"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_synthea)
    with pytest.raises(ConfigError, match=r"pip install -e '.\[synthea\]'"):
        synthea.generate(tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~4 min on idle cores; base writes to its token limit, slow when cores are shared
def test_make_synthea_eval_end_to_end_on_a_tiny_population(tmp_path):
    """`make synthea-eval` on a tiny population, two training steps and four test visits: every engine scored."""
    pytest.importorskip("synthea")
    if shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "diaguide").exists():
        pytest.skip("needs make and the project's .venv")
    run = tmp_path / "syn"
    args = [
        "make",
        "-C",
        str(ROOT),
        "synthea-eval",
        f"SYNTHEA_DIR={run}",
        "SYNTHEA_ARGS=--min-train 8 --min-test 2",
        "SYNTHEA_TRAIN=train.max_steps=2 train.save_every=2 train.eval_every=2",
        "SYNTHEA_EVAL=--limit 4",
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1700, env=os.environ | {"DIAGUIDE_DEBUG": ""})
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads((run / "population" / "summary.json").read_text())
    manifest = json.loads((run / "dataset" / "manifest.json").read_text())
    # the generator's split is the one the dataset builder made
    assert {k: manifest["splits"][k]["records"] for k in ("train", "val", "test")} == summary["split_visits"]
    assert (run / "models" / "smollm2-135m-lora" / "adapter_config.json").is_file()
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(metrics["engines"]) == {"base", "lora", "carry_forward", "rules"}
    for scored in metrics["engines"].values():
        assert scored["n"] == 4 and "drug_f1" in scored["overall"]["metrics"]

    # the same seed gives the same patients
    again = tmp_path / "again"
    assert main(["synthea", "generate", "--seed", "7", "--min-train", "8", "--min-test", "2", "--out", str(again)]) == 0
    assert json.loads((again / "summary.json").read_text())["patients_sha256"] == summary["patients_sha256"]
