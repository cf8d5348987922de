"""Physicians' logins: hashed passwords, signed sessions, roles; no patient data without one."""

from tests.service.forms import csrf_of

from diaguide.service.auth_users import (
    Principal,
    SessionClaims,
    SessionSigner,
    authenticate,
    create_user,
    hash_password,
    verify_password,
)
from diaguide.service.store import User


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$") and first != second
    assert verify_password("correct horse", first)
    assert not verify_password("wrong horse", first)
    assert not verify_password("x", "garbage")


def test_sessions_are_signed_and_expire():
    signer = SessionSigner("k", hours=1)
    token = signer.issue(Principal("ana", "physician", version=3))
    assert signer.read(token) == SessionClaims("ana", 3)  # who and which token version; never the role
    body, _, sig = token.rpartition(".")
    assert signer.read(body.replace(body[2], "A" if body[2] != "A" else "B") + "." + sig) is None
    assert SessionSigner("other", hours=1).read(token) is None
    assert SessionSigner("k", hours=-1).read(SessionSigner("k", hours=-1).issue(Principal("a", "admin"))) is None


def test_login_page_and_rest_token(make_client):
    client = make_client(admin_username="admin", admin_password="admin-pass-1")
    store = client.app.state.ctx.store
    create_user(store, "dr.li", "physician-pass", "physician")
    assert store.get(User, 1).password_hash.startswith("scrypt$")
    assert authenticate(store, "dr.li", "nope") is None

    # no login: the page sends to the login form, the API answers 401
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    assert client.get("/api/v1/recommendations/x").status_code == 401
    form = {"csrf": csrf_of(client)}
    assert client.post("/login", data={"username": "dr.li", "password": "bad", **form}).status_code == 401

    response = client.post(
        "/login", data={"username": "dr.li", "password": "physician-pass", **form}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "httponly" in response.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200  # the cookie now opens the page
    assert client.get("/api/v1/audit").status_code == 403  # a physician is not an admin
    client.cookies.clear()

    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-pass-1"}).json()
    assert token["role"] == "admin"
    audit = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert audit.status_code == 200 and audit.json()
    assert all("password" not in str(row) for row in audit.json())

    admin = {"Authorization": f"Bearer {token['access_token']}"}
    created = client.post("/api/v1/users", json={"username": "dr.wang", "password": "wang-pass-9"}, headers=admin)
    assert created.status_code == 201
    assert (
        client.post("/api/v1/auth/token", json={"username": "dr.wang", "password": "wang-pass-9"}).json()["role"]
        == "physician"
    )
    physician = client.post("/api/v1/auth/token", json={"username": "dr.li", "password": "physician-pass"}).json()
    refused = client.post(
        "/api/v1/users",
        json={"username": "x", "password": "xxxxxxxxx", "role": "admin"},
        headers={"Authorization": f"Bearer {physician['access_token']}"},
    )
    assert refused.status_code == 403


def test_login_redirect_never_leaves_the_site(make_client):
    client = make_client(admin_username="admin", admin_password="admin-pass-1")
    response = client.post(
        "/login",
        data={"username": "admin", "password": "admin-pass-1", "next": "//evil.example/x", "csrf": csrf_of(client)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_demo_mode_is_labelled_and_needs_no_login(demo_client):
    page = demo_client.get("/")
    assert page.status_code == 200
    assert "DEMO MODE" in page.text
    assert "演示模式" in demo_client.get("/?lang=zh").text
