"""Issue 18, item 7: security headers on pages and patient-data JSON; /docs, /redoc, /openapi.json and /metrics
behind a login (or off) in production settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.security.conftest import bearer, csrf_of

VISIT = json.loads((Path(__file__).parents[2] / "src/diaguide/service/samples.json").read_text(encoding="utf-8"))[1][
    "visit"
]


def _secure(response) -> None:
    h = response.headers
    assert "frame-ancestors 'none'" in h["content-security-policy"], response.url
    assert "default-src 'self'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["cache-control"] == "no-store"


def test_pages_and_patient_json_carry_the_security_headers(clinic):
    li = bearer(clinic, "dr.li")
    rec = clinic.post("/api/v1/recommendations", json=VISIT, headers=li)
    _secure(rec)
    _secure(clinic.get(f"/api/v1/recommendations/{rec.json()['id']}", headers=li))
    _secure(clinic.get(f"/page/recommendations/{rec.json()['id']}", headers=li))
    _secure(clinic.get("/login"))
    _secure(clinic.get("/", headers=li))
    _secure(clinic.get("/api/v1/recommendations/none", headers=li))  # errors too


def test_docs_openapi_and_metrics_need_a_login_in_production(clinic):
    for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
        assert clinic.get(path).status_code == 401, path
    li = bearer(clinic, "dr.li")
    assert "/api/v1/recommendations" in clinic.get("/openapi.json", headers=li).json()["paths"]
    assert "swagger" in clinic.get("/docs", headers=li).text.lower()
    assert "frame-ancestors 'none'" in clinic.get("/docs", headers=li).headers["content-security-policy"]
    assert "diaguide_requests_total" in clinic.get("/metrics", headers=li).text


@pytest.mark.parametrize("setting", ["off", "open"])
def test_docs_and_metrics_are_configurable(make_client, setting):
    client = make_client(api_docs=setting, metrics=setting, cds_auth="off")
    expected = 404 if setting == "off" else 200
    for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
        assert client.get(path).status_code == expected, path


def test_a_scraper_reads_metrics_with_its_own_token(make_client):
    client = make_client(metrics_token="scrape-secret-1")
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/docs", headers={"Authorization": "Bearer scrape-secret-1"}).status_code == 401


def test_demo_keeps_its_docs_open_and_its_pages_unframeable(demo_client):
    assert demo_client.get("/openapi.json").status_code == 200
    page = demo_client.post("/page/recommend", data={"sample": "s0", "csrf": csrf_of(demo_client, "/")})
    _secure(page)
