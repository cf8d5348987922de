"""Fixtures of the service tests: a database per test (SQLite and PostgreSQL), apps, EHR keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

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

from fastapi.testclient import TestClient  # noqa: E402

from diaguide.service.app import create_app  # noqa: E402
from diaguide.service.settings import Settings  # noqa: E402


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

import json  # noqa: E402
import time  # noqa: E402

import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

ISSUER = "https://ehr.example.org"


class EHRKeys:
    """An EHR's signing keys (EC P-384 'ec1', RSA 'rsa1') and its JWKS file."""

    def __init__(self, folder):
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys = []
        for kid, key, alg in (("ec1", self.ec, "ES384"), ("rsa1", self.rsa, "RS384")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        self.jwks = {"keys": keys}
        self.path = folder / "jwks.json"
        self.path.write_text(json.dumps(self.jwks))

    def token(self, aud: str, *, kid="ec1", alg="ES384", iss=ISSUER, key=None, **claims) -> str:
        now = int(time.time())
        body = {"iss": iss, "sub": "ehr-client", "aud": aud, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
        body.update(claims)
        key = key or (self.ec if kid == "ec1" else self.rsa)
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def ehr_keys(tmp_path) -> EHRKeys:
    return EHRKeys(tmp_path)


@pytest.fixture
def jwt_client(make_client, ehr_keys) -> TestClient:
    return make_client(cds_auth="jwt", cds_trusted_issuers={ISSUER: str(ehr_keys.path)})
