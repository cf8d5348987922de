"""Issue 18, items 1-2: a physician reads only the records they made; anything else is an audited break-glass
access with a reason; admins see the audit, not clinical content; every read names what was read."""

from __future__ import annotations

import json
from pathlib import Path

from tests.security.conftest import bearer, csrf_of, page_login
from tests.service.fhir_data import hook_request

from diaguide.service.store import AuditRecord, Feedback

VISIT = json.loads((Path(__file__).parents[2] / "src/diaguide/service/samples.json").read_text(encoding="utf-8"))[1][
    "visit"
]
GLASS = {"X-Break-Glass-Reason": "covering dr.li's clinic today"}


def _audit(client, audit_id: str) -> AuditRecord:
    return client.app.state.ctx.store.get(AuditRecord, audit_id)


def test_only_the_physician_who_made_it_reads_it_others_break_glass(clinic):
    li, wang, admin = bearer(clinic, "dr.li"), bearer(clinic, "dr.wang"), bearer(clinic, "admin")
    created = clinic.post("/api/v1/recommendations", json=VISIT, headers=li)
    assert created.status_code == 201, created.text
    rec = created.json()
    url = f"/api/v1/recommendations/{rec['id']}"
    assert clinic.get(url, headers=li).status_code == 200

    # another physician: refused everywhere — the REST read, the narrative, the feedback, the page
    refused = clinic.get(url, headers=wang)
    assert refused.status_code == 403 and "X-Break-Glass-Reason" in refused.json()["detail"]
    assert "plan" not in refused.text
    assert clinic.get(f"/api/v1/narratives/{rec['record_hash']}", headers=wang).status_code == 403
    feedback = {"recommendation_id": rec["id"], "outcome": "accepted"}
    assert clinic.post("/api/v1/feedback", json=feedback, headers=wang).status_code == 403
    assert clinic.app.state.ctx.store.count(Feedback) == 0
    page = clinic.get(f"/page/recommendations/{rec['id']}", headers=wang)
    assert page.status_code == 403 and 'data-testid="break-glass"' in page.text and "HbA1c" not in page.text
    assert _audit(clinic, refused.headers["x-audit-id"]).outcome == "forbidden"

    # a reason too short to be one is no reason
    assert clinic.get(url, headers={**wang, "X-Break-Glass-Reason": "x"}).status_code == 403

    # break glass: allowed, and the audit record says who, what and why
    opened = clinic.get(url, headers={**wang, **GLASS})
    assert opened.status_code == 200 and opened.json()["plan"] == rec["plan"]
    record = _audit(clinic, opened.headers["x-audit-id"])
    assert (record.outcome, record.principal, record.reason) == (
        "break_glass",
        "dr.wang",
        GLASS["X-Break-Glass-Reason"],
    )
    assert (record.recommendation_id, record.record_hash) == (rec["id"], rec["record_hash"])
    glass_feedback = clinic.post("/api/v1/feedback", json=feedback, headers={**wang, **GLASS})
    assert glass_feedback.status_code == 201
    assert _audit(clinic, glass_feedback.headers["x-audit-id"]).outcome == "break_glass"
    shown = clinic.get(f"/page/recommendations/{rec['id']}?break_glass=covering+dr.li%27s+clinic", headers=wang)
    assert shown.status_code == 200 and 'data-testid="medications"' in shown.text
    assert _audit(clinic, shown.headers["x-audit-id"]).reason == "covering dr.li's clinic"

    # admins: the audit, not clinical content — unless they break glass too; they make no recommendations
    assert clinic.get("/api/v1/audit", headers=admin).status_code == 200
    assert clinic.get(url, headers=admin).status_code == 403
    assert clinic.post("/api/v1/recommendations", json=VISIT, headers=admin).status_code == 403
    assert clinic.get(url, headers={**admin, **GLASS}).status_code == 200
    audit = clinic.get("/api/v1/audit", headers=admin).json()
    assert sum(a["outcome"] == "break_glass" for a in audit) == 4
    assert any(a["reason"] == GLASS["X-Break-Glass-Reason"] and a["principal"] == "admin" for a in audit)


def test_page_feedback_on_another_physicians_record_needs_break_glass(clinic):
    page_login(clinic, "dr.li")
    made = clinic.post("/page/recommend", data={"record": json.dumps(VISIT), "csrf": csrf_of(clinic, "/")})
    assert made.status_code == 200 and "/page/recommendations/" in str(made.url)
    rec_id = str(made.url).rsplit("/", 1)[1]
    clinic.cookies.clear()
    page_login(clinic, "dr.wang")
    form = {"recommendation_id": rec_id, "outcome": "rejected", "csrf": csrf_of(clinic, "/")}
    assert clinic.post("/page/feedback", data=form).status_code == 403
    assert clinic.app.state.ctx.store.count(Feedback) == 0
    saved = clinic.post("/page/feedback", data={**form, "break_glass": "covering dr.li's clinic today"})
    assert saved.status_code == 200 and 'data-testid="saved"' in saved.text
    assert clinic.app.state.ctx.store.count(Feedback) == 1


def test_a_cds_card_link_opens_for_the_ehr_user_it_was_made_for(clinic):
    cards = clinic.post("/cds-services/diaguide-patient-view", json=hook_request()).json()["cards"]
    link = cards[0]["links"][0]["url"].replace("http://testserver", "")
    assert clinic.get(link, headers=bearer(clinic, "dr.li")).status_code == 200  # context.userId Practitioner/dr-1
    assert clinic.get(link, headers=bearer(clinic, "dr.wang")).status_code == 403


def test_an_ehr_gives_feedback_only_on_its_own_cards(make_client, ehr_keys, db_url):
    other = "https://other-ehr.example.org"
    client = make_client(
        database_url=db_url,
        cds_auth="jwt",
        cds_trusted_issuers={"https://ehr.example.org": str(ehr_keys.path), other: str(ehr_keys.path)},
    )
    pv = "http://testserver/cds-services/diaguide-patient-view"

    def auth(url: str, iss: str = "https://ehr.example.org") -> dict[str, str]:
        return {"Authorization": f"Bearer {ehr_keys.token(url, iss=iss)}"}

    cards = client.post(pv, json=hook_request(), headers=auth(pv)).json()["cards"]
    body = {"feedback": [{"card": cards[0]["uuid"], "outcome": "accepted"}]}
    fb = pv + "/feedback"
    assert client.post(fb, json=body, headers=auth(fb, other)).status_code == 404
    assert client.app.state.ctx.store.count(Feedback) == 0
    assert client.post(fb, json=body, headers=auth(fb)).status_code == 200


def test_every_read_of_patient_data_names_what_was_read(clinic):
    li = bearer(clinic, "dr.li")
    rec = clinic.post("/api/v1/recommendations", json=VISIT, headers=li).json()
    clinic.app.state.ctx.narratives.wait_idle()
    reads = [
        clinic.get(f"/api/v1/recommendations/{rec['id']}", headers=li),
        clinic.get(f"/api/v1/narratives/{rec['record_hash']}", headers=li),
        clinic.get(f"/page/recommendations/{rec['id']}", headers=li),
        clinic.get(f"/page/narratives/{rec['record_hash']}", headers=li),
        clinic.post("/api/v1/feedback", json={"recommendation_id": rec["id"], "outcome": "accepted"}, headers=li),
    ]
    for response in reads:
        assert response.status_code in (200, 201), response.text
        record = _audit(clinic, response.headers["x-audit-id"])
        assert (record.recommendation_id, record.record_hash, record.principal) == (
            rec["id"],
            rec["record_hash"],
            "dr.li",
        ), record.route
