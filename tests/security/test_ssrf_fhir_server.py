"""Issue 18, item 14: fhirServer is read only when allowed (deny by default, also with JWTs), the EHR's
token goes nowhere else, and a failed read says the same thing whatever answered."""

from __future__ import annotations

import httpx
import pytest
from tests.service.ehr import ISSUER
from tests.service.fhir_data import FakeFHIRServer, hook_request

from diaguide.service.prefetch import READ_FAILED, under

PV = "/cds-services/diaguide-patient-view"
URL = "http://testserver" + PV
OTHER_ISSUER = "https://other-ehr.example.org"
FHIR_BASE = "https://fhir.ehr.example.org/r4"


class Recorder:
    """A transport that records every request (URL and Authorization) and answers with `answer`."""

    def __init__(self, answer=None):
        self.seen: list[tuple[str, str | None]] = []
        self.answer = answer or FakeFHIRServer()

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.seen.append((str(request.url), request.headers.get("authorization")))
            return self.answer(request)

        return httpx.MockTransport(handle)


def _client(make_client, ehr_keys, **settings):
    # the same key set trusted under two issuer names: each issuer's calls are told apart by `iss`
    issuers = {ISSUER: str(ehr_keys.path), OTHER_ISSUER: str(ehr_keys.path)}
    client = make_client(cds_auth="jwt", cds_trusted_issuers=issuers, **settings)
    recorder = Recorder()
    client.app.state.ctx.fhir_transport = recorder.transport()
    return client, recorder


def _call(client, ehr_keys, fhir_server, iss=ISSUER):
    body = hook_request(fhirServer=fhir_server, fhirAuthorization={"access_token": "fhir-token"}, prefetch=None)
    return client.post(PV, json=body, headers={"Authorization": f"Bearer {ehr_keys.token(URL, iss=iss)}"})


def test_with_jwts_and_no_allow_list_no_fhir_server_is_read(make_client, ehr_keys):
    client, recorder = _client(make_client, ehr_keys)
    for target in ("http://127.0.0.1:6379/internal-admin", "http://169.254.169.254/latest", FHIR_BASE):
        response = _call(client, ehr_keys, target)
        assert response.status_code == 412, response.text
    assert recorder.seen == []  # the bearer token went nowhere


@pytest.mark.parametrize(
    "target",
    [
        "https://fhir.ehr.example.org.evil.net/r4",
        "https://fhir.ehr.example.org@evil.net/r4",
        "https://evil.net@fhir.ehr.example.org/r4",
        "https://fhir.ehr.example.org/r4/../admin",
        "https://fhir.ehr.example.org/r4/%2e%2e/admin",
        "https://fhir.ehr.example.org/r4x",
        "https://fhir.ehr.example.org/r",
        "http://fhir.ehr.example.org/r4",
        "https://fhir.ehr.example.org:8443/r4",
        "https://fhir.ehr.example.org/r4?_format=xml",
        "file:///etc/passwd",
        "not a url",
    ],
)
def test_only_urls_inside_a_listed_base_are_read(make_client, ehr_keys, target):
    client, recorder = _client(make_client, ehr_keys, fhir_servers=[FHIR_BASE + "/"])
    assert _call(client, ehr_keys, target).status_code == 412
    assert recorder.seen == []


def test_a_listed_base_is_read_with_the_token(make_client, ehr_keys):
    client, recorder = _client(make_client, ehr_keys, fhir_servers=[FHIR_BASE])
    for target in (FHIR_BASE, FHIR_BASE + "/", "https://FHIR.ehr.example.org:443/r4"):
        recorder.seen.clear()
        response = _call(client, ehr_keys, target)
        assert response.status_code == 200, response.text
        assert recorder.seen and all(url.startswith(FHIR_BASE + "/") for url, _ in recorder.seen)
        assert {auth for _, auth in recorder.seen} == {"Bearer fhir-token"}


def test_an_issuers_registration_names_its_own_fhir_base_only(make_client, ehr_keys):
    client, recorder = _client(make_client, ehr_keys, cds_issuer_fhir_servers={ISSUER: [FHIR_BASE]})
    assert _call(client, ehr_keys, FHIR_BASE + "/", iss=ISSUER).status_code == 200
    assert recorder.seen
    recorder.seen.clear()
    assert _call(client, ehr_keys, FHIR_BASE + "/", iss=OTHER_ISSUER).status_code == 412
    assert recorder.seen == []


def _raise(exc):
    def answer(request):
        raise exc

    return answer


@pytest.mark.parametrize(
    "answer",
    [
        _raise(httpx.ConnectError("connection refused")),  # a closed port
        _raise(httpx.ReadTimeout("timed out")),  # a filtered port
        _raise(httpx.RemoteProtocolError("not HTTP")),  # an open port speaking something else
        lambda request: httpx.Response(404, text="Not Found"),
        lambda request: httpx.Response(401),
        lambda request: httpx.Response(500, text="Traceback ..."),
        lambda request: httpx.Response(302, headers={"location": "http://127.0.0.1/"}),
        lambda request: httpx.Response(200, text="<html>admin console</html>"),
        lambda request: httpx.Response(200, json={"resourceType": "OperationOutcome"}),
        lambda request: httpx.Response(200, json=[1, 2]),
    ],
)
def test_every_failed_read_gets_the_same_answer(make_client, ehr_keys, answer):
    client, recorder = _client(make_client, ehr_keys, fhir_servers=[FHIR_BASE])
    recorder.answer = answer
    response = _call(client, ehr_keys, FHIR_BASE)
    assert response.status_code == 412
    assert response.json() == {"error": READ_FAILED}


def test_a_next_link_outside_the_base_is_not_followed(make_client, ehr_keys):
    client, recorder = _client(make_client, ehr_keys, fhir_servers=[FHIR_BASE])
    served = FakeFHIRServer()

    def answer(request):
        response = served(request)
        if request.url.path.endswith("/Observation"):
            page = {**response.json(), "link": [{"relation": "next", "url": "http://127.0.0.1:8080/admin?page=2"}]}
            return httpx.Response(200, json=page)
        return response

    recorder.answer = answer
    assert _call(client, ehr_keys, FHIR_BASE).status_code == 412
    assert all(url.startswith(FHIR_BASE + "/") for url, _ in recorder.seen)


def test_under_compares_origins_and_whole_path_segments():
    assert under("https://a.example/r4/Patient/1", "https://a.example/r4")
    assert under("https://a.example/r4", "https://a.example/r4/")
    assert not under("https://a.example/r40", "https://a.example/r4")
    assert not under("https://a.example.evil/r4", "https://a.example/r4")
    assert not under("https://u:p@a.example/r4", "https://a.example/r4")
    assert not under("https://a.example/r4/..", "https://a.example/r4")
    assert not under("https://a.example/r4", "not a base")
