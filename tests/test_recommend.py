"""`diaguide recommend`: Plan JSON with safety findings on stdout; one-line errors otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import carebundle

from diaguide import cli
from diaguide import recommend as recommend_module
from diaguide.records.schema import Plan, Visit

CASES = Path(__file__).parent / "knowledge" / "cases"


def _write_visit(tmp_path: Path, case: str) -> Path:
    visit = json.loads((CASES / f"{case}.json").read_text(encoding="utf-8"))["visit"]
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(visit, ensure_ascii=False), encoding="utf-8")
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["recommend", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_rules_engine_prints_the_plan_with_findings(tmp_path, capsys):
    status, out, err = _run(
        capsys, "--engine", "rules", "--input", str(_write_visit(tmp_path, "05_egfr25_on_metformin"))
    )
    assert status == 0, err
    plan = Plan.model_validate_json(out)
    assert "findings" in json.loads(out)
    assert plan.hba1c_goal == 7.5
    assert {(m.drug_class, m.action) for m in plan.medications} >= {("metformin", "stop"), ("sglt2i", "start")}
    assert out.startswith("{\n  ")  # indent 2


def test_chinese_visit_prints_chinese_text_unescaped(tmp_path, capsys):
    path = _write_visit(tmp_path, "14_zh_new_dx_cds_intensive")
    status, out, _ = _run(capsys, "--input", str(path), "--region", "cds")
    assert status == 0
    assert "HbA1c控制目标" in out and "\\u" not in out
    classes = {m["drug_class"] for m in json.loads(out)["medications"] if m["action"] == "start"}
    assert {"basal_insulin", "prandial_insulin"} <= classes


def test_region_comes_from_the_environment_when_not_given(tmp_path, capsys, monkeypatch):
    path = _write_visit(tmp_path, "14_zh_new_dx_cds_intensive")
    monkeypatch.setenv("DIAGUIDE_REGION", "ada")
    _, ada, _ = _run(capsys, "--input", str(path))
    monkeypatch.setenv("DIAGUIDE_REGION", "cds")
    _, cds, _ = _run(capsys, "--input", str(path))
    assert "prandial_insulin" not in ada and "prandial_insulin" in cds


def test_cohort_style_record_is_read_as_its_visit(tmp_path, capsys):
    visit = json.loads((CASES / "02_t2dm_ascvd.json").read_text(encoding="utf-8"))["visit"]
    path = tmp_path / "visits.jsonl"
    path.write_text(json.dumps({"visit": visit, "plan": {"treatment": "x"}}) + "\n", encoding="utf-8")
    status, out, _ = _run(capsys, "--input", str(path))
    assert status == 0 and json.loads(out)["hba1c_goal"] == 7.0


def test_fhir_bundle_input(tmp_path, capsys):
    path = tmp_path / "bundle.json"
    path.write_text(carebundle.to_json(carebundle.generate_bundle(profile="type2_diabetes", seed=3)), encoding="utf-8")
    status, out, err = _run(capsys, "--input", str(path), "--format", "fhir")
    assert status == 0, err
    plan = Plan.model_validate_json(out)
    assert plan.treatment.startswith("HbA1c goal") and plan.labs


def test_missing_file_is_one_line_error(tmp_path, capsys):
    status, out, err = _run(capsys, "--input", str(tmp_path / "nope.json"))
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "nope.json" in lines[0] and "Traceback" not in err


class _Continues:
    """A generator that writes one fixed answer: continue metformin 1000 mg bid."""

    kind, model_name, adapter_version = "fake", "fake-model", None

    def generate(self, prompts, max_new_tokens=640):
        from diaguide.inference.base import Generation

        text = "GOAL: HbA1c <7.0%\nMED: continue | metformin | metformin | 1000 mg | bid\nEND\n"
        return [Generation(text, 1, 1, True) for _ in prompts]


def test_model_engine_plan_goes_through_the_safety_checker(tmp_path, capsys, monkeypatch):
    from diaguide.inference import pipeline

    calls = {}

    def generator_for(kind=None, adapter=None, **options):
        calls.update(adapter=adapter)
        return _Continues()

    monkeypatch.setattr(pipeline, "generator_for", generator_for)
    path = _write_visit(tmp_path, "05_egfr25_on_metformin")  # eGFR 25: metformin contraindicated
    status, out, _ = _run(capsys, "--engine", "model", "--input", str(path), "--adapter", "ad/", "--region", "ada")
    assert status == 0 and calls == {"adapter": "ad/"}
    findings = json.loads(out)["findings"]
    assert any(f["severity"] == "critical" and "metformin" in " ".join(f["drugs"]).lower() for f in findings)


def test_plan_for_returns_a_checked_reference_plan():
    visit = Visit.model_validate(json.loads((CASES / "09_pregnancy_t2dm.json").read_text(encoding="utf-8"))["visit"])
    plan = recommend_module.plan_for(visit, engine="rules")
    assert plan.hba1c_goal == 6.0
    assert not [f for f in plan.findings if f.severity == "critical"]  # the reference plan is safe
