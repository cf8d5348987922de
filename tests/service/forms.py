"""The page's forms as a browser fills them: the hidden CSRF token of this client's cookies."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def csrf_of(client: TestClient, path: str = "/login") -> str:
    """The CSRF token of the page's forms for this client's cookies (the page sets its nonce cookie)."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)
