"""Issue 18, items 3-5: sessions that end (logout, password change, role change, deactivation), throttled logins,
and a login that costs the same whether the username exists or not."""

from __future__ import annotations

import hashlib

import pytest
from tests.security.conftest import PASSWORDS, bearer, csrf_of, page_login

from diaguide.service.auth_throttle import Limits, username_hash
from diaguide.service.auth_users import authenticate
from diaguide.service.store import AuditRecord, LoginFailure


def _ok(client, headers) -> bool:
    """Whether a session still opens a login-only REST route."""
    return client.get("/api/v1/recommendations/none", headers=headers).status_code == 404


def test_logout_ends_the_page_session_and_the_rest_token(clinic):
    page_login(clinic, "dr.li")
    cookie = dict(clinic.cookies)
    assert clinic.get("/", follow_redirects=False).status_code == 200
    out = clinic.post("/logout", data={"csrf": csrf_of(clinic, "/")}, follow_redirects=False)
    assert out.status_code == 303
    clinic.cookies.clear()
    clinic.cookies.update(cookie)  # the old cookie, replayed
    assert clinic.get("/", follow_redirects=False).status_code == 303

    token = bearer(clinic, "dr.li")
    assert _ok(clinic, token)
    assert clinic.post("/api/v1/auth/logout", headers=token).status_code == 204
    assert clinic.get("/api/v1/recommendations/none", headers=token).status_code == 401


def test_role_change_password_change_and_deactivation_end_sessions(clinic):
    admin = bearer(clinic, "admin")
    wang = bearer(clinic, "dr.wang")
    # promoted to admin: the old token does not carry the new role, it stops working
    promote = {"username": "dr.wang", "password": PASSWORDS["dr.wang"], "role": "admin"}
    assert clinic.post("/api/v1/users", json=promote, headers=admin).status_code == 201
    assert not _ok(clinic, wang)
    assert clinic.get("/api/v1/audit", headers=bearer(clinic, "dr.wang")).status_code == 200
    # demoted again: an admin token made before is no admin token any more
    wang_admin = bearer(clinic, "dr.wang")
    assert clinic.post("/api/v1/users", json={**promote, "role": "physician"}, headers=admin).status_code == 201
    assert clinic.get("/api/v1/audit", headers=wang_admin).status_code == 401

    li = bearer(clinic, "dr.li")
    change = {"current_password": PASSWORDS["dr.li"], "new_password": "li-new-pass-456"}
    assert (
        clinic.post("/api/v1/auth/password", json={**change, "current_password": "wrong"}, headers=li).status_code
        == 403
    )
    assert clinic.post("/api/v1/auth/password", json=change, headers=li).status_code == 204
    assert not _ok(clinic, li)
    li = bearer(clinic, "dr.li", "li-new-pass-456")
    assert _ok(clinic, li)

    assert clinic.post("/api/v1/users/dr.li/deactivate", headers=admin).status_code == 204
    assert not _ok(clinic, li)
    refused = clinic.post("/api/v1/auth/token", json={"username": "dr.li", "password": "li-new-pass-456"})
    assert refused.status_code == 401
    assert clinic.post("/api/v1/users/nobody/deactivate", headers=admin).status_code == 404
    assert clinic.post("/api/v1/users/dr.wang/deactivate", headers=bearer(clinic, "dr.wang")).status_code == 403


def test_a_restart_with_the_same_admin_settings_keeps_sessions(clinic):
    from diaguide.service.auth_users import create_user

    admin = bearer(clinic, "admin")
    create_user(clinic.app.state.ctx.store, "admin", PASSWORDS["admin"], role="admin")  # what startup does
    assert clinic.get("/api/v1/audit", headers=admin).status_code == 200


@pytest.fixture
def strict(make_client, db_url):
    """Small limits: delays after 2 failures per account, lock-out at 4; per address after 5, lock-out at 8."""
    from diaguide.service.auth_users import create_user

    client = make_client(
        database_url=db_url,
        login_free_failures=2,
        login_lockout_failures=4,
        login_address_free_failures=5,
        login_address_lockout_failures=8,
    )
    create_user(client.app.state.ctx.store, "dr.li", PASSWORDS["dr.li"])
    return client


def _token(client, username, password):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_wrong_passwords_lock_the_account_even_for_the_right_one(strict):
    codes = [_token(strict, "dr.li", f"guess-{i}").status_code for i in range(10)]
    assert codes[:2] == [401, 401] and 429 in codes  # after the free failures, a locked account is not even checked
    right = _token(strict, "dr.li", PASSWORDS["dr.li"])
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 60
    with strict.app.state.ctx.store.session() as s:
        row = s.get(LoginFailure, "user:" + username_hash("dr.li"))
        assert row.failures >= 4
    # the page login is throttled the same way
    page = strict.post("/login", data={"username": "dr.li", "password": PASSWORDS["dr.li"], "csrf": csrf_of(strict)})
    assert page.status_code == 429 and 'data-testid="locked"' in page.text


def test_failed_logins_are_audited_with_the_username_hashed(strict):
    response = _token(strict, "dr.nobody", "guess")
    record = strict.app.state.ctx.store.get(AuditRecord, response.headers["x-audit-id"])
    assert record.outcome == "login_failed"
    assert record.principal == "sha256:" + hashlib.sha256(b"dr.nobody").hexdigest()[:32]
    assert "dr.nobody" not in str([getattr(record, c.name) for c in AuditRecord.__table__.columns])


def test_many_accounts_from_one_address_lock_the_address(strict):
    codes = [_token(strict, f"user{i}", "guess").status_code for i in range(12)]
    assert codes[0] == 401 and codes[-1] == 429
    # a correct login from that address waits too
    assert _token(strict, "dr.li", PASSWORDS["dr.li"]).status_code == 429


def test_delays_grow_then_lock_out():
    limits = Limits(free=3, lockout=10, lockout_seconds=900)
    delays = [limits.delay(n) for n in range(1, 12)]
    assert delays[:2] == [0, 0] and delays[2:6] == [1, 2, 4, 8]
    assert delays == sorted(delays) and delays[-2:] == [900, 900]


def test_a_success_clears_the_account_counter(strict):
    assert _token(strict, "dr.li", "guess").status_code == 401
    assert _token(strict, "dr.li", PASSWORDS["dr.li"]).status_code == 200
    with strict.app.state.ctx.store.session() as s:
        assert s.get(LoginFailure, "user:" + username_hash("dr.li")) is None


def test_unknown_and_known_users_cost_one_scrypt_each(clinic, monkeypatch):
    store = clinic.app.state.ctx.store
    calls: list[int] = []
    real = hashlib.scrypt

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    costs = {}
    for username in ("dr.li", "dr.nobody", "dr.li", "dr.nobody2"):
        calls.clear()
        assert authenticate(store, username, "wrong-password") is None
        costs.setdefault(username.rstrip("2"), set()).add(len(calls))
    assert costs == {"dr.li": {1}, "dr.nobody": {1}}
