"""FHIR ingestion of what the physician wrote: the visit's language, present illness and past
history (Observations 10164-2 / 11348-0, Composition sections, Condition.note, resolved Conditions)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from diaguide.knowledge.conditions import derive
from diaguide.records.fhir import visits_from_bundle

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from fhir_bundles import ICD10, LOINC, bundle, cc, condition, encounter, entry, patient, uid  # noqa: E402


def _note(subject: str, loinc: str, enc: str | None, when: str | None = None, **value: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": cc(LOINC, loinc),
        "subject": {"reference": subject},
        **value,
    }
    if enc:
        r["encounter"] = {"reference": enc}
    if when:
        r["effectiveDateTime"] = when
    return r


def _language(code: str | None = None, text: str | None = None, preferred: bool | None = None) -> dict:
    lang: dict[str, Any] = {}
    if code:
        lang["coding"] = [{"system": "urn:ietf:bcp:47", "code": code}]
    if text:
        lang["text"] = text
    out: dict[str, Any] = {"language": lang}
    if preferred is not None:
        out["preferred"] = preferred
    return out


@pytest.mark.parametrize(
    ("communication", "complaint", "expected"),
    [
        ([_language("zh-CN")], "Follow-up", "zh"),  # the patient's language wins over the note's
        ([_language("en-US"), _language("zh-Hans", preferred=True)], None, "zh"),  # the preferred one
        ([_language(text="Mandarin Chinese")], None, "zh"),
        ([_language("en-GB")], "口干多饮3月", "en"),
        (None, "口干多饮3月，HbA1c 8.5%，二甲双胍0.5g bid", "zh"),  # mostly CJK, drugs named in English
        (None, "Polyuria for 3 weeks, 口渴", "en"),
        (None, None, "en"),
    ],
)
def test_visit_language_from_patient_communication_or_the_text(communication, complaint, expected):
    p, e = uid(), uid()
    extra = {"communication": communication} if communication else {}
    entries = [entry(patient(**extra), p), entry(encounter(p, "2025-03-01"), e)]
    if complaint:
        entries.append(entry(_note(p, "10154-3", e, valueString=complaint), uid()))
    (v,), warnings = visits_from_bundle(bundle(*entries), "lang.json")
    assert warnings == []
    assert v.language == expected


def test_present_illness_from_an_observation_its_note_or_the_condition_note():
    p, e1, e2, e3 = uid(), uid(), uid(), uid()
    hpi = "Thirst and polyuria for 2 months; home glucose 11-14 mmol/L"
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2025-01-10"), e1),
        entry(encounter(p, "2025-04-10"), e2),
        entry(encounter(p, "2025-07-10"), e3),
        entry(_note(p, "10164-2", e1, valueString=hpi), uid()),
        entry(_note(p, "10164-2", e2, note=[{"text": "Feels well, no hypoglycaemia."}]), uid()),
        entry(
            condition(
                p,
                ICD10,
                "E11.65",
                "Type 2 diabetes with hyperglycaemia",
                "2025-07-10",
                encounter={"reference": e3},
                note=[{"text": "HbA1c rising on two drugs"}],
            ),
            uid(),
        ),
    )
    visits, warnings = visits_from_bundle(b, "hpi.json")
    assert warnings == []
    assert [v.present_illness for v in visits] == [
        hpi,
        "Feels well, no hypoglycaemia.",
        "Type 2 diabetes with hyperglycaemia: HbA1c rising on two drugs",
    ]


def test_document_bundle_composition_sections_fill_complaint_present_and_past_history():
    p, e = uid(), uid()
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": cc(LOINC, "11488-4", "Consult note"),
        "subject": {"reference": p},
        "encounter": {"reference": e},
        "date": "2025-05-02T09:30:00+08:00",
        "author": [{"display": "Dr Li"}],
        "title": "门诊病历",
        "section": [
            {"title": "主诉", "code": cc(LOINC, "10154-3"), "text": _div("<p>口干多饮3月</p>")},
            {
                "title": "病史",
                "section": [
                    {
                        "title": "现病史",
                        "code": cc(LOINC, "10164-2"),
                        "text": _div("<p>3月前出现口干、多饮&amp;多尿。</p><p>空腹血糖 9.8 mmol/L。</p>"),
                    },
                    {"title": "既往史", "code": cc(LOINC, "11348-0"), "text": _div("高血压10年<br/>否认冠心病")},
                ],
            },
        ],
    }
    b = bundle(entry(composition, uid()), entry(patient(), p), entry(encounter(p, "2025-05-02"), e), kind="document")
    (v,), warnings = visits_from_bundle(b, "note.json")
    assert warnings == []
    assert v.chief_complaint == "口干多饮3月"
    assert v.present_illness == "3月前出现口干、多饮&多尿。; 空腹血糖 9.8 mmol/L。"
    assert v.past_history == "高血压10年; 否认冠心病"
    assert v.language == "zh"
    facts = derive(v)  # the engines read what was written: hypertension yes, coronary disease denied
    assert facts.hypertension and not facts.ascvd


def test_past_history_narrative_carries_forward_and_resolved_conditions_follow_it():
    p, e1, e2 = uid(), uid(), uid()
    b = bundle(
        entry(patient(), p),
        entry(encounter(p, "2024-02-01"), e1),
        entry(encounter(p, "2025-02-01"), e2),
        entry(_note(p, "11348-0", e1, valueString="Appendectomy 1998."), uid()),
        entry(
            condition(
                p,
                ICD10,
                "O24.419",
                "Gestational diabetes",
                "2010-03-01",
                abatementDateTime="2010-09-01",
                clinicalStatus=cc(None, "resolved"),
            ),
            uid(),
        ),
    )
    visits, _ = visits_from_bundle(b, "past.json")
    for v in visits:
        assert v.past_history == "Appendectomy 1998. Gestational diabetes (O24.419, resolved 2010-09-01)"
    facts = derive(visits[-1])
    assert facts.prior_gdm and facts.diabetes_status != "diabetes"


def _div(inner: str) -> dict:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{inner}</div>'}
