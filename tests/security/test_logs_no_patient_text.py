"""Issue 18, item 13: a request that fails with a 500 logs no patient text — not through the service's
logger, not through uvicorn's, not through SQLAlchemy's — and answers a generic JSON 500.

The failure is real: the store's tables are dropped under a running uvicorn server, so the insert of
the recommendation (the visit, with its patient id and birth date) and of the feedback (a comment)
fails inside SQLAlchemy, whose error text would otherwise carry the row's values.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from tests.service.fhir_data import hook_request

from diaguide.service import logging as service_logging
from diaguide.service.app import UVICORN_OPTIONS, create_app
from diaguide.service.logging import JsonFormatter
from diaguide.service.settings import Settings
from diaguide.service.store import AuditRecord

PATIENT_ID = "PAT-7f3e-SECRET"
BIRTH_DATE = "1951-07-19"
NOTE = "SECRETNOTE lives alone with her daughter"
COMMENT = "SECRETCOMMENT patient refuses insulin"


class Served:
    """The app under a real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        options = {k: v for k, v in UVICORN_OPTIONS.items() if k != "proxy_headers"}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def broken_store_app(tmp_path, db_url):
    app = create_app(Settings(demo=True, database_url=db_url, secret_key="test-secret"))
    store = app.state.ctx.store
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE recommendations"))
        conn.execute(text("DROP TABLE feedback"))
    yield app
    store.close()


def test_engines_hide_sql_parameters(broken_store_app):
    assert broken_store_app.state.ctx.store.engine.hide_parameters is True


def test_a_forced_500_logs_no_patient_text(broken_store_app, capfd):
    body = hook_request()
    body["context"]["patientId"] = PATIENT_ID
    body["prefetch"]["patient"]["id"] = PATIENT_ID
    body["prefetch"]["patient"]["birthDate"] = BIRTH_DATE
    body["prefetch"]["conditions"]["entry"][0]["resource"]["note"] = [{"text": NOTE}]
    feedback = {"feedback": [{"card": "c1", "outcome": "overridden", "overrideReason": {"userComment": COMMENT}}]}
    with Served(broken_store_app) as base, httpx.Client(base_url=base, timeout=30) as http:
        failed = http.post("/cds-services/diaguide-patient-view", json=body)
        failed_feedback = http.post("/cds-services/diaguide-patient-view/feedback", json=feedback)
        visit = {"visit_id": "v1", "patient_id": PATIENT_ID, "date": "2026-10-12", "chief_complaint": NOTE}
        rest = http.post("/api/v1/recommendations", json=visit)
    logged = capfd.readouterr().err

    for response in (failed, failed_feedback, rest):
        assert response.status_code == 500
        answer = response.json()
        assert answer["detail"] == "internal server error" and len(answer["request_id"]) == 32
        assert set(answer) == {"detail", "request_id"}
    lines = [json.loads(line) for line in logged.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    assert all(isinstance(line, dict) and "level" in line for line in lines), logged  # JSON lines only
    for secret in (PATIENT_ID, BIRTH_DATE, "1951", "SECRETNOTE", "SECRETCOMMENT", "Traceback", "INSERT", "[parameters"):
        assert secret not in logged, secret
    errors = [line for line in lines if line.get("event") == "error"]
    assert {e["request_id"] for e in errors} == {r.json()["request_id"] for r in (failed, failed_feedback, rest)}
    assert all(e["error"] in ("OperationalError", "ProgrammingError") for e in errors), errors
    assert failed.headers["x-request-id"] == failed.json()["request_id"]  # the catch-all answered, not uvicorn
    audit = broken_store_app.state.ctx.store.get(AuditRecord, failed.headers["x-audit-id"])
    assert (audit.status_code, audit.outcome) == (500, "server_error")


def test_uvicorn_and_sqlalchemy_lines_are_json_without_arguments_or_tracebacks(capfd):
    service_logging.configure()
    try:
        raise ValueError(f"input_value={PATIENT_ID!r}")
    except ValueError as exc:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=exc)
        logging.getLogger("sqlalchemy.engine").error("[%s] %r", "x", PATIENT_ID, exc_info=exc)
    logged = capfd.readouterr().err
    lines = [json.loads(line) for line in logged.splitlines()]
    assert [(x["logger"], x["msg"], x["error"]) for x in lines] == [
        ("uvicorn.error", "Exception in ASGI application", "ValueError"),
        ("sqlalchemy.engine", "[%s] %r", "ValueError"),
    ]
    assert PATIENT_ID not in logged and "Traceback" not in logged


def test_a_dying_thread_logs_its_exception_type_only(capfd):
    service_logging.configure()

    def work():
        raise ValueError(f"visit of {PATIENT_ID} born {BIRTH_DATE}")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    logged = capfd.readouterr().err
    lines = [json.loads(line) for line in logged.splitlines()]
    assert [(x["msg"], x["error"]) for x in lines] == [("uncaught exception in a thread", "ValueError")]
    assert PATIENT_ID not in logged and BIRTH_DATE not in logged and "Traceback" not in logged


def test_the_formatter_writes_a_line_whatever_the_text():
    formatter = JsonFormatter()
    own = logging.LogRecord("diaguide.service", logging.INFO, __file__, 1, "lone \ud800 %s", ("ok",), None)
    written = formatter.format(own).encode("utf-8")  # a lone surrogate must not stop the line being written
    assert b"lone \\ud800 ok" in written
