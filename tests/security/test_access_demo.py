"""Issue 18, item 15: demo mode (no login, every caller an admin) only on loopback and on the demo's own database,
refused loudly otherwise; and a demo creates no logins."""

from __future__ import annotations

import logging

import pytest

from diaguide.errors import ConfigError
from diaguide.service import app as service_app
from diaguide.service.app import create_app
from diaguide.service.auth_users import authenticate
from diaguide.service.settings import Settings
from diaguide.service.store import Store


@pytest.fixture
def no_uvicorn(monkeypatch):
    """uvicorn.run replaced: a refused demo never gets that far; an allowed one is recorded, not served."""
    import uvicorn

    served: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw["host"]))
    return served


def test_demo_is_refused_on_a_non_loopback_host(monkeypatch, tmp_path, no_uvicorn, caplog):
    monkeypatch.setenv("DIAGUIDE_DEMO", "1")
    monkeypatch.setenv("DIAGUIDE_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with caplog.at_level(logging.CRITICAL, logger="diaguide"), pytest.raises(ConfigError, match="loopback|127"):
            service_app.serve_command(host=host, port=8000)
    assert no_uvicorn == []
    assert any(r.levelno == logging.CRITICAL and "demo mode" in r.getMessage() for r in caplog.records)
    service_app.serve_command(host="127.0.0.1", port=8000)
    assert no_uvicorn == ["127.0.0.1"]


def test_demo_is_refused_on_a_production_database(db_url, caplog):
    production = create_app(Settings(database_url=db_url, admin_username="admin", admin_password="admin-pass-1"))
    production.state.ctx.store.close()
    with caplog.at_level(logging.CRITICAL, logger="diaguide"), pytest.raises(ConfigError, match="production database"):
        create_app(Settings(demo=True, database_url=db_url))
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)


def test_a_database_from_before_modes_with_logins_is_production(db_url):
    from diaguide.service.auth_users import create_user

    store = Store(db_url)
    create_user(store, "dr.li", "li-pass-123")
    store.close()
    with pytest.raises(ConfigError):
        create_app(Settings(demo=True, database_url=db_url))


def test_production_is_refused_on_a_demo_database(db_url):
    demo = create_app(Settings(demo=True, database_url=db_url))
    demo.state.ctx.store.close()
    with pytest.raises(ConfigError, match="demo database"):
        create_app(Settings(database_url=db_url, secret_key="k"))


def test_a_demo_caller_cannot_create_logins(demo_client):
    made = demo_client.post("/api/v1/users", json={"username": "mallory", "password": "mallory-pass", "role": "admin"})
    assert made.status_code == 403
    assert authenticate(demo_client.app.state.ctx.store, "mallory", "mallory-pass") is None
