"""CSRF protection of the page's forms (docs/security.md#csrf).

Two checks on every state-changing page post (login, logout, recommend, feedback):

- the browser's `Sec-Fetch-Site` must say same-origin, and the Origin (or, without one, the
  Referer) must be this service's own origin — a form posted from another origin, even a sibling
  on the same site, is refused;
- the form's hidden token must be the HMAC of this browser's CSRF nonce cookie *and* its session
  cookie. Another origin on the same site can plant a nonce cookie, but it cannot read the
  HttpOnly session cookie, so it cannot make a token that matches it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

from diaguide.service.auth_users import COOKIE
from diaguide.service.settings import Settings

CSRF_COOKIE = "diaguide_csrf"
FIELD = "csrf"


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def own_origin(request: Request, settings: Settings) -> str:
    if settings.public_base_url:
        return _origin_of(settings.public_base_url) or ""
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def same_origin(request: Request, settings: Settings) -> bool:
    """False when the post says it came from another origin.

    `Sec-Fetch-Site` (sent by current browsers whatever the referrer policy) must be same-origin. Under this
    service's `Referrer-Policy: no-referrer` a browser sends `Origin: null` even on its own posts, so `null` passes
    only beside `Sec-Fetch-Site: same-origin`; any other Origin (or, without one, Referer) must be this origin.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin == "null" and site == "same-origin":
        return True
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True  # not a browser's post from elsewhere (browsers send Origin on cross-origin posts)
        origin = _origin_of(referer) or "null"
    return origin.lower() == own_origin(request, settings)


def _token(key: bytes, nonce: str, session: str) -> str:
    return hmac.new(key, f"csrf|{nonce}|{session}".encode(), hashlib.sha256).hexdigest()


def token_for(request: Request, key: bytes) -> tuple[str, str]:
    """(this browser's nonce, the form token for it and its session); a new nonce when it has none."""
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return nonce, _token(key, nonce, request.cookies.get(COOKIE, ""))


def remember(response: Response, request: Request, nonce: str) -> None:
    """Set the nonce cookie (HttpOnly: scripts never need it, the token travels in the form)."""
    if request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(
            CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
        )


def valid(request: Request, settings: Settings, key: bytes, token: str) -> bool:
    """Whether a page post comes from this service's own form."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not token or not same_origin(request, settings):
        return False
    return hmac.compare_digest(token, _token(key, nonce, request.cookies.get(COOKIE, "")))
