"""De-identification: planted identifiers are gone from every field; dates move together."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest

from diaguide.errors import ConfigError
from diaguide.records.deid import Deidentifier, valid_resident_id
from diaguide.records.schema import Allergy, Diagnosis, Lab, Medication, Patient, Visit, VisitSummary


def resident_id(first17: str) -> str:
    """A Chinese resident ID number with its ISO 7064 MOD 11-2 check character."""
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


ID_NUMBER = resident_id("11010519491231002")  # 11010519491231002X
PLANTED = {
    "name_zh": "欧阳建国",
    "name_en": "Zebulon Quixote",
    "phone_zh": "13812345678",
    "phone_us": "(555) 867-5309",
    "id_number": ID_NUMBER,
    "mrn": "MRN: 7731945",
    "mrn_zh": "病历号：ZY20230503",
    "email": "zq@example.org",
    "address_en": "742 Evergreen Terrace, Springfield, IL 62704",
    "address_zh": "浙江省杭州市西湖区文三路138号2单元501室",
}
TEXT = (
    f"患者{PLANTED['name_zh']}，男，身份证号{ID_NUMBER}，手机{PLANTED['phone_zh']}，"
    f"住址{PLANTED['address_zh']}，{PLANTED['mrn_zh']}，2023年5月3日起口干。"
    f" Patient: {PLANTED['name_en']}, phone {PLANTED['phone_us']}, {PLANTED['mrn']}, email {PLANTED['email']},"
    f" lives at {PLANTED['address_en']}. Seen 05/03/2023 and 2023-05-03."
)
# What must not survive, in any field: the identifying parts of each planted item.
MUST_GO = [
    "欧阳建国",
    "Zebulon",
    "Quixote",
    "13812345678",
    "867-5309",
    ID_NUMBER,
    "7731945",
    "ZY20230503",
    "zq@example.org",
    "Evergreen",
    "62704",
    "文三路",
    "西湖区",
    "2023-05-03",
    "2023年5月3日",
    "05/03/2023",
    "RAW-PATIENT-42",
    "RAW-VISIT-7",
]


def planted_visit() -> Visit:
    day = dt.date(2023, 5, 3)
    return Visit(
        visit_id="RAW-VISIT-7",
        patient_id="RAW-PATIENT-42",
        date=day,
        patient=Patient(age=93, sex="male"),
        chief_complaint=TEXT,
        present_illness=TEXT + " RAW-PATIENT-42",
        past_history=TEXT,
        allergies=[Allergy(substance=TEXT, reaction=TEXT)],
        diagnoses=[
            Diagnosis(system="icd10", code="E11.9", display=TEXT, icd10="E11.9"),
            Diagnosis(system="text", code=TEXT, display=TEXT),
        ],
        labs=[Lab(loinc="4548-4", name="HbA1c", value=7.5, unit="%", date=day - dt.timedelta(days=10))],
        medications=[
            Medication(
                drug="metformin", drug_class="metformin", dose="500 mg", frequency=TEXT, since=dt.date(2021, 1, 1)
            )
        ],
        history=[
            VisitSummary(
                visit_id="RAW-VISIT-6",
                date=dt.date(2022, 11, 3),
                hba1c=8.1,
                chief_complaint=TEXT,
                events=[TEXT],
                medications=[Medication(drug="metformin", since=dt.date(2021, 1, 1))],
            )
        ],
        language="zh",
    )


def test_resident_id_check_character():
    assert valid_resident_id(ID_NUMBER)
    wrong = ID_NUMBER[:17] + ("1" if ID_NUMBER[17] != "1" else "2")
    assert not valid_resident_id(wrong)
    assert not valid_resident_id(resident_id("11010519491332002"))  # check character right, no such birth date


def test_random_18_digit_numbers_are_not_called_id_numbers_but_still_removed():
    deid = Deidentifier("salt")
    rng = random.Random(7)
    for _ in range(50):
        number = "".join(rng.choice("0123456789") for _ in range(18))
        counts: Counter[str] = Counter()
        out = deid.scrub(f"accession {number}", patient_id="p", counts=counts)
        assert number not in out
        kind = "id_number" if valid_resident_id(number) else "long_number"
        assert counts[kind] == 1


def test_planted_identifiers_leave_no_trace_in_any_field():
    deid = Deidentifier("s3cret")
    visit, counts = deid.deidentify_visit(planted_visit(), known_names=[PLANTED["name_en"], PLANTED["name_zh"]])
    dumped = visit.model_dump_json()
    left = [s for s in MUST_GO if s in dumped]
    assert not left, left
    for category in ("name", "phone", "id_number", "mrn", "email", "address", "date", "patient_id", "visit_id"):
        assert counts[category] > 0, category
    assert visit.patient.age == 90  # Safe Harbor: over 89 -> 90
    assert visit.patient_id.startswith("P") and visit.visit_id.startswith("V")
    assert visit.labs[0].value == 7.5 and visit.diagnoses[0].code == "E11.9"  # clinical content kept


def test_dates_shift_by_one_offset_per_patient_and_keep_intervals():
    deid = Deidentifier("s3cret")
    original = planted_visit()
    visit, _ = deid.deidentify_visit(original)
    shift = visit.date - original.date
    assert shift != dt.timedelta(0) and abs(shift.days) <= 365
    assert visit.labs[0].date - original.labs[0].date == shift
    assert visit.medications[0].since - original.medications[0].since == shift
    assert visit.history[0].date - original.history[0].date == shift
    new = visit.date
    # free-text dates moved by the same shift, in the form they were written
    assert f"{new.year}年{new.month}月{new.day}日" in visit.chief_complaint
    assert new.isoformat() in visit.chief_complaint
    assert f"{new:%m/%d/%Y}" in visit.chief_complaint
    # a second visit of the same patient gets the same shift; another patient (almost surely) not
    later = original.model_copy(update={"visit_id": "RAW-VISIT-8", "date": dt.date(2024, 1, 1)})
    assert deid.deidentify_visit(later)[0].date - later.date == shift
    assert visit.history[0].visit_id == deid.pseudonym("RAW-VISIT-6", "visit")


def test_deterministic_for_a_salt_and_different_across_salts():
    a1, _ = Deidentifier("one").deidentify_visit(planted_visit())
    a2, _ = Deidentifier("one").deidentify_visit(planted_visit())
    b, _ = Deidentifier("two").deidentify_visit(planted_visit())
    assert a1.model_dump() == a2.model_dump()
    assert a1.patient_id != b.patient_id


@pytest.mark.parametrize(
    "text",
    [
        "患者于今日来诊，心前区疼痛，患者高血压病史10年，HbA1c 7.8%，空腹血糖7.8 mmol/L，BP 130/80 mmHg。",
        "患者陈述近期明显消瘦，余无不适，平时饮食不规律。",
        "dosage 100 mg, average glucose 150-180 mg/dL; BP 130/80 mmHg, HbA1c 7.8% (62 mmol/mol)",
        "eGFR 45 mL/min/1.73m2, 3/4 tablet at 08:30, 1-2 times daily, E11.65, LOINC 4548-4",
        "2型糖尿病10年，2019年诊断，甘精胰岛素 12单位 qn，夜尿2-3次/晚，BMI 27.3",
        "Insulin glargine 20 U qHS; increase by 2 units every 3 days until FBG 80-130. Patient Education given.",
        "Patient is a 65-year-old man on metformin 1000 mg twice daily; eGFR 58, UACR 30 mg/g, E11.9.",
    ],
)
def test_clinical_text_without_identifiers_is_left_alone(text):
    assert Deidentifier("s").scrub(text, patient_id="p") == text


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("病人：李明，女，70岁", "李明"),
        ("张伟，男，62岁，因口干就诊", "张伟"),
        ("王先生诉乏力", "王先生"),
        ("Seen by Dr. Alice Walker today", "Alice Walker"),
        ("Mrs Smith reports no hypoglycaemia", "Smith"),
        ("Name: ROE, JANE", "ROE"),
        ("联系电话 010-87654321", "87654321"),
        ("call 415.555.0134", "555.0134"),
        ("MRN# A1234567", "A1234567"),
        ("家住北京市朝阳区建国路88号", "建国路"),
        ("1 Infinite Loop, Cupertino, CA 95014", "Infinite"),
        ("first seen March 3, 2021", "March 3, 2021"),
        ("since 3 Mar 2021", "3 Mar 2021"),
        ("seen 23/05/2023 in Leeds", "23/05/2023"),  # day first
        ("复查日期 2023-02-30", "2023-02-30"),  # a typo is still a date
        ("女儿王芳陪同就诊", "王芳"),
        ("患者宋江因口干多饮就诊", "宋江"),
        ("portal https://mychart.example.org/p?id=55 from 192.168.1.20", "mychart"),
        ("logged from 192.168.1.20", "192.168"),
    ],
)
def test_patterns_find_identifiers(text, gone):
    out = Deidentifier("s").scrub(text, patient_id="p")
    assert gone not in out


def test_ages_over_89_in_text_are_capped():
    out = Deidentifier("s").scrub("A 94-year-old woman; 患者96岁", patient_id="p")
    assert "94" not in out and "96" not in out and "90-year-old" in out and "90岁" in out


def test_known_names_are_removed_even_without_a_pattern():
    out = Deidentifier("s").scrub("zebulon called; Quixote family history", known_names=["Zebulon Quixote"])
    assert "zebulon" not in out.lower() and "quixote" not in out.lower() and out.count("[NAME]") == 2


def test_dates_without_a_patient_become_placeholders():
    assert Deidentifier("s").scrub("seen 2023-05-03") == "seen [DATE]"


def test_a_salt_is_required():
    with pytest.raises(ConfigError, match="DIAGUIDE_DEID_SALT"):
        Deidentifier("")


def test_known_identifiers_from_source_columns_are_removed():
    deid = Deidentifier("s")
    visit = planted_visit().model_copy(update={"chief_complaint": "家庭地址 幸福小区7幢 电话 8a-77-19"})
    out, counts = deid.deidentify_visit(visit, known_identifiers=["幸福小区7幢", "8a-77-19"])
    assert "幸福小区" not in out.chief_complaint and "8a-77-19" not in out.chief_complaint
    assert counts["identifier"] == 2
