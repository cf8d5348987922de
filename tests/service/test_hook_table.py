"""A CDS hook is one entry of cds_hooks.SERVICES: discovery lists it, calls reach its handler with the record read,
its context check answers 400, and its cards are stored under its own hook name."""

from tests.service.cds_rules import discovery_errors
from tests.service.fhir_data import hook_request

from diaguide.errors import InputError
from diaguide.service import cds_hooks
from diaguide.service.store import Card


def _book(context):
    return None if isinstance(context.get("appointments"), dict) else "context.appointments must be a FHIR Bundle"


async def _appointment_cards(hc):
    if hc.call.context["appointments"].get("total") == -1:
        raise InputError("must not be negative", field="context.appointments.total")
    return await cds_hooks._plan_cards(hc, show=True)


def test_a_new_hook_is_one_table_entry(demo_client, monkeypatch):
    service = cds_hooks.HookService("appointment-book", "Test", "A hook added by one entry.", _appointment_cards, _book)
    monkeypatch.setitem(cds_hooks.SERVICES, "diaguide-appointment-book", service)
    listed = demo_client.get("/cds-services").json()
    assert not discovery_errors(listed)
    assert {"id": "diaguide-appointment-book", "hook": "appointment-book"}.items() <= next(
        s for s in listed["services"] if s["id"] == "diaguide-appointment-book"
    ).items()

    url = "/cds-services/diaguide-appointment-book"
    missing = demo_client.post(url, json=hook_request("appointment-book"))
    assert missing.status_code == 400 and "context.appointments" in missing.json()["error"]
    bad = hook_request("appointment-book")
    bad["context"]["appointments"] = {"resourceType": "Bundle", "total": -1}
    answer = demo_client.post(url, json=bad)
    assert answer.status_code == 400 and "context.appointments.total" in answer.json()["error"]

    good = hook_request("appointment-book")
    good["context"]["appointments"] = {"resourceType": "Bundle"}
    cards = demo_client.post(url, json=good).json()["cards"]
    assert cards and cards[0]["summary"]
    stored = demo_client.app.state.ctx.store.get(Card, cards[0]["uuid"])
    assert stored.service == "appointment-book"  # not a hard-coded "patient-view"
