"""How a mention is asserted, per fact kind, in both languages: present, negated, a relative's, past, hypothetical
or possible; and what counts for the patient. Plus: the extractor never raises, whatever the text."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diaguide.knowledge.conditions import counts_for_patient, derive, note_facts
from diaguide.records.schema import Visit


def _visit(text: str, lang: str, field: str = "past_history", **kw) -> Visit:
    return Visit(visit_id="v", patient_id="p", date=dt.date(2025, 6, 1), language=lang, **{field: text}, **kw)


def assertions(text: str, kind: str, lang: str) -> list[str]:
    return [e.assertion for e in note_facts(_visit(text, lang)).of(kind) if e.value is None]


CASES = [
    # kind, language, text, assertion of the mention, counts for the patient
    ("dialysis", "en", "On maintenance haemodialysis.", "present", True),
    ("dialysis", "en", "Not on dialysis.", "negated", False),
    ("dialysis", "en", "Her father was on dialysis.", "family", False),
    ("dialysis", "zh", "规律腹膜透析3年。", "present", True),
    ("dialysis", "zh", "未透析。", "negated", False),
    ("dialysis", "zh", "其父尿毒症透析。", "family", False),
    ("pregnancy", "en", "Currently 10 weeks pregnant.", "present", True),
    ("pregnancy", "en", "Pregnancy test negative.", "negated", False),
    ("pregnancy", "en", "History of pregnancy loss in 2019.", "historical", False),
    ("pregnancy", "en", "Planning a pregnancy next year.", "hypothetical", False),
    ("pregnancy", "zh", "停经8周，尿hCG阳性。", "present", True),
    ("pregnancy", "zh", "否认怀孕。", "negated", False),
    ("pregnancy", "zh", "既往妊娠3次。", "historical", False),
    ("pregnancy", "zh", "计划明年怀孕。", "hypothetical", False),
    ("pancreatitis", "en", "Acute pancreatitis in 2021.", "historical", True),
    ("pancreatitis", "en", "No history of pancreatitis.", "negated", False),
    ("pancreatitis", "en", "Mother had pancreatitis.", "family", False),
    ("pancreatitis", "zh", "2年前急性胰腺炎。", "historical", True),
    ("pancreatitis", "zh", "否认胰腺炎病史。", "negated", False),
    ("pancreatitis", "zh", "母亲患胰腺炎。", "family", False),
    ("men2_mtc", "en", "Family history: sister with medullary thyroid carcinoma.", "family", True),
    ("men2_mtc", "en", "No personal or family history of MTC or MEN2.", "negated", False),
    ("men2_mtc", "zh", "家族史：其母甲状腺髓样癌。", "family", True),
    ("men2_mtc", "zh", "否认甲状腺髓样癌家族史。", "negated", False),
    ("gastroparesis", "en", "Diabetic gastroparesis on metoclopramide.", "present", True),
    ("gastroparesis", "en", "No gastroparesis.", "negated", False),
    ("gastroparesis", "en", "Possible gastroparesis; gastric emptying study booked.", "possible", False),
    ("gastroparesis", "zh", "糖尿病胃轻瘫。", "present", True),
    ("gastroparesis", "zh", "胃轻瘫可能。", "possible", False),
    ("gastroparesis", "zh", "无胃轻瘫。", "negated", False),
    ("autoimmune_diabetes", "en", "GAD antibodies positive.", "present", True),
    ("autoimmune_diabetes", "en", "GAD antibodies negative.", "negated", False),
    ("autoimmune_diabetes", "en", "Suspected LADA.", "possible", False),
    ("autoimmune_diabetes", "zh", "GAD抗体阳性。", "present", True),
    ("autoimmune_diabetes", "zh", "胰岛自身抗体阴性。", "negated", False),
    ("autoimmune_diabetes", "zh", "考虑LADA可能。", "possible", False),
    ("hypoglycaemia", "en", "Two hypoglycaemic episodes this month.", "present", True),
    ("hypoglycaemia", "en", "Denies hypoglycemia.", "negated", False),
    ("hypoglycaemia", "en", "Taught what to do if hypoglycaemia occurs.", "hypothetical", False),
    ("hypoglycaemia", "zh", "近2周低血糖3次。", "present", True),
    ("hypoglycaemia", "zh", "无低血糖。", "negated", False),
    ("hypoglycaemia", "zh", "注意低血糖。", "hypothetical", False),
    ("ketoacidosis", "en", "Euglycaemic DKA on empagliflozin.", "present", True),
    ("ketoacidosis", "en", "No DKA.", "negated", False),
    ("ketoacidosis", "zh", "发生DKA住院。", "present", True),
    ("ketoacidosis", "zh", "否认酮症酸中毒。", "negated", False),
    ("bladder_cancer", "en", "Bladder cancer under treatment.", "present", True),
    ("bladder_cancer", "en", "Father died of bladder cancer.", "family", False),
    ("bladder_cancer", "zh", "膀胱癌术后仍在灌注化疗。", "present", True),
    ("bladder_cancer", "zh", "父亲膀胱癌。", "family", False),
    ("heart_failure", "en", "HFrEF, NYHA class III.", "present", True),
    ("heart_failure", "zh", "否认心衰。", "negated", False),
    ("declines_injections", "en", "Refuses insulin injections.", "present", True),
    ("declines_injections", "zh", "拒绝胰岛素注射。", "present", True),
    ("breastfeeding", "en", "Breastfeeding her baby.", "present", True),
    ("breastfeeding", "zh", "目前哺乳期。", "present", True),
]


@pytest.mark.parametrize(
    ("kind", "lang", "text", "assertion", "counts"), CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES]
)
def test_assertion_and_whether_it_counts(kind, lang, text, assertion, counts) -> None:
    found = assertions(text, kind, lang)
    assert assertion in found, found
    assert any(counts_for_patient(kind, a) for a in found) is counts


def test_a_negation_reaches_every_item_of_a_chinese_list() -> None:
    facts = note_facts(_visit("否认高血压、胰腺炎、甲状腺髓样癌病史，规律腹膜透析。", "zh"))
    assert [e.assertion for e in facts.of("pancreatitis")] == ["negated"]
    assert [e.assertion for e in facts.of("men2_mtc")] == ["negated"]
    assert [e.assertion for e in facts.of("dialysis")] == ["present"]  # the next clause is not negated


def test_an_english_negation_stops_at_a_new_clause() -> None:
    facts = note_facts(_visit("Denies chest pain, on dialysis since 2020.", "en"))
    assert [e.assertion for e in facts.of("dialysis")] != ["negated"]


def test_a_value_in_text_is_converted_and_dated() -> None:
    visit = _visit("1周前外院查eGFR 24，空腹血糖3.1mmol/L。", "zh", field="present_illness")
    egfr = note_facts(visit).values("egfr")[0]
    assert egfr.value == 24 and egfr.date == dt.date(2025, 5, 25) and egfr.field == "present_illness"
    glucose = note_facts(visit).values("glucose")[0]
    assert round(glucose.value) == 56  # 3.1 mmol/L in mg/dL


def test_a_low_reading_in_text_is_hypoglycaemia_with_its_words() -> None:
    facts = derive(_visit("Sugars as low as 48 mg/dL overnight.", "en", field="present_illness", patient={"age": 70}))
    assert facts.recent_hypo and facts.severe_hypo
    assert "48 mg/dL" in facts.evidence["recent_hypo"][0].text


def test_a_possible_fact_is_asked_about_not_acted_on() -> None:
    visit = _visit("胃轻瘫待排。", "zh", diagnoses=[{"system": "icd10", "code": "E11.9"}])
    facts = derive(visit)
    assert not facts.gastroparesis
    assert [e.kind for e in facts.possible] == ["gastroparesis"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300), st.sampled_from(["en", "zh"]))
def test_the_extractor_never_raises(text, lang) -> None:
    for field in ("chief_complaint", "present_illness", "past_history"):
        facts = note_facts(_visit(text, lang, field=field))
        for e in facts.evidence:
            assert e.assertion in ("present", "negated", "family", "historical", "hypothetical", "possible")
            assert e.term and e.term in text
    derive(_visit(text, lang))
