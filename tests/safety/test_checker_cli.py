"""`diaguide check` and apply_safety: what a physician or a pipeline sees."""

from __future__ import annotations

import json

import pytest

from diaguide import cli
from diaguide.errors import InputError
from diaguide.records.schema import Finding
from diaguide.safety.checker import apply_safety, check_command


@pytest.fixture
def files(tmp_path, visit_factory, plan_factory):
    visit = visit_factory(egfr=25, dx=("E11.9", "I50.9"), meds=(("metformin", "1000 mg bid"),))
    plan = plan_factory(("metformin", "continue", "1000 mg bid"), ("pioglitazone", "start", "15 mg qd"))
    vpath, ppath = tmp_path / "visit.json", tmp_path / "plan.json"
    vpath.write_text(visit.model_dump_json(), encoding="utf-8")
    ppath.write_text(plan.model_dump_json(), encoding="utf-8")
    return vpath, ppath, plan


def test_check_command_prints_findings_and_complexity(files, capsys) -> None:
    vpath, ppath, _ = files
    assert check_command(input=str(vpath), fmt="visit", plan=str(ppath), region="ada") == 0
    out = json.loads(capsys.readouterr().out)
    rules = {f["rule_id"]: f for f in out["findings"]}
    assert rules["metformin_egfr_below_30"]["severity"] == "critical"
    assert rules["tzd_heart_failure"]["drugs"] == ["pioglitazone"]
    assert all(f["source"] for f in out["findings"])
    assert out["complexity"]["level"] in ("moderate", "high")
    assert any("heart failure" in r for r in out["complexity"]["reasons"])


def test_cli_dispatches_check_and_accepts_a_plan_record(files, tmp_path, capsys) -> None:
    vpath, _, plan = files
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"visit": {}, "plan": plan.model_dump(mode="json")}), encoding="utf-8")
    assert cli.main(["check", "--input", str(vpath), "--plan", str(record), "--region", "cds"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"]


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ('{"medications": [{"drug": "metformin", "action": "double"}]}', "medications.0.action"),
        ('{"medications": [{"dose": "500 mg"}]}', "medications.0.drug"),
        ('{"medications": [', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_plan_file_is_one_line_naming_file_and_field(files, tmp_path, content, expect) -> None:
    vpath, _, _ = files
    bad = tmp_path / "bad_plan.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as err:
        check_command(input=str(vpath), fmt="visit", plan=str(bad), region=None)
    line = str(err.value)
    assert "bad_plan.json" in line and expect in line and "\n" not in line


def test_bad_plan_through_cli_exits_nonzero_without_traceback(files, tmp_path, capsys) -> None:
    vpath, _, _ = files
    code = cli.main(["check", "--input", str(vpath), "--plan", str(tmp_path / "missing.json")])
    err = capsys.readouterr().err
    assert code != 0 and "missing.json" in err and "Traceback" not in err


def test_apply_safety_attaches_findings_and_prompts_for_critical(visit_factory, plan_factory) -> None:
    visit = visit_factory(egfr=25)
    plan = plan_factory(("metformin", "continue", "500 mg bid"))
    earlier = Finding(rule_id="x", severity="info", message="kept", source="s")
    plan.findings = [earlier, earlier]
    checked = apply_safety(visit, plan)
    assert plan.prompts == [] and len(plan.findings) == 2, "the input plan is not modified"
    assert [f.rule_id for f in checked.findings].count("x") == 1
    assert any(f.rule_id == "metformin_egfr_below_30" for f in checked.findings)
    assert len(checked.prompts) == 1 and "eGFR 25" in checked.prompts[0]
    again = apply_safety(visit, checked)
    assert again.findings == checked.findings and again.prompts == checked.prompts


def test_apply_safety_prompt_in_chinese_for_zh_visit(visit_factory, plan_factory) -> None:
    checked = apply_safety(visit_factory(egfr=25, language="zh"), plan_factory(("二甲双胍", "continue")))
    assert checked.prompts and checked.prompts[0].startswith("安全警示")


def test_check_accepts_plain_dicts_and_names_a_bad_field() -> None:
    from diaguide.safety.checker import check

    visit = {"visit_id": "v", "patient_id": "p", "date": "2025-01-01", "labs": [{"loinc": "33914-3", "value": 20}]}
    findings = check(visit, {"medications": [{"drug": "metformin", "action": "continue"}]})
    assert findings[0].rule_id == "metformin_egfr_below_30"
    with pytest.raises(InputError, match="medications.0.action"):
        check(visit, {"medications": [{"drug": "metformin", "action": "maybe"}]})
