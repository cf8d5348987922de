"""Physicians' own login for the page and the REST API: users with roles, signed sessions.

Passwords are hashed with scrypt (RFC 7914; n=2**14, r=8, p=1 — the parameters Python's docs
and OWASP give for interactive logins). A session is an HMAC-SHA256-signed token carrying the
user, role and expiry; it travels as an HttpOnly cookie (page) or a bearer token (REST).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
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

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


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


def create_user(store: Store, username: str, password: str, role: str = "physician") -> None:
    """Add a user (or reset an existing user's password and role)."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}", field="role")
    if not username or len(password) < 8:
        raise InputError("a username and a password of at least 8 characters are needed", field="password")
    check_text(username, "username")
    check_text(password, "password")
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            s.add(User(username=username, password_hash=hash_password(password), role=role))
        else:
            user.password_hash, user.role, user.active = hash_password(password), role, 1


def authenticate(store: Store, username: str, password: str) -> Principal | None:
    if bad_text(username) or bad_text(password):
        return None  # no stored name has a NUL or a lone surrogate, and neither could be queried or hashed
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username, User.active == 1))
        stored = user.password_hash if user else None
        role = user.role if user else ""
    # compare even for unknown users so timing does not reveal which usernames exist
    ok = verify_password(password, stored or hash_password("x" * 12))
    return Principal(username, role) if ok and stored else None


class SessionSigner:
    def __init__(self, secret: str | None, hours: float):
        self.key = (secret or secrets.token_urlsafe(32)).encode("utf-8")
        self.seconds = int(hours * 3600)

    def issue(self, principal: Principal) -> str:
        body = _b64(
            json.dumps({"u": principal.username, "r": principal.role, "e": int(time.time()) + self.seconds}).encode()
        )
        return f"{body}.{self._sign(body)}"

    def read(self, token: str | None) -> Principal | None:
        if not token or "." not in token:
            return None
        body, _, sig = token.rpartition(".")
        if not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        if data.get("e", 0) < time.time() or data.get("r") not in ROLES:
            return None
        return Principal(str(data["u"]), data["r"])

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode("ascii"), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
