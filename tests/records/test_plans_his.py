"""The physician's plan read from HIS exports (docs/records.md, "HIS exports"): the shipped examples in
English and Chinese, hand-written rows for each action, and the bad input the issue names."""

from __future__ import annotations

import json
from pathlib import Path

from diaguide.cli import main
from diaguide.records.schema import CohortRecord

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZH_HEADER = "门诊号,患者ID,就诊日期,用药,处方,现用药,检验申请,处理意见"


def _ingest(path: Path, fmt: str, out: Path, *extra: str) -> tuple[int, dict[str, CohortRecord]]:
    status = main(["ingest", str(path), "--format", fmt, "--plans", "--out", str(out), "--no-progress", *extra])
    lines = out.read_text(encoding="utf-8").splitlines()
    return status, {(r := CohortRecord.model_validate_json(line)).visit.visit_id: r for line in lines}


def _actions(record: CohortRecord) -> dict[str, str]:
    return {m.drug: m.action for m in record.plan.medications}


def test_chinese_example_each_visit_against_the_list_before(tmp_path, capsys):
    status, got = _ingest(EXAMPLES / "his_zh.csv", "csv", tmp_path / "r.jsonl")
    assert status == 0 and len(got) == 6
    assert _actions(got["MZ0001"]) == {"二甲双胍": "start"}  # 现用药 says 无
    assert _actions(got["MZ0002"]) == {"二甲双胍": "adjust", "缬沙坦": "start"}  # 0.5g bid -> 0.5g tid
    assert _actions(got["MZ0003"]) == {
        "二甲双胍": "adjust",
        "达格列净": "start",
        "缬沙坦": "continue",
        "阿托伐他汀": "start",
    }
    assert _actions(got["MZ0101"]) == {"阿卡波糖": "continue"}
    assert got["MZ0102"].visit.medications[0].drug == "阿卡波糖"  # the input is the list before, not the prescription
    assert got["MZ0201"].plan.medications == [] and got["MZ0201"].plan.treatment.startswith("生活方式干预")
    assert [lab.loinc for lab in got["MZ0003"].plan.labs] == ["4548-4", "57698-3"]
    assert got["MZ0003"].plan.source == "record" and got["MZ0003"].plan.medications[1].drug_class == "sglt2i"
    assert [h.visit_id for h in got["MZ0003"].visit.history] == ["MZ0001", "MZ0002"]


def test_english_example_csv_and_jsonl_agree(tmp_path, capsys):
    status, csv_got = _ingest(EXAMPLES / "his_en.csv", "csv", tmp_path / "a.jsonl")
    assert status == 0
    status, jsonl_got = _ingest(EXAMPLES / "his_en.jsonl", "jsonl", tmp_path / "b.jsonl")
    assert status == 0 and csv_got == jsonl_got
    assert _actions(csv_got["E1001"]) == {"metformin": "adjust", "lisinopril": "continue"}
    assert _actions(csv_got["E1002"]) == {"metformin": "continue", "empagliflozin": "start", "lisinopril": "continue"}
    assert _actions(csv_got["E3001"]) == {"glipizide": "continue", "insulin glargine": "adjust"}
    assert csv_got["E1001"].plan.treatment.startswith("Increase metformin")
    assert "51990-0" in [lab.loinc for lab in csv_got["E1001"].plan.labs]


def _zh_rows(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "his.csv"
    path.write_text("\n".join([ZH_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


MAPPING = """
visit_id: 门诊号
patient_id: 患者ID
date: 就诊日期
language: zh
medications: {column: 用药, delimiter: "[;；]", none_values: [无]}
prescription: {column: 处方, delimiter: "[;；]", none_values: [无]}
current_medications: {column: 现用药, delimiter: "[;；]", none_values: [无]}
lab_orders: {column: 检验申请, delimiter: "[;；]", codes: {血糖: 1558-6}}
plan: 处理意见
"""


def test_a_drug_left_out_of_the_prescription_is_stopped_and_doses_compare_as_amounts(tmp_path, capsys):
    path = _zh_rows(
        tmp_path,
        "A1,P1,2024-01-05,,二甲双胍 500mg bid；格列美脲 2mg qd,二甲双胍 0.5g 每日2次；格列美脲 2mg qd,血糖,停用格列美脲",
        "A2,P1,2024-04-05,,二甲双胍 1g bid,,4548-4,",
    )
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    status, got = _ingest(path, "csv", tmp_path / "r.jsonl", "--mapping", str(tmp_path / "m.yaml"))
    assert status == 0
    assert _actions(got["A1"]) == {"二甲双胍": "continue", "格列美脲": "continue"}  # 0.5 g twice a day is 500 mg bid
    a2 = got["A2"]
    assert _actions(a2) == {"二甲双胍": "adjust", "格列美脲": "stop"}
    assert next(m for m in a2.plan.medications if m.action == "stop").basis == (
        "in force before the visit, not in its prescription"
    )
    assert [lab.loinc for lab in got["A1"].plan.labs] == ["1558-6"] and a2.plan.labs[0].loinc == "4548-4"


def test_bad_rows_are_named_counted_and_the_good_ones_written(tmp_path, capsys):
    path = _zh_rows(
        tmp_path,
        "B1,P1,2024-01-05,,二甲双胍 0.5g bid；0.5g bid,无,,",  # an item that names no drug
        "B2,P2,2024-01-05,,二甲双胍 0.5g bid；二甲双胍 0.5g bid,无,,",  # the same order twice
        "B3,P3,2024-01-05,,,无,,",  # no prescription written
        "B4,P4,2024-01-05,,阿卡波糖 50mg tid,,,",  # a first visit with no list before it
        "B5,P5,2024-01-05,,阿卡波糖 50mg tid,无,糖耐量,",  # a lab the mapping cannot code
    )
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    status, got = _ingest(path, "csv", tmp_path / "r.jsonl", "--mapping", str(tmp_path / "m.yaml"))
    err = capsys.readouterr().err
    assert status == 1 and sorted(got) == ["B2", "B5"]
    assert _actions(got["B2"]) == {"二甲双胍": "start"} and got["B5"].plan.labs == []
    assert f"{path} row 2: 处方: item 2 of 2 names no drug; no plan for this record" in err
    assert f"{path} row 3: 处方: item 2 repeats item 1 (same drug and dose); one kept" in err
    assert f"{path} row 4: 处方: empty medication list; no plan for this record" in err
    assert f"{path} row 5: 处方: no medication list before this visit" in err
    assert f"{path} row 6: 检验申请: item 1 is a lab the mapping has no LOINC for; left out" in err
    assert "2 records written" in err and "3 visits without a derivable plan (not written)" in err
    assert "5 plan problems" in err
    assert "二甲双胍" not in err  # prescriptions are patient data: named by row and item, never quoted


def test_a_file_without_the_prescription_column_is_named(tmp_path, capsys):
    text = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig").replace(",处方,", ",处方单,")
    path = tmp_path / "zh.csv"
    path.write_text(text, encoding="utf-8")
    assert main(["ingest", str(path), "--format", "csv", "--plans", "--out", str(tmp_path / "r.jsonl")]) == 1
    assert "names column(s) 处方 that the file does not have" in capsys.readouterr().err
    # without --plans the same file ingests as Visits
    assert main(["ingest", str(path), "--format", "csv", "--out", str(tmp_path / "v.jsonl")]) == 0
    assert len((tmp_path / "v.jsonl").read_text(encoding="utf-8").splitlines()) == 6
    assert json.loads((tmp_path / "v.jsonl").read_text(encoding="utf-8").splitlines()[0])["visit_id"] == "MZ0001"
