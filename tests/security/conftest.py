"""Fixtures of the security tests (issue 18): the service tests' databases and apps, plus logins and forms.

Shared by the access/session tests and the input/log tests; add fixtures, do not change the ones here.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import db_url, demo_client, ehr_keys, make_client, postgres_url  # noqa: F401
from tests.service.forms import csrf_of

from diaguide.service.auth_users import create_user

PASSWORDS = {"admin": "admin-pass-1", "dr.li": "li-pass-123", "dr.wang": "wang-pass-123"}


def bearer(client: TestClient, username: str, password: str | None = None) -> dict[str, str]:
    """The Authorization header of a fresh REST login."""
    response = client.post(
        "/api/v1/auth/token", json={"username": username, "password": password or PASSWORDS[username]}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def page_login(client: TestClient, username: str) -> None:
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORDS[username], "csrf": csrf_of(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


@pytest.fixture
def clinic(make_client, db_url):  # noqa: F811
    """A production-mode service (logins on, EHR auth off) with an admin and two physicians, on both databases."""
    client = make_client(database_url=db_url, admin_username="admin", admin_password=PASSWORDS["admin"], cds_auth="off")
    store = client.app.state.ctx.store
    create_user(store, "dr.li", PASSWORDS["dr.li"], ehr_user="Practitioner/dr-1")
    create_user(store, "dr.wang", PASSWORDS["dr.wang"], ehr_user="Practitioner/dr-2")
    return client
