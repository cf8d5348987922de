"""Issue 18, item 6: the page's posts need this page's CSRF token and must come from this origin."""

from __future__ import annotations

import json

from tests.security.conftest import PASSWORDS, csrf_of, page_login

from diaguide.service.auth_csrf import CSRF_COOKIE
from diaguide.service.store import AuditRecord, Feedback, Recommendation

EVIL = {"Origin": "https://evil.testserver"}  # another origin on the same site


def test_recommend_and_feedback_need_the_token_and_this_origin(clinic):
    page_login(clinic, "dr.li")
    token = csrf_of(clinic, "/")
    store = clinic.app.state.ctx.store
    for data, headers in (
        ({"sample": "s0"}, {}),  # no token
        ({"sample": "s0", "csrf": "0" * 64}, {}),  # a made-up token
        ({"sample": "s0", "csrf": token}, EVIL),  # the right token from another origin
        ({"sample": "s0", "csrf": token}, {"Origin": "null"}),  # a sandboxed frame
        ({"sample": "s0", "csrf": token}, {"Referer": "https://evil.testserver/form"}),
        ({"sample": "s0", "csrf": token}, {"Sec-Fetch-Site": "same-site"}),
        ({"sample": "s0", "csrf": token}, {"Sec-Fetch-Site": "cross-site", "Origin": "null"}),
    ):
        refused = clinic.post("/page/recommend", data=data, headers=headers, follow_redirects=False)
        assert refused.status_code == 403, (data, headers)
        assert store.get(AuditRecord, refused.headers["x-audit-id"]).outcome == "csrf_refused"
    assert store.count(Recommendation) == 0

    # what Chromium sends with this page's own form under Referrer-Policy: no-referrer
    own = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    made = clinic.post("/page/recommend", data={"sample": "s0", "csrf": token}, headers=own)
    assert made.status_code == 200 and "/page/recommendations/" in str(made.url)
    again = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert clinic.post("/page/recommend", data={"sample": "s0", "csrf": token}, headers=again).status_code == 200
    rec_id = str(made.url).rsplit("/", 1)[1]
    form = {"recommendation_id": rec_id, "outcome": "rejected", "reason": "dose"}
    assert clinic.post("/page/feedback", data=form).status_code == 403
    assert clinic.post("/page/feedback", data={**form, "csrf": token}, headers=EVIL).status_code == 403
    assert store.count(Feedback) == 0
    assert clinic.post("/page/feedback", data={**form, "csrf": csrf_of(clinic, "/")}).status_code == 200
    assert store.count(Feedback) == 1
    assert store.count(Recommendation) == 2


def test_a_planted_nonce_cookie_does_not_help_a_sibling_origin(clinic):
    """A sibling on the same site can set the nonce cookie and get a token for its own session, not the victim's."""
    attacker = clinic
    page_login(attacker, "dr.wang")
    nonce, token = attacker.cookies.get(CSRF_COOKIE), csrf_of(attacker, "/")
    attacker.cookies.clear()
    page_login(clinic, "dr.li")  # the victim's session
    clinic.cookies.set(CSRF_COOKIE, nonce)
    refused = clinic.post("/page/recommend", data={"sample": "s0", "csrf": token})
    assert refused.status_code == 403


def test_login_and_logout_forms_are_protected_too(clinic):
    data = {"username": "dr.li", "password": PASSWORDS["dr.li"]}
    assert clinic.post("/login", data=data, follow_redirects=False).status_code == 403
    token = csrf_of(clinic)
    assert clinic.post("/login", data={**data, "csrf": token}, headers=EVIL, follow_redirects=False).status_code == 403
    assert clinic.post("/login", data={**data, "csrf": token}, follow_redirects=False).status_code == 303
    assert clinic.post("/logout", follow_redirects=False).status_code == 403  # a forced logout from elsewhere
    assert clinic.get("/", follow_redirects=False).status_code == 200
    assert clinic.post("/logout", data={"csrf": csrf_of(clinic, "/")}, follow_redirects=False).status_code == 303


def test_demo_pages_check_the_token_as_well(demo_client):
    visit = demo_client.app.state.ctx.samples[0].visit.model_dump(mode="json")
    assert demo_client.post("/page/recommend", data={"record": json.dumps(visit)}).status_code == 403
    ok = demo_client.post("/page/recommend", data={"record": json.dumps(visit), "csrf": csrf_of(demo_client, "/")})
    assert ok.status_code == 200
