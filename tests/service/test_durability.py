"""Load, then SIGKILL the server mid-flight: every audit id a client received is in the store.

The audit record is committed before the response starts (middleware.py), so an answer the
EHR saw always has its record, whatever happens to the process next. Bounded: one server on
loopback, at most 80 requests, 60 s.
"""

import concurrent.futures as cf
import signal
import threading
import uuid

import httpx
import pytest

from diaguide.bench.serve import free_port, prefetch, start_server, stop_server
from diaguide.service.store import AuditRecord, Store

KILL_AFTER = 15
TOTAL = 80


@pytest.mark.slow
def test_no_committed_audit_record_is_lost_on_sigkill(db_url, tmp_path):
    port = free_port()
    server = start_server({"DIAGUIDE_DATABASE_URL": db_url, "DIAGUIDE_DEMO": "1"}, port, tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}/cds-services/diaguide-patient-view"
    received: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def call(i: int) -> None:
        body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "context": {"patientId": f"bench-{i}"}}
        body["prefetch"] = prefetch(i) if i % 5 else None  # every fifth call is a 412: failures count too
        try:
            response = httpx.post(url, json=body, timeout=10)
        except httpx.HTTPError:
            return  # the server is gone: this call got no answer, so no promise was made
        with lock:
            received.append(response.headers["x-audit-id"])
            if len(received) >= KILL_AFTER and not killed.is_set():
                killed.set()
                server.send_signal(signal.SIGKILL)

    try:
        with cf.ThreadPoolExecutor(6) as pool:
            list(pool.map(call, range(TOTAL), timeout=60))
    finally:
        stop_server(server, signal.SIGKILL)
    assert killed.is_set() and KILL_AFTER <= len(received) < TOTAL

    store = Store(db_url, migrate=False)
    try:
        missing = [audit_id for audit_id in received if store.get(AuditRecord, audit_id) is None]
        assert missing == []
        assert store.count(AuditRecord) >= len(received)
    finally:
        store.close()
