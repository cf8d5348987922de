"""Code systems: recognise them by URL or nickname, and map SNOMED CT conditions to ICD-10-CM.

The engines reason in ICD-10 prefixes (`E11`, `N18.4`, `I50`); FHIR sources write ICD-10-CM,
SNOMED CT (Synthea, most US Core servers) or text. The SNOMED map and text fallbacks live in
`terminology.yaml`, each entry with its source.
"""

from __future__ import annotations

import functools
import re

from diaguide import clinical_data

SNOMED = "snomed"
ICD10 = "icd10"
LOINC = "loinc"
RXNORM = "rxnorm"
UCUM = "ucum"

# System URLs (and the short names hand-written records use) -> one nickname.
_SYSTEMS: dict[str, str] = {
    "http://snomed.info/sct": SNOMED,
    "snomed": SNOMED,
    "snomed-ct": SNOMED,
    "sct": SNOMED,
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10,
    "http://hl7.org/fhir/sid/icd-10": ICD10,
    "http://www.cms.gov/medicare/coding/icd10": ICD10,
    "urn:oid:2.16.840.1.113883.6.90": ICD10,
    "urn:oid:2.16.840.1.113883.6.3": ICD10,
    "icd10": ICD10,
    "icd-10": ICD10,
    "icd10cm": ICD10,
    "icd-10-cm": ICD10,
    "http://loinc.org": LOINC,
    "loinc": LOINC,
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "rxnorm": RXNORM,
    "http://unitsofmeasure.org": UCUM,
}


def system_name(url: str | None) -> str | None:
    """The nickname (`snomed`, `icd10`, `loinc`, `rxnorm`, `ucum`) of a code-system URL, or None."""
    if not url:
        return None
    key = url.strip().lower().rstrip("/")
    if key in _SYSTEMS:
        return _SYSTEMS[key]
    if "snomed" in key:
        return SNOMED
    if "icd-10" in key or "icd10" in key:
        return ICD10
    return None


@functools.cache
def _tables() -> tuple[dict[str, tuple[str, str]], list[tuple[re.Pattern[str], str]]]:
    data = clinical_data.load("records/terminology.yaml")
    snomed = {str(e["snomed"]): (e["icd10"], e.get("display", "")) for e in data["snomed"]}
    text = [(re.compile(e["pattern"], re.IGNORECASE), e["icd10"]) for e in data["text"]]
    return snomed, text


def snomed_to_icd10(code: str) -> str | None:
    """The ICD-10-CM code for a diabetes-relevant SNOMED CT concept, or None when not mapped."""
    hit = _tables()[0].get(code.strip())
    return hit[0] if hit else None


def snomed_display(code: str) -> str | None:
    """The English display the map gives a SNOMED concept (None when not mapped)."""
    hit = _tables()[0].get(code.strip())
    return hit[1] if hit else None


def icd10_from_text(text: str) -> str | None:
    """An ICD-10-CM code recognised in free condition text ("Type 2 diabetes", "MEN2A"), or None."""
    if not text:
        return None
    for pattern, icd10 in _tables()[1]:
        if pattern.search(text):
            return icd10
    return None


def normalise_icd10(code: str) -> str:
    """`e119` / `E11.9 ` -> `E11.9` (ICD-10 puts the dot after the third character)."""
    c = code.strip().upper().replace(" ", "")
    if "." not in c and len(c) > 3:
        c = f"{c[:3]}.{c[3:]}"
    return c


def is_pregnancy_icd10(code: str) -> bool:
    """True for ICD-10 codes that mean the patient is pregnant now.

    Z33.1 (pregnant state), Z34 (supervision of normal pregnancy), O00-O48 (pregnancy and its
    complications; O24.4 gestational diabetes included). Puerperal codes (O85 on) and O24.43
    (gestational diabetes in the puerperium) describe after birth and are left out.
    """
    c = code.upper()
    if c.startswith(("Z33.1", "Z34")):
        return True
    if c.startswith("O24.43"):
        return False
    return bool(re.match(r"O[0-4]\d", c))
