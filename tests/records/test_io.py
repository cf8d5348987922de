"""load_visit: one Visit from a Visit JSON, a cohort record, a visits.jsonl or a FHIR bundle."""

from __future__ import annotations

import json

import pytest

from diaguide.errors import InputError
from diaguide.records.io import iter_visits, load_visit
from diaguide.records.schema import Plan, Visit

VISIT = Visit(visit_id="v1", patient_id="p1", date="2024-02-01", chief_complaint="口干")


def test_visit_json_cohort_record_and_jsonl(tmp_path):
    plain = tmp_path / "visit.json"
    plain.write_text(VISIT.model_dump_json(), encoding="utf-8")
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"visit": VISIT.model_dump(mode="json"), "plan": Plan().model_dump()}))
    lines = tmp_path / "visits.jsonl"
    second = VISIT.model_copy(update={"visit_id": "v2"})
    lines.write_text(VISIT.model_dump_json() + "\n" + second.model_dump_json() + "\n", encoding="utf-8")
    for path in (plain, record, lines):
        assert load_visit(path, "visit") == VISIT
    assert [v.visit_id for v in iter_visits(lines)] == ["v1", "v2"]


def test_fhir_gives_the_latest_visit(tmp_path):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "gender": "female"}},
            *[
                {
                    "fullUrl": f"urn:uuid:e{i}",
                    "resource": {
                        "resourceType": "Encounter",
                        "status": "finished",
                        "class": {"code": "AMB"},
                        "subject": {"reference": "urn:uuid:p"},
                        "period": {"start": start},
                    },
                }
                for i, start in enumerate(["2023-06-10", "2024-03-01", "2022-01-05"])
            ],
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    visit = load_visit(path, "fhir")
    assert str(visit.date) == "2024-03-01" and len(visit.history) == 2


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x02garbage", "binary"),
        (b'{"visit_id": "v1", "patient_id"', "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"visit_id": "v1", "patient_id": "p", "date": "yesterday"}', "date"),
    ],
)
def test_bad_files_are_one_line_input_errors(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_visit(path, "visit")
    line = err.value.line()
    assert str(path) in line and needle in line and "\n" not in line


def test_missing_file_and_field_named(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_visit(tmp_path / "nope.json")
    path = tmp_path / "v.json"
    path.write_text('{"visit_id": "v1", "date": "2024-01-01"}', encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_visit(path)
    assert err.value.field == "patient_id"
