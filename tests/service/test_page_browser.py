"""The physician page in a real browser: Playwright driving Debian's Chromium."""

import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from diaguide.service.app import create_app
from diaguide.service.settings import Settings
from diaguide.service.store import Feedback

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_app(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(demo=True, database_url=f"sqlite:///{tmp_path / 'page.db'}"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.browser
@pytest.mark.slow
def test_physician_reviews_a_plan_and_rejects_it_with_a_reason(live_app):
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make browser` (Debian's chromium package)")
    app, base = live_app
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.set_default_timeout(15_000)
        page.goto(base + "/?lang=en")
        expect(page.get_by_test_id("demo-banner")).to_contain_text("DEMO MODE")

        # a physician's plan for a 79-year-old with eGFR 24: continue glyburide and metformin
        page.get_by_test_id("sample").select_option(label="demo-p2 · 79F, HbA1c 6.4% · en · physician plan")
        page.get_by_test_id("recommend").click()
        page.wait_for_url("**/page/recommendations/**")
        for part in ("treatment", "labs", "medications", "evidence"):
            expect(page.get_by_test_id(part)).to_be_visible()
        expect(page.get_by_test_id("treatment")).to_contain_text("HbA1c")
        expect(page.get_by_test_id("complexity")).to_contain_text("high")
        expect(page.get_by_test_id("evidence")).to_contain_text("→")  # eGFR falling over the history
        rows = page.get_by_test_id("med-row")
        glyburide = rows.filter(has_text="glyburide")
        expect(glyburide).to_have_count(1)
        expect(page.get_by_test_id("plan-source")).to_contain_text("as submitted")
        # each finding sits in the row of the medication it concerns
        expect(glyburide.locator(".finding.warning")).not_to_have_count(0)
        metformin = rows.filter(has_text="metformin")
        expect(metformin.locator(".finding.critical")).to_contain_text("eGFR 24")
        expect(glyburide.locator(".finding.critical")).to_have_count(0)

        page.get_by_label("Reject").check()
        page.get_by_test_id("reason").fill("patient prefers to discuss with nephrologist")
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("saved")).to_be_visible()

        page.goto(page.url.split("?")[0] + "?lang=zh")
        expect(page.get_by_test_id("medications")).to_contain_text("用药")
        ARTIFACTS.mkdir(exist_ok=True)
        page.goto(page.url.split("?")[0] + "?lang=en")
        page.screenshot(path=str(ARTIFACTS / "physician-page.png"), full_page=True)
        browser.close()

    store = app.state.ctx.store
    with store.session() as s:
        rows = s.query(Feedback).all()
        assert [(r.outcome, r.override_reason, r.channel) for r in rows] == [
            ("rejected", "patient prefers to discuss with nephrologist", "page")
        ]
    assert (ARTIFACTS / "physician-page.png").stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_shows_the_words_from_the_notes_a_decision_and_a_finding_rest_on(live_app):
    """Dialysis written only in the past history: the physician sees metformin stopped with the quote, and on the
    carried-forward plan the critical finding, quoting the same words, in metformin's row."""
    import re

    import httpx
    from playwright.sync_api import expect, sync_playwright

    _, base = live_app
    visit = {
        "visit_id": "v-page-notes", "patient_id": "p-page-notes", "date": "2026-11-02", "language": "zh",
        "patient": {"age": 66, "sex": "male"}, "past_history": "尿毒症，规律血液透析3年，每周3次。",
        "diagnoses": [{"system": "icd10", "code": "E11.9"}], "labs": [{"loinc": "4548-4", "value": 7.4}],
        "medications": [{"drug": "二甲双胍", "drug_class": "metformin", "dose": "500 mg", "frequency": "bid"}],
    }  # fmt: skip
    carried = {"medications": [{"drug": "二甲双胍", "drug_class": "metformin", "action": "continue", "dose": "500 mg"}]}
    guideline = httpx.post(f"{base}/api/v1/recommendations", json=visit, timeout=30).json()["id"]
    checked = httpx.post(f"{base}/api/v1/recommendations", json={"visit": visit, "plan": carried}, timeout=30).json()[
        "id"
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{base}/page/recommendations/{guideline}?lang=zh")
        row = page.get_by_test_id("med-row").filter(has_text="二甲双胍")
        expect(row).to_have_class(re.compile("action-stop"))
        expect(row).to_contain_text("来自既往史：‘规律血液透析3年’")
        page.goto(f"{base}/page/recommendations/{checked}?lang=zh")
        row = page.get_by_test_id("med-row").filter(has_text="二甲双胍")
        expect(row.locator(".finding.critical")).to_contain_text("规律血液透析3年")
        browser.close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_arni_row_from_ingest_to_the_page(live_app, tmp_path):
    """Issue 20's row with the shipped English mapping: the page shows 'Entresto', never 'Entresto 49/', and says
    why no ACE inhibitor is started beside it."""
    import httpx
    from playwright.sync_api import expect, sync_playwright

    from diaguide.records.ingest import ingest_command

    _, base = live_app
    header = (
        "encounter_id,mrn,patient_name,visit_date,birth_date,sex,height_in,weight_lb,pregnant,chief_complaint,hpi,"
        "past_history,allergies,icd10_codes,sbp,dbp,pulse,hba1c,fasting_glucose,creatinine,egfr,uacr,ldl,medications"
    )
    row = ('E1,M1,Pat Doe,2025-06-10,1961-01-01,M,69,190,no,Follow-up,,,,"E11.22 T2DM with CKD; N18.31 CKD 3a; '
           'I50.22 HFrEF",128,76,70,7.8,,,52,120,,"metformin 1000 mg twice daily; Entresto 49/51 mg twice daily"')  # fmt: skip
    (tmp_path / "his.csv").write_text(header + "\n" + row + "\n", encoding="utf-8")
    out = tmp_path / "visits.jsonl"
    assert ingest_command([str(tmp_path / "his.csv")], "csv", "en_his", False, None, str(out), progress=False) == 0
    rec = httpx.post(f"{base}/api/v1/recommendations", content=out.read_text().splitlines()[0],
                     headers={"content-type": "application/json"}, timeout=30).json()  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{base}/page/recommendations/{rec['id']}?lang=en")
        rows = page.get_by_test_id("med-row")
        arni = rows.filter(has_text="Entresto")
        expect(arni).to_have_count(1)
        expect(arni.locator("td").nth(1)).to_have_text("Entresto")  # the drug cell: the name, no piece of the dose
        expect(arni.locator("td").nth(2)).to_have_text("49/51 mg")
        expect(rows.filter(has_text="lisinopril")).to_have_count(0)
        expect(page.get_by_test_id("treatment")).to_contain_text("not started: the safety check calls it critical")
        browser.close()


@pytest.fixture
def other_origin(tmp_path):
    """A site on another origin (localhost vs 127.0.0.1) serving the files written to the folder it yields."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    folder = tmp_path / "other-origin"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://localhost:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_cannot_be_framed_and_refuses_a_form_from_another_origin(live_app, other_origin):
    """Issue 18, items 6-7: clickjacking and cross-site posts, as Chromium enforces them."""
    from playwright.sync_api import expect, sync_playwright

    from diaguide.service.store import Recommendation

    app, base = live_app
    folder, evil = other_origin
    (folder / "frame.html").write_text(f'<iframe id="victim" src="{base}/?lang=en"></iframe>', encoding="utf-8")
    (folder / "post.html").write_text(
        f'<form id="x" method="post" action="{base}/page/recommend">'
        '<input name="sample" value="s0"><input name="csrf" value="guessed"></form>',
        encoding="utf-8",
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{base}/?lang=en")
        expect(page.get_by_test_id("demo-banner")).to_be_visible()  # the page itself renders
        page.goto(f"{evil}/frame.html", wait_until="load")  # "load" waits for the frame too
        expect(page.frame_locator("#victim").get_by_test_id("demo-banner")).to_have_count(0)
        page.goto(f"{evil}/post.html")
        with page.expect_navigation() as posted:
            page.evaluate("document.getElementById('x').submit()")
        assert posted.value.status == 403
        browser.close()
    assert app.state.ctx.store.count(Recommendation) == 0
