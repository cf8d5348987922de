"""HIS exports -> Visits: mappings, encodings, unit conversion, and rows that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from diaguide.errors import ConfigError, InputError
from diaguide.records.mapping import load_mapping, parse_date, shipped_mappings
from diaguide.records.tabular import parse_medication, read_tabular

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _visits(path: Path, fmt: str, mapping: str) -> list:
    results = list(read_tabular(path, fmt, load_mapping(mapping)))
    assert all(r.error is None for r in results), [r.error.line() for r in results if r.error]
    return [r.visit for r in results]


def _lab(visit, loinc: str) -> float:
    return next(lab.value for lab in visit.labs if lab.loinc == loinc)


def test_shipped_mappings_resolve_by_bare_name():
    assert {"zh_his", "en_his"} <= set(shipped_mappings())
    zh = load_mapping("zh_his")
    assert zh.language == "zh" and zh.patient_id == "患者ID"
    assert zh.labs["糖化血红蛋白"].loinc == "4548-4"
    assert "用药" in zh.columns()


def test_unknown_mapping_and_bad_mapping_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="shipped mappings: .*zh_his"):
        load_mapping("no_such_mapping")
    bad = tmp_path / "bad.yaml"
    bad.write_text("visit_id: id\npatient_id: pid\ndate: d\nlabs:\n  x: {loinc: 0000-0}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_mapping(bad)
    assert str(bad) in err.value.line() and "labs" in err.value.line()


def test_chinese_example_converts_si_units_to_canonical():
    visits = _visits(EXAMPLES / "his_zh.csv", "csv", "zh_his")
    assert len(visits) == 6
    first = visits[0]
    assert first.language == "zh" and first.patient.sex == "male" and first.patient.age == 58
    assert _lab(first, "1558-6") == pytest.approx(140.5, abs=0.05)  # 7.8 mmol/L glucose
    assert _lab(first, "2160-0") == pytest.approx(0.97, abs=0.005)  # 86 umol/L creatinine
    assert _lab(first, "4548-4") == pytest.approx(7.0, abs=0.05)  # 53 mmol/mol HbA1c, unit in the cell
    assert _lab(first, "13457-7") == pytest.approx(131.5, abs=0.1)  # 3.4 mmol/L LDL
    assert next(lab for lab in first.labs if lab.loinc == "1558-6").unit == "mg/dL"
    assert first.patient.bmi == pytest.approx(80 / 1.72**2, abs=0.1)
    assert [d.icd10 for d in first.diagnoses] == ["E11.9", "I10"]
    assert first.diagnoses[0].display == "2型糖尿病"
    assert first.allergies == []  # 无
    assert "，" in first.present_illness  # free text kept as written (full-width punctuation)


def test_chinese_text_diagnoses_allergies_and_medications():
    visits = _visits(EXAMPLES / "his_zh.csv", "csv", "zh_his")
    third = visits[2]
    assert "E78.5" in third.icd10_codes()  # 高脂血症, text only, via the mapping's text_codes
    assert [a.substance for a in third.allergies] == ["磺胺类"]
    meds = {m.drug: m for m in third.medications}
    assert meds["二甲双胍"].drug_class == "metformin" and meds["二甲双胍"].dose == "1g"
    assert meds["达格列净"].drug_class == "sglt2i" and meds["达格列净"].frequency == "qd"
    assert meds["阿托伐他汀"].drug_class == "statin"
    assert visits[5].medications == []  # empty cell


def test_english_csv_and_jsonl_give_the_same_visits():
    csv_visits = _visits(EXAMPLES / "his_en.csv", "csv", "en_his")
    jsonl_visits = _visits(EXAMPLES / "his_en.jsonl", "jsonl", "en_his")
    assert [v.model_dump() for v in csv_visits] == [v.model_dump() for v in jsonl_visits]
    first = csv_visits[0]
    assert first.patient.age == 61  # born 1961-07-02, seen 2023-02-14
    assert first.patient.height_cm == pytest.approx(175.26, abs=0.01)  # 69 in
    assert first.patient.weight_kg == pytest.approx(95.25, abs=0.01)  # 210 lb
    assert first.vitals.heart_rate == 78
    assert first.diagnoses[0].code == "E11.9" and first.diagnoses[0].display.startswith("Type 2 diabetes")
    assert first.medications[0].drug == "metformin" and first.medications[0].dose == "1000 mg"
    assert first.medications[0].frequency == "twice daily"
    pregnant = next(v for v in csv_visits if v.patient.pregnant)
    assert pregnant.patient.sex == "female" and pregnant.allergies == []  # NKDA


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-16"])
def test_chinese_exports_in_other_encodings(tmp_path, encoding):
    text = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig")
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(text.encode(encoding))
    visits = _visits(path, "csv", "zh_his")
    assert [v.visit_id for v in visits] == [f"MZ0{n}" for n in ("001", "002", "003", "101", "102", "201")]
    assert visits[0].chief_complaint == "口干多饮3月"


def test_tab_separated_export(tmp_path):
    rows = [line.split(",") for line in (EXAMPLES / "his_en.csv").read_text().splitlines()[:2]]
    path = tmp_path / "export.tsv"
    path.write_text("\n".join("\t".join(r) for r in rows), encoding="utf-8")
    mapping = load_mapping("en_his").model_copy(update={"medications": None, "diagnoses": None})
    mapping.path = "en_his"
    [result] = list(read_tabular(path, "csv", mapping))
    assert result.error is None and result.visit.visit_id == "E1001"


@pytest.mark.parametrize(
    ("cell", "column", "needle"),
    [
        ("80", "糖化血红蛋白", "implausible HbA1c"),
        ("7.8 mg/L", "空腹血糖", "unknown unit"),
        ("阴性", "肌酐", "not a number"),
    ],
)
def test_a_bad_row_names_file_row_and_column_and_the_rest_are_read(tmp_path, cell, column, needle):
    lines = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index(column)] = cell
    lines[2] = ",".join(cells)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    results = list(read_tabular(path, "csv", load_mapping("zh_his")))
    bad = [r for r in results if r.error]
    assert len(bad) == 1 and len(results) == 6
    line = bad[0].error.line()
    assert line.startswith(f"{path} row 3: {column}: ") and needle in line


def test_bad_date_is_a_row_error(tmp_path):
    text = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig").replace("2023-08-10", "2023-13-45")
    path = tmp_path / "dates.csv"
    path.write_text(text, encoding="utf-8")
    bad = [r for r in read_tabular(path, "csv", load_mapping("zh_his")) if r.error]
    assert [r.row for r in bad] == [3] and "就诊日期" in bad[0].error.line()


def test_missing_column_names_mapping_column_and_file(tmp_path):
    text = (EXAMPLES / "his_zh.csv").read_text(encoding="utf-8-sig").replace("空腹血糖", "FPG")
    path = tmp_path / "renamed.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(read_tabular(path, "csv", load_mapping("zh_his")))
    line = err.value.line()
    assert str(path) in line and "空腹血糖" in line and "zh_his.yaml" in line


@pytest.mark.parametrize(("content", "needle"), [(b"", "empty file"), (b"\x00\xff\x13binary" * 50, "binary")])
def test_empty_and_binary_files(tmp_path, content, needle):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=needle):
        list(read_tabular(path, "csv", load_mapping("zh_his")))


def test_jsonl_line_that_is_not_json_is_a_row_error(tmp_path):
    lines = (EXAMPLES / "his_en.jsonl").read_text(encoding="utf-8").splitlines()
    lines.insert(1, '{"encounter_id": "E9", truncated')
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    results = list(read_tabular(path, "jsonl", load_mapping("en_his")))
    assert [r.row for r in results if r.error] == [2]
    assert sum(r.visit is not None for r in results) == 5


@pytest.mark.parametrize(
    ("text", "drug", "cls", "dose", "frequency"),
    [
        ("二甲双胍 0.5g bid", "二甲双胍", "metformin", "0.5g", "bid"),
        ("阿卡波糖 50mg tid", "阿卡波糖", "agi", "50mg", "tid"),
        ("甘精胰岛素 12单位 睡前", "甘精胰岛素", "basal_insulin", "12单位", "睡前"),
        ("insulin glargine 18 units nightly", "insulin glargine", "basal_insulin", "18 units", "nightly"),
        ("empagliflozin 10 mg daily", "empagliflozin", "sglt2i", "10 mg", "daily"),
        ("达格列净", "达格列净", "sglt2i", None, None),
    ],
)
def test_parse_medication(text, drug, cls, dose, frequency):
    med = parse_medication(text)
    assert (med.drug, med.drug_class, med.dose, med.frequency) == (drug, cls, dose, frequency)


def test_parse_date_formats():
    formats = load_mapping("zh_his").date_formats(load_mapping("zh_his").date)
    assert str(parse_date("2023年5月3日", formats)) == "2023-05-03"
    assert str(parse_date("2023/05/03 09:30:00", formats)) == "2023-05-03"
    with pytest.raises(ValueError):
        parse_date("03-05-2023x", formats)


def _custom_mapping(tmp_path, extra: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text("visit_id: id\npatient_id: pid\ndate: day\n" + extra, encoding="utf-8")
    return path


def test_snomed_codes_icd10_normalisation_and_pregnancy_from_codes(tmp_path):
    mapping = _custom_mapping(tmp_path, "diagnoses: {column: dx, system: snomed}\n")
    data = tmp_path / "x.csv"
    data.write_text("id,pid,day,dx\nv1,p1,2024-01-02,44054006 Diabetes mellitus type 2\n", encoding="utf-8")
    [row] = list(read_tabular(data, "csv", load_mapping(mapping)))
    assert row.visit.diagnoses[0].system == "snomed" and row.visit.icd10_codes() == ["E11.9"]
    mapping = _custom_mapping(tmp_path, "diagnoses: {column: dx, system: icd10}\n")
    data.write_text("id,pid,day,dx\nv1,p1,2024-01-02,O24419;e119\n", encoding="utf-8")
    [row] = list(read_tabular(data, "csv", load_mapping(mapping)))
    assert row.visit.icd10_codes() == ["O24.419"]  # lower-case "e119" is not read as a code
    assert row.visit.patient.pregnant  # gestational diabetes code, no pregnancy column


def test_identifier_columns_are_read_for_deidentification_but_never_written(tmp_path):
    mapping = _custom_mapping(tmp_path, "patient_name: name\nidentifiers: [id_no, phone]\nchief_complaint: cc\n")
    data = tmp_path / "x.csv"
    data.write_text("id,pid,day,name,id_no,phone,cc\nv1,p1,2024-01-02,赵六,A-778,555-0101,口干\n", encoding="utf-8")
    [row] = list(read_tabular(data, "csv", load_mapping(mapping)))
    assert row.names == ("赵六",) and row.identifiers == ("A-778", "555-0101")
    dumped = row.visit.model_dump_json()
    assert "赵六" not in dumped and "A-778" not in dumped and "555-0101" not in dumped
