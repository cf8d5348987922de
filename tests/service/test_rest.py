"""REST API: a Visit or a Bundle in, a checked Plan out; stored, fed back, audited — on both databases."""

import json
from pathlib import Path

from tests.service.fhir_data import prefetch

from diaguide.service.store import AuditRecord, Feedback

SAMPLES = json.loads((Path(__file__).parents[2] / "src/diaguide/service/samples.json").read_text(encoding="utf-8"))


def _bundle() -> dict:
    data = prefetch()
    entries = [{"fullUrl": "Patient/pat-1", "resource": data["patient"]}]
    for key in ("conditions", "observations", "medications"):
        entries += data[key]["entry"]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_visit_in_plan_out_stored_and_fed_back(make_client, db_url):
    client = make_client(demo=True, database_url=db_url)
    visit = SAMPLES[1]["visit"]
    guideline = client.post("/api/v1/recommendations", json=visit).json()
    assert guideline["plan_source"] == "guideline" and guideline["plan"]["treatment"]
    assert guideline["complexity"]["level"] == "high"
    # a physician's plan continuing metformin at eGFR 24 (79 years old): checked, flagged critical
    response = client.post("/api/v1/recommendations", json=SAMPLES[1])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["plan_source"] == "submitted"
    assert any(f["severity"] == "critical" and "metformin" in f["drugs"] for f in body["plan"]["findings"])
    again = client.get(f"/api/v1/recommendations/{body['id']}")
    assert again.status_code == 200 and again.json()["plan"] == body["plan"]
    assert client.get("/api/v1/recommendations/no-such-id").status_code == 404

    fb = client.post(
        "/api/v1/feedback", json={"recommendation_id": body["id"], "outcome": "modified", "reason": "dose"}
    )
    assert fb.status_code == 201
    assert client.post("/api/v1/feedback", json={"recommendation_id": "nope", "outcome": "accepted"}).status_code == 404
    assert client.post("/api/v1/feedback", json={"outcome": "accepted"}).status_code == 400
    assert client.post("/api/v1/feedback", json={"card_uuid": "c", "outcome": "maybe"}).status_code == 422
    store = client.app.state.ctx.store
    assert store.count(Feedback) == 1

    audit = client.get("/api/v1/audit").json()
    # the creation, the read and the feedback each name the recommendation (issue 18, item 2)
    about = [a for a in audit if a["recommendation_id"] == body["id"]]
    assert [a["route"] for a in about] == [
        "/api/v1/feedback",
        "/api/v1/recommendations/{rec_id}",
        "/api/v1/recommendations",
    ]
    created = about[-1]
    assert created["record_hash"] == body["record_hash"] and created["rule_version"]
    assert created["model_version"] == "rules" and created["engine_ms"] is not None
    # no patient text anywhere in the audit trail
    dump = json.dumps(audit, ensure_ascii=False)
    for text in (visit["chief_complaint"], visit["patient_id"], "glyburide"):
        assert text not in dump
    assert store.count(AuditRecord) >= 6


def test_a_fhir_bundle_gives_its_latest_visit(demo_client):
    response = demo_client.post("/api/v1/recommendations", json={"bundle": _bundle()})
    assert response.status_code == 201, response.text
    assert any(
        m["drug"].lower().startswith("metformin") and m["action"] == "stop"
        for m in response.json()["plan"]["medications"]
    )


def test_bad_records_are_one_line_400s(demo_client):
    for payload, needle in (
        ({"visit_id": "v"}, "patient_id"),
        ({"resourceType": "Patient"}, "Bundle"),
        ([1, 2], "valid dictionary"),
    ):
        response = demo_client.post("/api/v1/recommendations", json=payload)
        assert response.status_code in (400, 422), response.text
        assert needle in response.text
    assert (
        demo_client.post(
            "/api/v1/recommendations", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_operations_endpoints(make_client):
    client = make_client(demo=True, cors_origins=["https://ehr.example.org"])
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"] is True
    client.post("/cds-services/diaguide-patient-view", content=b"{")
    metrics = client.get("/metrics").text
    assert 'diaguide_requests_total{method="POST",route="/cds-services/{service_id}",status="400"}' in metrics
    assert "diaguide_request_seconds_bucket" in metrics and "diaguide_cards_total" in metrics
    preflight = client.options(
        "/cds-services",
        headers={"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["access-control-allow-origin"] == "https://ehr.example.org"
    evil = client.options(
        "/cds-services", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in evil.headers
    assert "/api/v1/recommendations" in client.get("/openapi.json").json()["paths"]


def test_oversized_chunked_body_is_413(make_client):
    client = make_client(demo=True, max_body_bytes=1000)

    def chunks():
        for _ in range(10):
            yield b" " * 500

    response = client.post("/api/v1/recommendations", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
