"""The service never dies with its model engine: when the probe child crashes, /readyz says so and the guideline and
safety cards still flow."""

from __future__ import annotations

import sys
import time

from tests.service.fhir_data import hook_request

from diaguide.inference import narrator
from diaguide.inference.probe import probe_engine

PV = "/cds-services/diaguide-patient-view"
MODEL_NARRATOR = "diaguide.inference.narrator:model_narrator"


def _wait_for_probe(client, seconds: float = 60.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get("/readyz").json()
        if body["checks"]["model"]["ok"] is not None:
            return body
        time.sleep(0.1)
    raise AssertionError("the probe did not finish")


def test_a_crashing_engine_leaves_the_cards_and_says_why(make_client, monkeypatch) -> None:
    crash = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]
    monkeypatch.setattr(narrator, "GATE", narrator.EngineGate(lambda: probe_engine(command=crash)))
    client = make_client(demo=True, narrator=MODEL_NARRATOR)
    ready = client.get("/readyz")
    body = _wait_for_probe(client)
    assert ready.status_code == 200
    assert body["status"] == "degraded" and body["checks"]["store"] is True
    assert "SIGSEGV" in body["checks"]["model"]["reason"]

    response = client.post(PV, json=hook_request())
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert cards and "stop metformin" in cards[0]["summary"]  # the guideline + safety card, as without a model
    # the narrative the page links to says the model is down, and why, instead of loading the crashing engine
    client.app.state.ctx.narratives.wait_idle()
    rows = client.app.state.ctx.narratives.store
    from diaguide.service.store import Narrative

    with rows.session() as s:
        texts = [n.text for n in s.query(Narrative).all()]
    assert texts and all("could not start" in t and "SIGSEGV" in t for t in texts)


def test_a_healthy_engine_makes_the_service_ready(make_client, monkeypatch) -> None:
    ok = [sys.executable, "-c", 'print(\'{"ok": true, "reason": "llama.cpp serves a stand-in"}\')']
    monkeypatch.setattr(narrator, "GATE", narrator.EngineGate(lambda: probe_engine(command=ok)))
    client = make_client(demo=True, narrator=MODEL_NARRATOR)
    body = _wait_for_probe(client)
    assert body["status"] == "ready" and body["checks"]["model"] == {
        "ok": True,
        "reason": "llama.cpp serves a stand-in",
    }
