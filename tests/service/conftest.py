"""Fixtures of the service tests: a database per test (SQLite and PostgreSQL), apps, EHR keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.service.ehr import ISSUER, EHRKeys

from diaguide.service.app import create_app
from diaguide.service.settings import Settings

POSTGRES_URL = os.environ.get("DIAGUIDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards (reruns start clean).

    Mandatory in CI: when CI=true and the server is missing, the test fails instead of skipping.
    """
    import psycopg

    try:
        admin = psycopg.connect(_libpq(POSTGRES_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL test server unreachable at {POSTGRES_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"diaguide_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """Every store test runs on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'diaguide.db'}"
    return request.getfixturevalue("postgres_url")


# --- apps -------------------------------------------------------------------------------


@pytest.fixture
def make_client(tmp_path):
    """make_client(**settings) -> TestClient on a fresh SQLite store (closed at teardown)."""
    clients = []

    def make(**overrides) -> TestClient:
        overrides.setdefault("database_url", f"sqlite:///{tmp_path / f'var{len(clients)}' / 'diaguide.db'}")
        overrides.setdefault("secret_key", "test-secret")
        client = TestClient(create_app(Settings(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def demo_client(make_client) -> TestClient:
    return make_client(demo=True)


# --- EHR keys and tokens ------------------------------------------------------------------


@pytest.fixture
def ehr_keys(tmp_path) -> EHRKeys:
    return EHRKeys(tmp_path)


@pytest.fixture
def jwt_client(make_client, ehr_keys) -> TestClient:
    return make_client(cds_auth="jwt", cds_trusted_issuers={ISSUER: str(ehr_keys.path)})
