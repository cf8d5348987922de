"""Physicians' own login for the page and the REST API: users with roles, signed sessions.

Passwords are hashed with scrypt (RFC 7914; n=2**14, r=8, p=1 — the parameters Python's docs
and OWASP give for interactive logins). A session is an HMAC-SHA256-signed token carrying the
user, the user's token version and an expiry; it travels as an HttpOnly cookie (page) or a
bearer token (REST). The role is never taken from the token: every request reads the user's
row, so logout, a password or role change and deactivation end every older session at once
(docs/security.md#sessions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from sqlalchemy import select

from diaguide.errors import InputError
from diaguide.service.inputs import bad_text, check_text
from diaguide.service.store import Store, User

Role = Literal["physician", "admin"]
ROLES: tuple[str, ...] = ("physician", "admin")
COOKIE = "diaguide_session"
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    demo: bool = False
    version: int = 0
    ehr_user: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class SessionClaims:
    """What a valid session token says: who, and which of the user's token versions it belongs to."""

    username: str
    version: int


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(_unb64(digest))
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash no password matches, checked for unknown users: one scrypt either way, so timing tells nothing."""
    return hash_password(secrets.token_urlsafe(24))


def create_user(
    store: Store, username: str, password: str, role: str = "physician", ehr_user: str | None = None
) -> None:
    """Add a user, or reset an existing user's password and role (which ends the user's sessions)."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}", field="role")
    if not username or len(password) < 8:
        raise InputError("a username and a password of at least 8 characters are needed", field="password")
    check_text(username, "username")
    check_text(password, "password")
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            s.add(User(username=username, password_hash=hash_password(password), role=role, ehr_user=ehr_user))
            return
        unchanged = user.role == role and user.active == 1 and verify_password(password, user.password_hash)
        if ehr_user is not None:
            unchanged, user.ehr_user = unchanged and user.ehr_user == ehr_user, ehr_user
        if not unchanged:  # a restart with the same admin settings keeps its sessions
            user.password_hash, user.role, user.active = hash_password(password), role, 1
            user.token_version += 1


def authenticate(store: Store, username: str, password: str) -> Principal | None:
    """The active user with this password, or None; the same scrypt cost whether the user exists or not."""
    if bad_text(username) or bad_text(password):
        return None  # no stored name has a NUL or a lone surrogate, and neither could be queried or hashed
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username, User.active == 1))
        found = None if user is None else Principal(user.username, user.role, False, user.token_version, user.ehr_user)
        stored = user.password_hash if user else dummy_hash()
    ok = verify_password(password, stored)
    return found if ok else None


def set_password(store: Store, username: str, new: str) -> None:
    """Set a user's new password (the caller checked the current one); every session of the user ends."""
    if len(new) < 8:
        raise InputError("the new password needs at least 8 characters", field="new_password")
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        user.password_hash = hash_password(new)
        user.token_version += 1


def end_sessions(store: Store, username: str, deactivate: bool = False) -> bool:
    """End every session of `username` (logout); `deactivate` also stops the user logging in. False: no user."""
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            return False
        user.token_version += 1
        if deactivate:
            user.active = 0
    return True


def session_user(store: Store, claims: SessionClaims | None) -> Principal | None:
    """The user a session belongs to, read from the database; None once the session was ended."""
    if claims is None:
        return None
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == claims.username))
        if user is None or user.active != 1 or user.token_version != claims.version or user.role not in ROLES:
            return None
        return Principal(user.username, user.role, False, user.token_version, user.ehr_user)


class SessionSigner:
    def __init__(self, secret: str | None, hours: float):
        self.key = (secret or secrets.token_urlsafe(32)).encode("utf-8")
        self.seconds = int(hours * 3600)

    def issue(self, principal: Principal) -> str:
        claims = {"u": principal.username, "v": principal.version, "e": int(time.time()) + self.seconds}
        body = _b64(json.dumps(claims).encode())
        return f"{body}.{self.sign(body)}"

    def read(self, token: str | None) -> SessionClaims | None:
        if not token or "." not in token:
            return None
        body, _, sig = token.rpartition(".")
        if not hmac.compare_digest(sig, self.sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("e"), int) or data["e"] < time.time():
            return None
        if not isinstance(data.get("u"), str) or not isinstance(data.get("v"), int):
            return None
        return SessionClaims(data["u"], data["v"])

    def sign(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode("utf-8"), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
