"""Records whose decisive fact is written only in the notes, end to end: HIS rows (Chinese and English) and FHIR
bundles are ingested as a hospital's would be, the guideline engine plans, and the safety checker judges both the
guideline's plan and the do-nothing plan (every current drug carried forward). Each case is one of issue 16's
misses, or a trap (the fact negated, or a relative's) where nothing may change.

Expectations per case: `stop` / `start` (classes the guideline plan must stop / start), `absent` (classes it must
not give), `flag` (the rule the checker must raise on the carried-forward plan), `quote` (words from the notes the
decision or finding must quote), `no_flag` (rules that must not fire: the traps)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from diaguide.knowledge.guideline import recommend
from diaguide.records.ingest import ingest_command
from diaguide.records.schema import MedicationOrder, Plan, Visit
from diaguide.safety.checker import apply_safety

sys.path.insert(0, str(Path(__file__).parents[1] / "records"))  # the suite runs with --import-mode=importlib
from fhir_bundles import ICD10, LOINC, bundle, cc, condition, encounter, entry, obs, patient, uid  # noqa: E402

ZH_COLUMNS = "门诊号,患者ID,姓名,就诊日期,年龄,性别,身高,体重,主诉,现病史,既往史,过敏史,诊断,收缩压,舒张压,糖化血红蛋白,空腹血糖,肌酐,eGFR,尿微量白蛋白/肌酐比,低密度脂蛋白,用药"
EN_COLUMNS = "encounter_id,mrn,patient_name,visit_date,birth_date,sex,height_in,weight_lb,pregnant,chief_complaint,hpi,past_history,allergies,icd10_codes,sbp,dbp,pulse,hba1c,fasting_glucose,creatinine,egfr,uacr,ldl,medications"


def zh_row(**kw) -> dict:
    row = dict.fromkeys(ZH_COLUMNS.split(","), "")
    row.update({"门诊号": "MZ9001", "患者ID": "P9001", "姓名": "王五", "就诊日期": "2025-06-10", "年龄": "60", "性别": "男",
                "身高": "170", "体重": "70", "主诉": "复诊", "诊断": "2型糖尿病(E11.9)", "收缩压": "128", "舒张压": "78",
                "糖化血红蛋白": "8.2", "eGFR": "75"})  # fmt: skip
    row.update(kw)
    return row


def en_row(**kw) -> dict:
    row = dict.fromkeys(EN_COLUMNS.split(","), "")
    row.update({"encounter_id": "E9001", "mrn": "M9001", "patient_name": "Pat Doe", "visit_date": "2025-06-10",
                "birth_date": "1965-03-01", "sex": "M", "height_in": "68", "weight_lb": "180", "pregnant": "no",
                "chief_complaint": "Diabetes follow-up", "icd10_codes": "E11.9 Type 2 diabetes mellitus", "sbp": "128",
                "dbp": "78", "hba1c": "8.2", "egfr": "75"})  # fmt: skip
    row.update(kw)
    return row


def fhir_case(
    lang: str, gender: str, birth: str, notes: dict[str, str], labs: dict[str, float], meds: list[str]
) -> dict:
    """A bundle with one outpatient encounter: type 2 diabetes coded, the notes as narrative Observations."""
    pid, enc = uid(), uid()
    when = "2025-06-10T09:00:00Z"
    entries = [
        entry(patient(birth=birth, gender=gender, communication=[{"language": cc("urn:ietf:bcp:47", lang)}]), pid),
        entry(encounter(pid, when), enc),
        entry(condition(pid, ICD10, "E11.9", "Type 2 diabetes mellitus", onset="2015-01-01")),
    ]
    narrative = {"present_illness": "10164-2", "past_history": "11348-0"}
    for field, text in notes.items():
        entries.append(entry({"resourceType": "Observation", "status": "final", "code": cc(LOINC, narrative[field]),
                              "subject": {"reference": pid}, "encounter": {"reference": enc},
                              "effectiveDateTime": when, "valueString": text}))  # fmt: skip
    units = {"4548-4": "%", "33914-3": "mL/min/{1.73_m2}"}
    for loinc, value in labs.items():
        entries.append(entry(obs(pid, loinc, value, units[loinc], when, encounter={"reference": enc})))
    for text in meds:
        entries.append(entry({"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": pid},
                              "medicationCodeableConcept": {"text": text}, "effectiveDateTime": when}))  # fmt: skip
    return bundle(*entries)


CASES = [
    # --- Chinese HIS rows
    ("zh_dialysis", "zh", [zh_row(既往史="尿毒症，规律血液透析3年，每周3次。", eGFR="", 用药="二甲双胍 0.5g bid")],
     {"stop": ["metformin"], "flag": "metformin_dialysis", "quote": "规律血液透析3年"}),
    ("zh_egfr_text_newer", "zh",
     [zh_row(就诊日期="2025-01-10", 门诊号="MZ9000", eGFR="52", 用药="二甲双胍 0.5g bid"),
      zh_row(现病史="3天前外院查eGFR 26，肌酐升高。", eGFR="", 用药="二甲双胍 0.5g bid")],
     {"stop": ["metformin"], "flag": "metformin_egfr_below_30", "quote": "eGFR 26"}),
    ("zh_pregnancy", "zh", [zh_row(年龄="31", 性别="女", 现病史="停经8周，尿hCG阳性。", 用药="二甲双胍 0.5g bid；阿托伐他汀 20mg qn")],
     {"stop": ["statin", "metformin"], "start": ["basal_insulin"], "flag": "pregnancy_contraindicated", "quote": "停经8周"}),
    ("zh_gastroparesis", "zh", [zh_row(既往史="糖尿病胃轻瘫2年，反复呕吐。", 糖化血红蛋白="8.6", 体重="95", 用药="司美格鲁肽 0.5mg 每周1次")],
     {"stop": ["glp1ra"], "absent": ["gip_glp1ra"], "flag": "glp1_gastroparesis", "quote": "糖尿病胃轻瘫2年"}),
    ("zh_lada", "zh", [zh_row(现病史="外院诊断2型糖尿病，查GAD抗体阳性，空腹C肽0.3ng/ml。", 用药="格列美脲 2mg qd")],
     {"stop": ["sulfonylurea"], "start": ["basal_insulin"], "flag": "secretagogue_autoimmune", "quote": "GAD抗体阳性"}),
    ("zh_night_lows_fall", "zh",
     [zh_row(年龄="79", 现病史="近1月夜间出汗心悸，自测血糖最低2.8mmol/L，上周跌倒1次。", 糖化血红蛋白="6.9", 用药="格列美脲 4mg qd")],
     {"stop": ["sulfonylurea"], "flag": "hypoglycaemia_recent", "quote": "2.8mmol/L"}),
    ("zh_edka_sglt2i", "zh", [zh_row(现病史="2月前服用达格列净期间发生正常血糖性酮症酸中毒住院。", 用药="达格列净 10mg qd；二甲双胍 0.5g bid")],
     {"stop": ["sglt2i"], "flag": "sglt2i_ketoacidosis_history", "quote": "酮症酸中毒"}),
    ("zh_bladder_cancer", "zh", [zh_row(既往史="膀胱癌术后1年，仍在膀胱灌注化疗。", 用药="吡格列酮 30mg qd；二甲双胍 0.5g bid")],
     {"stop": ["tzd"], "flag": "pioglitazone_bladder_cancer", "quote": "膀胱癌"}),
    ("zh_metformin_intolerance", "zh", [zh_row(既往史="二甲双胍胃肠道反应重，无法耐受。", 用药="二甲双胍 0.5g bid")],
     {"stop": ["metformin"], "flag": "intolerance_in_notes", "quote": "无法耐受"}),
    ("zh_trap_negated_family", "zh",
     [zh_row(既往史="慢性肾脏病3期，未透析。父亲尿毒症行血液透析。否认胰腺炎病史。", eGFR="55", 用药="二甲双胍 0.5g bid")],
     {"absent_stop": ["metformin"], "no_flag": ["metformin_dialysis", "incretin_pancreatitis"]}),
    # --- English HIS rows
    ("en_dialysis", "en", [en_row(past_history="ESRD on maintenance hemodialysis MWF since 2022.", egfr="", medications="metformin 500 mg twice daily")],
     {"stop": ["metformin"], "flag": "metformin_dialysis", "quote": "maintenance hemodialysis"}),
    ("en_pregnancy", "en",
     [en_row(sex="F", birth_date="1993-02-01", hpi="LMP 7 weeks ago, home pregnancy test positive.", medications="metformin 500 mg twice daily; lisinopril 10 mg daily")],
     {"stop": ["acei"], "start": ["basal_insulin"], "flag": "pregnancy_contraindicated", "quote": "pregnancy test positive"}),
    ("en_gastroparesis", "en", [en_row(past_history="Severe diabetic gastroparesis with recurrent vomiting.", medications="semaglutide 0.5 mg weekly; metformin 1000 mg twice daily")],
     {"stop": ["glp1ra"], "flag": "glp1_gastroparesis", "quote": "gastroparesis"}),
    ("en_declines_injections", "en", [en_row(hpi="Declines all injections, including insulin.", hba1c="11.2", medications="metformin 1000 mg twice daily")],
     {"absent": ["basal_insulin", "glp1ra", "gip_glp1ra"], "start_any": ["sglt2i", "dpp4i", "sulfonylurea", "tzd", "agi"], "prompt": "declines injections"}),
    ("en_night_lows_fall", "en",
     [en_row(birth_date="1945-01-01", hpi="Fingerstick glucose as low as 52 mg/dL at night; fell last week.", hba1c="6.8", medications="glipizide 10 mg daily")],
     {"stop": ["sulfonylurea"], "flag": "hypoglycaemia_recent", "quote": "52 mg/dL"}),
    ("en_trap_negated_family", "en",
     [en_row(hpi="Denies hypoglycemia. Not on dialysis.", past_history="Family history: mother had pancreatitis and medullary thyroid carcinoma.",
             hba1c="7.6", medications="glipizide 5 mg daily; metformin 1000 mg twice daily")],
     {"absent_stop": ["sulfonylurea", "metformin"], "no_flag": ["hypoglycaemia_recent", "metformin_dialysis", "incretin_pancreatitis"],
      "flag_absent_ok": True}),
    # --- FHIR bundles
    ("fhir_en_dialysis", "fhir", fhir_case("en", "male", "1958-01-01", {"past_history": "On peritoneal dialysis (CAPD) for 2 years."},
                                           {"4548-4": 7.6}, ["metformin 500 mg twice daily"]),
     {"stop": ["metformin"], "flag": "metformin_dialysis", "quote": "peritoneal dialysis"}),
    ("fhir_zh_pregnancy", "fhir", fhir_case("zh", "female", "1994-05-01", {"present_illness": "停经7周，血hCG阳性，B超示宫内早孕。"},
                                            {"4548-4": 7.1, "33914-3": 100}, ["二甲双胍 0.5g bid"]),
     {"stop": ["metformin"], "start": ["basal_insulin"], "flag": "pregnancy_crosses_placenta", "quote": "停经7周"}),
    ("fhir_en_bladder", "fhir", fhir_case("en", "male", "1955-01-01", {"past_history": "Urothelial carcinoma of the bladder, on BCG."},
                                          {"4548-4": 7.8, "33914-3": 70}, ["pioglitazone 30 mg daily"]),
     {"stop": ["tzd"], "flag": "pioglitazone_bladder_cancer", "quote": "carcinoma of the bladder"}),
    ("fhir_zh_lada", "fhir", fhir_case("zh", "female", "1980-01-01", {"present_illness": "外院诊断2型糖尿病，胰岛自身抗体阳性，C肽明显降低。"},
                                       {"4548-4": 8.4, "33914-3": 95}, ["格列齐特 80mg bid"]),
     {"stop": ["sulfonylurea"], "flag": "secretagogue_autoimmune", "quote": "胰岛自身抗体阳性"}),
]  # fmt: skip


def _ingest(tmp_path: Path, kind: str, record) -> Visit:
    out = tmp_path / "visits.jsonl"
    if kind == "fhir":
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(record), encoding="utf-8")
        status = ingest_command([str(path)], "fhir", None, False, None, str(out), progress=False)
    else:
        path = tmp_path / "his.csv"
        columns = (ZH_COLUMNS if kind == "zh" else EN_COLUMNS).split(",")
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(record)
        mapping = "zh_his" if kind == "zh" else "en_his"
        status = ingest_command([str(path)], "csv", mapping, False, None, str(out), progress=False)
    assert status == 0
    visits = [Visit.model_validate_json(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return max(visits, key=lambda v: v.date)


def _carried_forward(visit: Visit) -> Plan:
    """The do-nothing plan: every current drug continued."""
    meds = [MedicationOrder(drug=m.drug, drug_class=m.drug_class, action="continue", dose=m.dose, frequency=m.frequency)
            for m in visit.medications]  # fmt: skip
    return apply_safety(visit, Plan(medications=meds))


def _actions(plan: Plan, cls: str) -> set[str]:
    return {m.action for m in plan.medications if m.drug_class == cls}


@pytest.mark.parametrize(("name", "kind", "record", "expect"), CASES, ids=[c[0] for c in CASES])
def test_a_fact_written_only_in_the_notes_decides(tmp_path, name, kind, record, expect) -> None:
    visit = _ingest(tmp_path, kind, record)
    plan = apply_safety(visit, recommend(visit))
    for cls in expect.get("stop", []):
        assert _actions(plan, cls) == {"stop"}, (cls, [(m.drug, m.action, m.reason) for m in plan.medications])
    for cls in expect.get("start", []):
        assert "start" in _actions(plan, cls), (cls, [(m.drug, m.action) for m in plan.medications])
    for cls in expect.get("absent", []):
        assert not _actions(plan, cls) - {"stop"}, (cls, [(m.drug, m.action) for m in plan.medications])
    for cls in expect.get("absent_stop", []):  # traps: the drug is not stopped for a fact that is not the patient's
        assert "stop" not in _actions(plan, cls), (cls, [(m.drug, m.action, m.reason) for m in plan.medications])
    if "start_any" in expect:
        assert any("start" in _actions(plan, c) for c in expect["start_any"]), plan.medications
    if "prompt" in expect:
        assert any(expect["prompt"] in p for p in plan.prompts), plan.prompts
    # what the guideline proposes passes its own checker
    assert not [f for f in plan.findings if f.severity == "critical"], plan.findings

    carried = _carried_forward(visit)
    fired = {f.rule_id: f for f in carried.findings}
    if "flag" in expect:
        finding = fired.get(expect["flag"])
        assert finding is not None, sorted(fired)
        assert finding.evidence and expect["quote"] in finding.message  # the finding quotes the notes
        assert any(expect["quote"] in e.text for e in finding.evidence)
    for rule in expect.get("no_flag", []):
        assert rule not in fired, fired[rule].message
    if "quote" in expect:  # the guideline's decision quotes the same words, in the Plan JSON too
        said = json.dumps(plan.model_dump(mode="json"), ensure_ascii=False)
        assert expect["quote"] in said


def test_twenty_cases_ten_chinese_his_six_english_his_four_fhir() -> None:
    kinds = [c[1] for c in CASES]
    assert (kinds.count("zh"), kinds.count("en"), kinds.count("fhir")) == (10, 6, 4)
