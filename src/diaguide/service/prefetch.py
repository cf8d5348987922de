"""The FHIR data a hook needs: prefetch templates, and the FHIR reads when prefetch is missing.

CDS Hooks 2.0 §Prefetch: a prefetch value may be absent, `null` (the EHR could not fetch it),
an OperationOutcome (the fetch failed) or a Bundle (possibly empty: no results, which is data).
For anything unusable the service reads `fhirServer` itself with `fhirAuthorization`'s bearer
token; with neither, it cannot decide and answers 412.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import quote, unquote

import httpx

# LOINC codes of the labs and vitals the engines read (units.py holds the full alias lists)
OBSERVATION_LOINCS = (
    "4548-4", "17856-6",  # HbA1c
    "2345-7", "1558-6", "2339-0",  # glucose, fasting glucose
    "33914-3", "62238-1", "98979-8", "2160-0",  # eGFR, creatinine
    "9318-7", "14959-1",  # urine albumin/creatinine
    "13457-7", "18262-6", "2085-9", "2093-3", "2571-8",  # lipids
    "39156-5", "29463-7", "8302-2",  # BMI, weight, height
    "85354-9", "8480-6", "8462-4",  # blood pressure panel, systolic, diastolic
    "1742-6", "2823-3", "2132-9",  # ALT, potassium, vitamin B12
)  # fmt: skip

PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&code="
    + ",".join(f"http://loinc.org|{code}" for code in OBSERVATION_LOINCS),
    "medications": "MedicationRequest?patient={{context.patientId}}",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
}
# kinds of resource a prefetch key may hold (anything else in a Bundle is ignored)
RESOURCE_TYPES = {
    "patient": {"Patient"},
    "conditions": {"Condition"},
    "observations": {"Observation"},
    "medications": {"MedicationRequest", "MedicationStatement", "Medication"},
    "allergies": {"AllergyIntolerance"},
}
MAX_PAGES = 10  # a searchset is paged; 10 pages bounds one hook's reads


# one answer for every failed read: what answered (a closed port, a refusal, a web page) is never told
# to the caller, so fhirServer cannot be used to map a network (docs/security.md, "FHIR servers")
READ_FAILED = "prefetch is incomplete and the FHIR server could not be read"
log = logging.getLogger("diaguide.service")


class DataUnavailable(Exception):
    """Required data is neither prefetched nor readable: 412."""


def under(url: str, base: str) -> bool:
    """Whether `url` lies at or below the FHIR base URL `base`: same scheme, host and port, the path
    inside the base's path, and nothing that could make a client read elsewhere (user info, `..`,
    query, fragment)."""
    try:
        u, b = httpx.URL(url), httpx.URL(base)
    except (httpx.InvalidURL, TypeError):
        return False
    if u.scheme not in ("http", "https") or u.userinfo or u.query or u.fragment or not u.host:
        return False
    if any(unquote(part) in (".", "..") for part in u.raw_path.decode("ascii", "replace").split("/")):
        return False
    if (u.scheme, u.host, u.port) != (b.scheme, b.host, b.port):
        return False
    return (u.path.rstrip("/") + "/").startswith(b.path.rstrip("/") + "/")


def fhir_server_allowed(url: str, listed: list[str], issuer_bases: list[str]) -> bool:
    """Whether the service may read `url` and send it the EHR's bearer token: only a base listed in
    the settings or in the calling issuer's registration. Deny by default, in every auth mode."""
    return any(under(url, base) for base in [*listed, *issuer_bases])


def usable(key: str, value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    kind = value.get("resourceType")
    if key == "patient":
        return kind == "Patient"
    return kind == "Bundle"


def render(template: str, context: dict[str, Any]) -> str:
    out = template
    for name, value in context.items():
        if isinstance(value, str):
            # quoted: an id must never add path segments or query parameters of its own
            out = out.replace("{{context." + name + "}}", quote(value, safe=""))
    return out


async def gather(
    prefetch: dict[str, Any] | None,
    context: dict[str, Any],
    fhir_server: str | None,
    access_token: str | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """A FHIR collection Bundle of everything the hook needs (DataUnavailable when it cannot)."""
    prefetch = prefetch or {}
    found: dict[str, Any] = {key: prefetch.get(key) for key in PREFETCH if usable(key, prefetch.get(key))}
    missing = [key for key in PREFETCH if key not in found]
    if missing:
        if not fhir_server:
            raise DataUnavailable(f"prefetch missing for {', '.join(missing)} and no fhirServer")
        headers = {"Accept": "application/fhir+json"}
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        async with httpx.AsyncClient(
            base_url=fhir_server.rstrip("/") + "/", headers=headers, transport=transport, timeout=timeout
        ) as client:
            for key in missing:
                found[key] = await _read(client, render(PREFETCH[key], context), key)
    return _collection(found)


async def _read(client: httpx.AsyncClient, query: str, key: str) -> dict[str, Any]:
    try:
        return await _search(client, query, key)
    except (httpx.HTTPError, ValueError, AttributeError, TypeError, _Unusable) as exc:
        # the reason goes to the log (a type or a status, no URL, no data), never to the caller
        log.warning("FHIR read failed", extra={"event": "fhir_read_failed", "reason": f"{key}: {exc_reason(exc)}"})
        raise DataUnavailable(READ_FAILED) from None


class _Unusable(Exception):
    """The FHIR server answered, but not with what was asked for."""


def exc_reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, _Unusable) else type(exc).__name__


async def _search(client: httpx.AsyncClient, query: str, key: str) -> dict[str, Any]:
    response = await client.get(query)
    if response.status_code != 200:
        raise _Unusable(f"status {response.status_code}")
    data = response.json()
    if key == "patient" or data.get("resourceType") != "Bundle":
        if not usable(key, data):
            raise _Unusable(f"resourceType {str(data.get('resourceType'))[:40]!r}")
        return data
    entries = list(data.get("entry") or [])
    base = str(client.base_url)
    for _ in range(MAX_PAGES - 1):
        nxt = next((link.get("url") for link in data.get("link") or [] if link.get("relation") == "next"), None)
        if not nxt:
            break
        if not isinstance(nxt, str) or not under(nxt, base):
            raise _Unusable("a next link outside the FHIR base")  # the token goes to the base only
        data = (await client.get(nxt)).raise_for_status().json()
        entries += data.get("entry") or []
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def _collection(found: dict[str, Any]) -> dict[str, Any]:
    entries = []
    for key, value in found.items():
        resources = (
            [value]
            if value.get("resourceType") != "Bundle"
            else [e.get("resource") for e in value.get("entry") or [] if isinstance(e, dict)]
        )
        for resource in resources:
            if isinstance(resource, dict) and resource.get("resourceType") in RESOURCE_TYPES[key]:
                rid = resource.get("id")
                full = f"{resource['resourceType']}/{rid}" if rid else f"urn:uuid:{uuid.uuid4()}"
                entries.append({"fullUrl": full, "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
