"""The physician page without a browser: paste flows, errors, narratives, logs free of patient text."""

import json
import logging

from tests.service.fhir_data import hook_request
from tests.service.forms import csrf_of

from diaguide.service.store import Feedback


def test_pasted_visit_json_gives_the_three_parts(demo_client):
    visit = demo_client.app.state.ctx.samples[0].visit.model_dump(mode="json")
    response = demo_client.post(
        "/page/recommend", data={"record": json.dumps(visit), "csrf": csrf_of(demo_client, "/")}
    )
    assert response.status_code == 200 and "/page/recommendations/" in str(response.url)
    for part in ("1 · Treatment", "2 · Laboratory tests", "3 · Medications", "Evidence"):
        assert part in response.text
    assert "7.4 → 7.9 → 8.4 ↑" in response.text  # HbA1c history of the sample, latest last
    zh = demo_client.get(str(response.url) + "?lang=zh").text
    assert "治疗方案" in zh and "检验检查" in zh and "用药" in zh


def test_bad_pastes_are_one_line_errors(demo_client):
    csrf = csrf_of(demo_client, "/")
    response = demo_client.post("/page/recommend", data={"record": "{not json", "csrf": csrf})
    assert response.status_code == 400 and "pasted record: the pasted text is not JSON" in response.text
    response = demo_client.post("/page/recommend", data={"record": '{"resourceType": "Patient"}', "csrf": csrf})
    assert response.status_code == 400 and "expected a Bundle" in response.text
    assert demo_client.post("/page/recommend", data={"sample": "nope", "csrf": csrf}).status_code == 400
    assert demo_client.get("/page/recommendations/nope").status_code == 404


def test_feedback_form_validates_and_stores(demo_client):
    csrf = csrf_of(demo_client, "/")
    page = demo_client.post("/page/recommend", data={"sample": "s0", "csrf": csrf})
    rec_id = str(page.url).rsplit("/", 1)[1]
    saved = demo_client.post(
        "/page/feedback", data={"recommendation_id": rec_id, "outcome": "modified", "reason": "dose", "csrf": csrf}
    )
    assert "Saved. Thank you." in saved.text
    maybe = {"recommendation_id": rec_id, "outcome": "maybe", "csrf": csrf}
    assert demo_client.post("/page/feedback", data=maybe).status_code == 400
    assert demo_client.app.state.ctx.store.count(Feedback) == 1


def test_narrative_page_serves_the_cached_narrative(demo_client):
    page = demo_client.post("/page/recommend", data={"sample": "s0", "csrf": csrf_of(demo_client, "/")})
    demo_client.app.state.ctx.narratives.wait_idle()
    rec = demo_client.get("/api/v1/recommendations/" + str(page.url).rsplit("/", 1)[1]).json()
    narrative = demo_client.get(f"/page/narratives/{rec['record_hash']}")
    assert 'data-testid="narrative"' in narrative.text and "HbA1c goal below" in narrative.text
    assert "MED:" not in narrative.text and "GOAL:" not in narrative.text  # sentences, not the model's line format
    api = demo_client.get(f"/api/v1/narratives/{rec['record_hash']}").json()
    assert api["status"] == "ready" and api["model_version"] == "rules"


def test_logs_carry_no_patient_data(demo_client, caplog):
    body = hook_request()
    body["prefetch"]["patient"]["name"] = [{"family": "Zhangsanfeng", "given": ["Wuji"]}]
    with caplog.at_level(logging.DEBUG, logger="diaguide"):
        assert demo_client.post("/cds-services/diaguide-patient-view", json=body).status_code == 200
        demo_client.post("/page/recommend", data={"sample": "s2", "csrf": csrf_of(demo_client, "/")})
    assert caplog.records
    for needle in ("Zhangsanfeng", "pat-1", "E11.9", "metformin", "血糖控制不佳"):
        assert needle not in caplog.text


def test_samples_come_from_a_demo_folder_with_every_language(tmp_path):
    from diaguide.service.samples import MAX_SAMPLES, load_samples

    base = json.loads(json.dumps(load_samples(None)[0].visit.model_dump(mode="json")))
    for lang in ("en", "zh"):
        lines = [json.dumps({**base, "patient_id": f"{lang}-{i}", "language": lang}) for i in range(30)]
        (tmp_path / f"ingested-{lang}.jsonl").write_text("\n".join(lines + ["{broken"]) + "\n", encoding="utf-8")
    samples = load_samples(str(tmp_path))
    assert len(samples) == MAX_SAMPLES
    assert {s.visit.language for s in samples} == {"en", "zh"}
