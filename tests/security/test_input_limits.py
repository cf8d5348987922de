"""Issue 18, items 8-11: bad input is a 400 (or 401) naming what is wrong, never a 500.

Deep JSON, wrongly typed order-sign drafts and feedback, over-long or out-of-range JWT claims,
lone surrogates and NUL bytes — on SQLite and PostgreSQL where the store is involved.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from tests.security.conftest import PASSWORDS, bearer, csrf_of
from tests.service.ehr import ISSUER
from tests.service.fhir_data import draft_orders, hook_request, prefetch

from diaguide.service.store import Feedback, Recommendation

PV = "/cds-services/diaguide-patient-view"
OS = "/cds-services/diaguide-order-sign"
FEEDBACK = "/cds-services/diaguide-patient-view/feedback"
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _post(client, path, body, headers=None):
    """`body` as Python's json writes it: lone surrogates as \\ud800 escapes, NaN as NaN."""
    return client.post(path, content=json.dumps(body), headers={**JSON, **(headers or {})})


# --- item 8: deeply nested JSON ---------------------------------------------------------


@pytest.mark.parametrize("path", [PV, OS, FEEDBACK])
@pytest.mark.parametrize("body", ["[" * 10000, '{"a":' * 5000 + "1" + "}" * 5000])
def test_deep_json_on_a_hook_is_a_400(demo_client, path, body):
    response = demo_client.post(path, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "nested deeper than 64 levels" in response.json()["error"]


def test_deep_json_inside_a_hook_context_is_a_400_naming_where(demo_client):
    deep: list = []
    for _ in range(200):
        deep = [deep]
    body = hook_request()
    body["context"]["extra"] = deep
    response = _post(demo_client, PV, body)
    assert response.status_code == 400
    assert "context.extra" in response.json()["error"]


def test_deep_json_in_the_paste_box_and_the_rest_api_is_a_400(demo_client):
    for body in ("[" * 10000, json.dumps({"visit": {"x": json.loads("[" * 100 + "]" * 100)}})):
        page = demo_client.post("/page/recommend", data={"record": body, "csrf": csrf_of(demo_client, "/")})
        assert page.status_code == 400 and "pasted record" in page.text, page.text
        rest = demo_client.post("/api/v1/recommendations", content=body, headers=JSON)
        assert rest.status_code in (400, 422) and rest.status_code != 500


# --- item 9: order-sign drafts with the wrong types ---------------------------------------


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ({"medicationCodeableConcept": {"text": 5}}, "medicationCodeableConcept.text: must be a string"),
        ({"medicationCodeableConcept": "metformin"}, "medicationCodeableConcept: must be a CodeableConcept"),
        ({"medicationCodeableConcept": {"coding": ["x"]}}, "medicationCodeableConcept.coding[0]: must be a Coding"),
        ({"medicationCodeableConcept": {"coding": "x"}}, "medicationCodeableConcept.coding: must be a list"),
        (
            {"medicationCodeableConcept": {"coding": [{"display": ["glipizide"]}]}},
            "medicationCodeableConcept.coding[0].display: must be a string",
        ),
        (
            {"medicationCodeableConcept": {"text": "glipizide"}, "dosageInstruction": [{"text": 5}]},
            "dosageInstruction[0].text: must be a string",
        ),
        (
            {"medicationCodeableConcept": {"text": "glipizide"}, "dosageInstruction": {"text": "1"}},
            "dosageInstruction: must be a list",
        ),
        ({"medicationCodeableConcept": {"text": "  "}}, "medicationCodeableConcept: names no drug"),
    ],
)
def test_a_wrongly_typed_draft_is_named_and_the_others_still_checked(demo_client, resource, field):
    body = hook_request("order-sign", prefetch=prefetch(meds=()))
    orders = draft_orders("metformin 500 MG Oral Tablet", "placeholder")
    orders["entry"][1]["resource"] = {"resourceType": "MedicationRequest", "id": "bad", "status": "draft", **resource}
    body["context"]["draftOrders"] = orders
    response = _post(demo_client, OS, body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    # the good draft: metformin at eGFR 24 is still flagged
    assert any(c["indicator"] == "critical" and "metformin" in c["summary"].lower() for c in cards)
    unread = [c for c in cards if "could not read" in c["summary"]]
    assert len(unread) == 1 and "not safety-checked" in unread[0]["summary"]
    detail = unread[0]["detail"].replace("\\", "")
    assert f"context.draftOrders.entry[1].resource.{field}" in detail, detail


@pytest.mark.parametrize("entry", [5, "x", {"resource": 1}])
def test_a_draft_bundle_of_the_wrong_shape_is_a_400_or_ignored(demo_client, entry):
    body = hook_request("order-sign", prefetch=prefetch(meds=()))
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": entry}
    response = _post(demo_client, OS, body)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert "context.draftOrders.entry: must be a list" in response.json()["error"]


# --- item 10: CDS feedback and JWT claims ------------------------------------------------


@pytest.fixture
def pv_card(make_client, db_url):
    client = make_client(demo=True, database_url=db_url)
    cards = _post(client, PV, hook_request()).json()["cards"]
    return client, cards[0]["uuid"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"reason": {"code": {"nested": "x"}}}, "feedback[0].overrideReason.reason.code: must be a string"),
        ({"reason": {"code": "x" * 201}}, "feedback[0].overrideReason.reason.code: longer than 200 characters"),
        ({"reason": {"display": ["x"]}}, "feedback[0].overrideReason.reason.display: must be a string"),
        ({"reason": "patient-aware"}, "feedback[0].overrideReason.reason: must be a Coding object"),
        ({"userComment": {"text": "x"}}, "feedback[0].overrideReason.userComment: must be a string"),
        ({"userComment": "ok\u0000"}, "feedback[0].overrideReason.userComment: contains a NUL byte"),
    ],
)
def test_bad_cds_feedback_is_a_400_naming_the_field(pv_card, override, field):
    client, uuid = pv_card
    item = {"card": uuid, "outcome": "overridden", "overrideReason": override}
    response = _post(client, FEEDBACK, {"feedback": [item]})
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    assert client.app.state.ctx.store.count(Feedback) == 0


def test_odd_feedback_shapes_are_400s(pv_card):
    client, uuid = pv_card
    for body in (
        [],
        {"feedback": {"card": uuid}},
        {"feedback": [5]},
        {"feedback": [{"card": uuid, "outcome": "accepted", "outcomeTimestamp": "yesterday"}]},
        {"feedback": [{"card": uuid, "outcome": "accepted", "acceptedSuggestions": [{"id": {"x": 1}}]}]},
        {"feedback": [{"card": "a\u0000b", "outcome": "accepted"}]},
        {"feedback": [{"card": "\ud800", "outcome": "accepted"}]},
    ):
        response = _post(client, FEEDBACK, body)
        assert response.status_code == 400, (body, response.text)
    good = {"card": uuid, "outcome": "overridden", "overrideReason": {"reason": {"code": "x" * 200}}}
    assert _post(client, FEEDBACK, {"feedback": [good]}).status_code == 200
    assert client.app.state.ctx.store.count(Feedback) == 1


@pytest.fixture
def jwt_db_client(make_client, db_url, ehr_keys):
    return make_client(database_url=db_url, cds_auth="jwt", cds_trusted_issuers={ISSUER: str(ehr_keys.path)})


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": "j" * 201},
        {"jti": "a\u0000b"},
        {"jti": "\ud800"},
        {"jti": 12345},
        {"jti": ""},
        {"exp": 10**12},
        {"exp": float("inf")},
        {"exp": 1e300},
        {"iat": "1700000000"},
    ],
)
def test_odd_jwt_claims_are_a_bare_401(jwt_db_client, ehr_keys, claims):
    token = ehr_keys.token("http://testserver/cds-services", **claims)
    response = jwt_db_client.get("/cds-services", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.content == b""


def test_a_200_character_jti_still_passes(jwt_db_client, ehr_keys):
    token = ehr_keys.token("http://testserver/cds-services", jti="j" * 200)
    assert jwt_db_client.get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- item 11: lone surrogates and NUL bytes ------------------------------------------------


def _with_note(text: str) -> dict:
    body = hook_request()
    body["prefetch"]["conditions"]["entry"][0]["resource"]["note"] = [{"text": text}]
    return body


def _with_drug(name: str) -> dict:
    return hook_request(prefetch=prefetch(meds=(name,)))


def _with_patient_id(pid: str) -> dict:
    body = hook_request()
    body["context"]["patientId"] = pid
    return body


@pytest.mark.parametrize("bad", ["\ud800", "a\u0000b"])
@pytest.mark.parametrize(
    ("make", "where"),
    [
        (_with_note, "prefetch.conditions.entry[0].resource.note[0].text"),
        (_with_drug, "prefetch.medications.entry[0].resource.medicationCodeableConcept.text"),
        (_with_patient_id, "context.patientId"),
    ],
)
def test_surrogates_and_nul_in_a_hook_are_a_400_naming_the_field(make_client, db_url, bad, make, where):
    client = make_client(demo=True, database_url=db_url)
    response = _post(client, PV, make(bad))
    assert response.status_code == 400, response.text
    assert where in response.json()["error"]
    assert client.app.state.ctx.store.count(Recommendation) == 0


def _visit(**fields) -> dict:
    visit = {
        "visit_id": "v1",
        "patient_id": "p1",
        "date": "2026-10-12",
        "patient": {"age": 58, "sex": "male"},
        "labs": [{"loinc": "4548-4", "name": "HbA1c", "value": 8.4, "unit": "%", "date": "2026-10-10"}],
        "medications": [{"drug": "metformin"}],
    }
    visit.update(fields)
    return visit


@pytest.mark.parametrize("bad", ["\ud800", "a\u0000b"])
@pytest.mark.parametrize(
    ("visit", "where"),
    [
        (lambda bad: _visit(chief_complaint=bad), "chief_complaint"),
        (lambda bad: _visit(patient_id=bad), "patient_id"),
        (lambda bad: _visit(medications=[{"drug": bad}]), "medications[0].drug"),
    ],
)
def test_surrogates_and_nul_in_a_record_are_a_400_on_rest_and_the_page(clinic, bad, visit, where):
    headers = bearer(clinic, "dr.li")
    rest = _post(clinic, "/api/v1/recommendations", visit(bad), headers)
    assert rest.status_code == 400, rest.text
    assert where in rest.json()["detail"]
    clinic.post("/login", data={"username": "dr.li", "password": PASSWORDS["dr.li"], "csrf": csrf_of(clinic)})
    page = clinic.post("/page/recommend", data={"record": json.dumps(visit(bad)), "csrf": csrf_of(clinic, "/")})
    assert page.status_code == 400 and where in page.text.replace("&#39;", "'"), page.text
    assert clinic.app.state.ctx.store.count(Recommendation) == 0


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800", "dr.li\u0000"])
def test_surrogates_and_nul_in_a_login_are_a_401(clinic, bad):
    for username, password in ((bad, "whatever-123"), ("dr.li", bad)):
        api = _post(clinic, "/api/v1/auth/token", {"username": username, "password": password})
        assert api.status_code in (401, 422), api.text
        # a lone surrogate as a browser cannot send it but a script can: its (invalid) UTF-8 bytes, %-encoded
        form = "&".join(
            f"{k}={quote(v, safe='', errors='surrogatepass')}"
            for k, v in {"username": username, "password": password, "csrf": csrf_of(clinic)}.items()
        )
        page = clinic.post("/login", content=form, headers=FORM, follow_redirects=False)
        assert page.status_code in (400, 401), page.text
    assert _post(clinic, "/api/v1/auth/token", {"username": "dr.li", "password": PASSWORDS["dr.li"]}).status_code == 200


def test_nul_in_an_id_is_a_404_and_in_a_comment_a_400(clinic):
    headers = bearer(clinic, "dr.li")
    for path in (
        "/api/v1/recommendations/a%00b",
        "/api/v1/narratives/a%00b",
        "/api/v1/a%00b",
        "/api/v1/recommendations/%ED%A0%80",
    ):
        response = clinic.get(path, headers=headers)
        assert response.status_code in (400, 404), (path, response.status_code, response.text)
    made = _post(clinic, "/api/v1/recommendations", _visit(), headers)
    assert made.status_code == 201, made.text
    rec_id = made.json()["id"]
    for field, value in (("comment", "ok\u0000"), ("reason", "\u0000"), ("recommendation_id", "a\u0000b")):
        body = {"recommendation_id": rec_id, "outcome": "rejected", field: value}
        response = _post(clinic, "/api/v1/feedback", body, headers)
        assert response.status_code in (400, 404, 422), (field, response.text)
    clinic.post("/login", data={"username": "dr.li", "password": PASSWORDS["dr.li"], "csrf": csrf_of(clinic)})
    page = clinic.get("/page/recommendations/a%00b")
    assert page.status_code in (403, 404), page.status_code
    form = {"recommendation_id": rec_id, "outcome": "rejected", "comment": "x\u0000y", "csrf": csrf_of(clinic, "/")}
    assert clinic.post("/page/feedback", data=form, follow_redirects=False).status_code == 400
    form["recommendation_id"] = "a\u0000b"
    assert clinic.post("/page/feedback", data=form, follow_redirects=False).status_code in (400, 403, 404)
    assert clinic.app.state.ctx.store.count(Feedback) == 0
