"""`diaguide ingest` end to end through the CLI: output, summary, de-identification, bad input."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from diaguide.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUNDLE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "fullUrl": "urn:uuid:p1",
            "resource": {
                "resourceType": "Patient",
                "name": [{"given": ["Zebulon"], "family": "Quixote"}],
                "gender": "male",
                "birthDate": "1950-01-01",
                "identifier": [{"value": "HX-42-Q"}],
                "telecom": [{"value": "ring 4411"}],
                "address": [{"line": ["Quiet Meadow"], "city": "Smallville"}],
            },
        },
        {
            "fullUrl": "urn:uuid:e1",
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "urn:uuid:p1"},
                "period": {"start": "2023-01-10T09:00:00Z"},
                "reasonCode": [{"text": "Zebulon of Smallville (Quiet Meadow, ring 4411, HX-42-Q) reports thirst"}],
            },
        },
        {
            "fullUrl": "urn:uuid:e2",
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "urn:uuid:p1"},
                "period": {"start": "2023-06-10T09:00:00Z"},
            },
        },
    ],
}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err


def test_chinese_export_end_to_end(tmp_path, capsys):
    out = tmp_path / "visits.jsonl"
    status = main(["ingest", str(EXAMPLES / "his_zh.csv"), "--format", "csv", "--mapping", "zh_his", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 0
    assert "1 file read" in err and "6 visits written" in err
    raw = out.read_text(encoding="utf-8")
    assert "二甲双胍" in raw and "\\u" not in raw  # Chinese stays readable
    visits = {v["visit_id"]: v for v in _lines(out)}
    assert len(visits) == 6
    first = visits["MZ0001"]
    labs = {lab["loinc"]: lab for lab in first["labs"]}
    assert labs["1558-6"]["value"] == pytest.approx(140.5, abs=0.05) and labs["1558-6"]["unit"] == "mg/dL"
    assert labs["2160-0"]["value"] == pytest.approx(0.97, abs=0.005)
    assert labs["4548-4"]["value"] == pytest.approx(7.0, abs=0.05)
    third = visits["MZ0003"]  # earlier visits of the same patient summarised, oldest first
    assert [h["visit_id"] for h in third["history"]] == ["MZ0001", "MZ0002"]
    assert third["history"][0]["hba1c"] == pytest.approx(7.0, abs=0.05)
    assert visits["MZ0201"]["history"] == []


def test_folder_and_format_jsonl_with_auto_mapping(tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(EXAMPLES / "his_en.jsonl", folder / "a.jsonl")
    out = folder / "visits.jsonl"  # inside the input folder: must not be read as input
    assert main(["ingest", str(folder), "--format", "jsonl", "--out", str(out)]) == 0
    visits = _lines(out)
    assert len(visits) == 5 and visits[0]["language"] == "en"
    assert "1 file read" in capsys.readouterr().err


def test_deidentify_needs_a_salt(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DIAGUIDE_DEID_SALT", raising=False)
    out = tmp_path / "v.jsonl"
    args = ["ingest", str(EXAMPLES / "his_zh.csv"), "--format", "csv", "--out", str(out), "--deidentify"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--salt" in err and "DIAGUIDE_DEID_SALT" in err
    monkeypatch.setenv("DIAGUIDE_DEID_SALT", "from-env")
    assert main(args) == 0
    assert "de-identified:" in capsys.readouterr().err


def test_deidentified_output_holds_no_names_ids_or_raw_dates(tmp_path, capsys):
    text = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig")
    text = text.replace("口干多饮3月", "口干多饮3月，联系电话13812345678，2023年5月3日起病")
    text = text.replace("患者3月前出现", "张三3月前出现")  # no pattern finds it; the 姓名 column does
    src = tmp_path / "zh.csv"
    src.write_text(text, encoding="utf-8-sig")
    out = tmp_path / "v.jsonl"
    args = ["ingest", str(src), "--format", "csv", "--mapping", "zh_his", "--out", str(out), "--deidentify"]
    assert main([*args, "--salt", "k"]) == 0
    raw = out.read_text(encoding="utf-8")
    for planted in ("张三", "李四", "王五", "P0001", "MZ0001", "13812345678", "2023-05-03", "2023年5月3日"):
        assert planted not in raw, planted
    visits = _lines(out)
    assert len({v["patient_id"] for v in visits}) == 3
    third = next(v for v in visits if len(v["history"]) == 2)
    # a patient's intervals survive the shift: 2023-05-03 -> 2024-01-15 is 257 days
    gap = date.fromisoformat(third["date"]) - date.fromisoformat(third["history"][0]["date"])
    assert gap.days == 257
    err = capsys.readouterr().err
    assert "name 1" in err and "phone" in err
    assert main([*args, "--salt", "k"]) == 0 and out.read_text(encoding="utf-8") == raw  # deterministic


def test_bad_inputs_one_line_each_and_good_rows_still_written(tmp_path, capsys):
    lines = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index("糖化血红蛋白")] = "80"  # HbA1c 80 %: implausible
    lines[2] = ",".join(cells)
    (tmp_path / "bad_row.csv").write_text("\n".join(lines), encoding="utf-8")
    (tmp_path / "renamed.csv").write_text("\n".join(lines).replace("空腹血糖", "FPG"), encoding="utf-8")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 40)
    out = tmp_path / "v.jsonl"
    paths = [str(tmp_path / n) for n in ("bad_row.csv", "renamed.csv", "empty.csv", "garbage.csv")]
    status = main(["ingest", *paths, "--format", "csv", "--mapping", "zh_his", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    _no_traceback(err)
    assert status == 1
    problems = [line for line in err.splitlines() if not line.startswith("ingest:")]
    assert len(problems) == 4, err
    assert any(f"{tmp_path / 'bad_row.csv'} row 3: 糖化血红蛋白: implausible HbA1c" in p for p in problems)
    assert any("renamed.csv" in p and "空腹血糖" in p and "zh_his.yaml" in p for p in problems)
    assert any("empty.csv" in p and "empty file" in p for p in problems)
    assert any("garbage.csv" in p and "binary" in p for p in problems)
    assert "4 files read" in err and "3 failed" in err and "1 row rejected" in err
    assert [v["visit_id"] for v in _lines(out)] == ["MZ0001", "MZ0003", "MZ0101", "MZ0102", "MZ0201"]


def test_missing_path_is_reported_and_others_written(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    status = main(
        ["ingest", str(tmp_path / "nope.csv"), str(EXAMPLES / "his_en.csv"), "--format", "csv", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert status == 1 and "nope.csv: no such file" in err and len(_lines(out)) == 5


def test_fhir_files_with_deidentification(tmp_path, capsys):
    good = tmp_path / "patient.json"
    good.write_text(json.dumps(BUNDLE), encoding="utf-8")
    not_bundle = tmp_path / "observation.json"
    not_bundle.write_text('{"resourceType": "Observation"}', encoding="utf-8")
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps(BUNDLE)[:200], encoding="utf-8")
    out = tmp_path / "v.jsonl"
    status = main(["ingest", str(tmp_path), "--format", "fhir", "--out", str(out), "--deidentify", "--salt", "x"])
    err = capsys.readouterr().err
    _no_traceback(err)
    assert status == 1
    assert "observation.json" in err and "truncated.json" in err and "2 failed" in err
    raw = out.read_text(encoding="utf-8")
    visits = _lines(out)
    assert len(visits) == 2 and "2023-01-10" not in raw
    for planted in ("Zebulon", "Smallville", "Quiet Meadow", "4411", "HX-42-Q"):
        assert planted not in raw, planted
    assert any("[NAME]" in v["chief_complaint"] for v in visits)


def test_history_spans_monthly_exports_and_repeated_rows_warn(tmp_path, capsys):
    lines = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig").splitlines()
    (tmp_path / "2023.csv").write_text("\n".join([lines[0], lines[1], lines[2]]), encoding="utf-8")
    (tmp_path / "2024.csv").write_text("\n".join([lines[0], lines[3], lines[2]]), encoding="utf-8")
    out = tmp_path / "out" / "v.jsonl"
    assert main(["ingest", str(tmp_path), "--format", "csv", "--out", str(out)]) == 0
    visits = {v["visit_id"]: v for v in _lines(out)}
    assert sorted(visits) == ["MZ0001", "MZ0002", "MZ0003"]
    assert [h["visit_id"] for h in visits["MZ0003"]["history"]] == ["MZ0001", "MZ0002"]
    err = capsys.readouterr().err
    assert "2024.csv row 3: repeats the id of an earlier visit" in err and "1 warning" in err


def test_visits_jsonl_can_be_deidentified_as_it_is(tmp_path, capsys):
    plain = tmp_path / "plain.jsonl"
    main(["ingest", str(EXAMPLES / "his_en.csv"), "--format", "csv", "--out", str(plain)])
    out = tmp_path / "deid.jsonl"
    status = main(["ingest", str(plain), "--format", "jsonl", "--deidentify", "--salt", "k", "--out", str(out)])
    assert status == 0
    before, after = _lines(plain), _lines(out)
    assert len(after) == len(before) == 5
    assert after[2]["history"] and "E1001" not in json.dumps(after) and "M900001" not in json.dumps(after)
    assert after[0]["labs"] == [{**lab, "date": after[0]["date"]} for lab in before[0]["labs"]]
    capsys.readouterr()


def test_progress_bar_on_large_input(tmp_path, capsys, monkeypatch):
    from diaguide.records import ingest

    monkeypatch.setattr(ingest, "LARGE_INPUT", 1)
    out = tmp_path / "v.jsonl"
    assert main(["ingest", str(EXAMPLES / "his_zh.csv"), "--format", "csv", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "ingest:   0%" in err and "ingest: 1 file read" in err  # the bar, then the summary


def test_no_progress_flag_and_out_equal_to_input(tmp_path, capsys, monkeypatch):
    from diaguide.records import ingest

    monkeypatch.setattr(ingest, "LARGE_INPUT", 1)
    out = tmp_path / "v.jsonl"
    assert main(["ingest", str(EXAMPLES / "his_zh.csv"), "--format", "csv", "--out", str(out), "--no-progress"]) == 0
    assert "%" not in capsys.readouterr().err
    assert main(["ingest", str(out), "--format", "jsonl", "--out", str(out)]) == 2
    assert "also an input" in capsys.readouterr().err and len(_lines(out)) == 6


def test_excel_workbook_gets_a_hint(tmp_path, capsys):
    book = tmp_path / "export.csv"
    book.write_bytes(b"PK\x03\x04" + bytes(200))
    assert main(["ingest", str(book), "--format", "csv", "--mapping", "zh_his", "--out", str(tmp_path / "v")]) == 1
    assert "save it as CSV" in capsys.readouterr().err


def test_folder_without_files_of_the_format_is_a_problem(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("nothing", encoding="utf-8")
    status = main(["ingest", str(tmp_path), "--format", "fhir", "--out", str(tmp_path / "v.jsonl")])
    err = capsys.readouterr().err
    assert status == 1 and "no .gz/.json files in this folder" in err


def test_a_bug_on_one_file_does_not_lose_the_others(tmp_path, capsys, monkeypatch):
    from diaguide.records import fhir

    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(BUNDLE), encoding="utf-8")
    real = fhir.read_fhir_file

    def flaky(path, **kwargs):
        if Path(path).name == "a.json":
            raise KeyError("resource")
        return real(path, **kwargs)

    monkeypatch.setattr(fhir, "read_fhir_file", flaky)
    monkeypatch.delenv("DIAGUIDE_DEBUG", raising=False)
    out = tmp_path / "out.jsonl"
    assert main(["ingest", str(tmp_path), "--format", "fhir", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "a.json: internal error reading this file (KeyError)" in err and "Traceback" not in err
    assert len(_lines(out)) == 2
