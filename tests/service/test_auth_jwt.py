"""EHR JWTs (CDS Hooks 2.0 §Trusting CDS Clients): only a fresh, signed, addressed token passes."""

import base64
import hashlib
import hmac
import json
import logging
import time

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.service.ehr import ISSUER

URL = "http://testserver/cds-services"


def _get(client, token):
    return client.get("/cds-services", headers={"Authorization": f"Bearer {token}"})


def test_valid_es384_and_rs384_tokens_pass(jwt_client, ehr_keys):
    assert _get(jwt_client, ehr_keys.token(URL)).status_code == 200
    assert _get(jwt_client, ehr_keys.token(URL, kid="rsa1", alg="RS384")).status_code == 200


def test_missing_token_is_a_bare_401(jwt_client):
    response = jwt_client.get("/cds-services")
    assert response.status_code == 401
    assert response.content == b""


def test_replayed_token_is_refused(jwt_client, ehr_keys):
    token = ehr_keys.token(URL)
    assert _get(jwt_client, token).status_code == 200
    assert _get(jwt_client, token).status_code == 401


def test_expired_wrong_audience_and_untrusted_issuer_are_refused(jwt_client, ehr_keys):
    past = int(time.time()) - 3600
    assert _get(jwt_client, ehr_keys.token(URL, iat=past - 300, exp=past)).status_code == 401
    assert _get(jwt_client, ehr_keys.token("http://testserver/cds-services/other")).status_code == 401
    assert _get(jwt_client, ehr_keys.token("https://attacker.example/cds-services")).status_code == 401
    assert _get(jwt_client, ehr_keys.token(URL, iss="https://evil.example")).status_code == 401


def test_missing_jti_or_future_iat_is_refused(jwt_client, ehr_keys):
    assert _get(jwt_client, ehr_keys.token(URL, jti=None)).status_code == 401
    assert _get(jwt_client, ehr_keys.token(URL, iat=int(time.time()) + 3600)).status_code == 401


def test_forged_signature_is_refused(jwt_client, ehr_keys):
    other = ec.generate_private_key(ec.SECP384R1())
    assert _get(jwt_client, ehr_keys.token(URL, key=other)).status_code == 401


def test_alg_none_and_hmac_with_the_public_key_are_refused(jwt_client, ehr_keys):
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": URL, "iat": now, "exp": now + 300, "jti": "n1"}
    unsigned = f"{b64({'alg': 'none', 'kid': 'ec1', 'typ': 'JWT'})}.{b64(claims)}."
    assert _get(jwt_client, unsigned).status_code == 401
    # the classic key-confusion attack: HS256 "signed" with the public key as the secret
    pem = ehr_keys.ec.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'ec1', 'typ': 'JWT'})}.{b64({**claims, 'jti': 'h1'})}"
    sig = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=")
    hmac_token = f"{signing_input}.{sig.decode()}"
    assert _get(jwt_client, hmac_token).status_code == 401


def test_refusals_are_logged_without_the_token(jwt_client, ehr_keys, caplog):
    token = ehr_keys.token("https://wrong.example/cds-services")
    with caplog.at_level(logging.WARNING, logger="diaguide.service"):
        assert _get(jwt_client, token).status_code == 401
    refusals = [r for r in caplog.records if getattr(r, "event", "") == "cds_auth_refused"]
    assert refusals and refusals[0].issuer == ISSUER
    assert token not in caplog.text and token.split(".")[2] not in caplog.text
    audit = jwt_client.app.state.ctx.store.audit_page()
    assert audit[0].status_code == 401 and audit[0].outcome == "unauthorized"


def test_jwks_from_a_url_is_fetched_once_and_cached(make_client, ehr_keys):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json=ehr_keys.jwks)

    client = make_client(cds_auth="jwt", cds_trusted_issuers={ISSUER: "https://ehr.example.org/jwks"})
    client.app.state.ctx.verifier.jwks.transport = httpx.MockTransport(handler)
    for _ in range(3):
        assert _get(client, ehr_keys.token(URL)).status_code == 200
    assert calls == ["https://ehr.example.org/jwks"]


def test_auth_off_only_by_setting(make_client):
    assert make_client(cds_auth="off").get("/cds-services").status_code == 200
    assert make_client().get("/cds-services").status_code == 401  # production default: jwt


def test_audience_is_the_public_url_behind_a_proxy(make_client, ehr_keys):
    client = make_client(
        cds_auth="jwt",
        cds_trusted_issuers={ISSUER: str(ehr_keys.path)},
        public_base_url="https://cds.hospital.example/diaguide",
    )
    public = "https://cds.hospital.example/diaguide/cds-services"
    assert _get(client, ehr_keys.token(public)).status_code == 200
    assert _get(client, ehr_keys.token(URL)).status_code == 401
