"""The CDrugRed form (CHIP-2025 discharge medication records) through the shipped `cdrugred` mapping: the
example file of examples/, the drugs a history text names as taken, and records the issue calls bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diaguide.cli import main
from diaguide.records.plans_his import drugs_in_text
from diaguide.records.schema import CohortRecord, Medication

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cdrugred_example.json"


def _ingest(path: Path, out: Path, *extra: str) -> tuple[int, dict[str, CohortRecord]]:
    status = main(["ingest", str(path), "--format", "jsonl", "--plans", "--out", str(out), "--no-progress", *extra])
    lines = out.read_text(encoding="utf-8").splitlines()
    return status, {(r := CohortRecord.model_validate_json(line)).visit.visit_id: r for line in lines}


def _actions(record: CohortRecord) -> dict[str, str]:
    return {m.drug: m.action for m in record.plan.medications}


def test_the_example_ingests_with_the_shipped_mapping_picked_by_its_fields(tmp_path, capsys):
    status, got = _ingest(EXAMPLE, tmp_path / "r.jsonl")  # no --mapping: cdrugred fits the fields
    assert status == 0 and len(got) == 6
    first = got["CD0001"]
    assert first.visit.language == "zh" and str(first.visit.date) == "2024-03-11"  # dated by the discharge
    assert first.visit.present_illness.startswith("现病史：患者5年前诊断2型糖尿病")
    assert "\n诊疗过程：入院后完善相关检查" in first.visit.present_illness
    assert [d.icd10 for d in first.visit.diagnoses] == ["E11.9", "I10"]
    assert first.visit.patient.bmi == 27.1 and first.visit.patient.sex == "male"
    # the discharge list against what 现病史/既往史 say the patient took
    assert _actions(first) == {"盐酸二甲双胍片": "continue", "达格列净片": "start", "缬沙坦胶囊": "continue"}
    assert {m.drug for m in first.visit.medications} == {"二甲双胍", "缬沙坦"}
    # 曾服用格列美脲，已停用: not on the list before; 西格列汀 is
    assert _actions(got["CD0002"]) == {"甘精胰岛素注射液": "start", "西格列汀片": "continue", "甲钴胺片": "start"}
    # a drug the formulary does not know keeps its name, class other, and is matched in the text by its name
    assert _actions(got["CD0003"])["非布司他片"] == "continue"
    assert next(m for m in got["CD0003"].plan.medications if m.drug == "非布司他片").drug_class == "other"
    # a drug the history names and the discharge list leaves out is no order: a text is not a regimen
    assert _actions(got["CD0005"]) == {"甘精胰岛素注射液": "start", "利格列汀片": "start"}
    assert _actions(got["CD0006"]) == {"瑞舒伐他汀钙片": "start", "依折麦布片": "start"}
    assert [h.visit_id for h in got["CD0004"].visit.history] == ["CD0001"]


def test_empty_or_unreadable_discharge_lists_are_named_and_the_rest_written(tmp_path, capsys):
    records = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    records[1]["出院带药"] = []
    records[2]["出院带药"] = ["利拉鲁肽注射液 0.6mg qd", "20mg qd"]
    records[3]["出院带药"] = ["盐酸二甲双胍片 0.5g tid", "盐酸二甲双胍片 0.5g tid", "达格列净片 10mg qd"]
    path = tmp_path / "cd.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    status, got = _ingest(path, tmp_path / "r.jsonl", "--mapping", "cdrugred")
    err = capsys.readouterr().err
    assert status == 1 and sorted(got) == ["CD0001", "CD0004", "CD0005", "CD0006"]
    assert f"{path} record 2: 出院带药: empty medication list; no plan for this record" in err
    assert f"{path} record 3: 出院带药: item 2 of 2 names no drug; no plan for this record" in err
    assert f"{path} record 4: 出院带药: item 2 repeats item 1 (same drug and dose); one kept" in err
    assert "4 records written" in err and "2 visits without a derivable plan" in err and "3 plan problems" in err
    assert _actions(got["CD0004"]) == {"盐酸二甲双胍片": "continue", "达格列净片": "continue"}


@pytest.mark.parametrize(
    ("text", "taken"),
    [
        ("高血压3年，口服缬沙坦80mg qd。否认服用降糖药。", {"缬沙坦"}),
        ("曾服用格列美脲，已停用；现口服西格列汀。", {"西格列汀"}),
        ("既往注射门冬胰岛素，后改为甘精胰岛素。", {"甘精胰岛素"}),
        ("停用格列齐特，改用达格列净10mg qd，继续服用二甲双胍。", {"达格列净", "二甲双胍"}),
        ("Takes metformin 500 mg twice daily. Previously on glipizide. No insulin.", {"metformin"}),
        ("Lisinopril was discontinued last year; now on losartan.", {"losartan"}),
        ("Switched from glipizide to sitagliptin in May; takes atorvastatin.", {"sitagliptin", "atorvastatin"}),
    ],
)
def test_drugs_a_history_names_as_taken_in_chinese_and_english(text, taken):
    assert {m.drug for m in drugs_in_text(text)} == taken


def test_a_drug_outside_the_formulary_is_found_by_its_written_name():
    written = [Medication(drug="非布司他片", drug_class="other")]
    assert [m.drug for m in drugs_in_text("口服非布司他20mg qd。", written)] == ["非布司他片"]
    assert drugs_in_text("否认服用非布司他。", written) == []
