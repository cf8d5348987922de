"""The CDS Hooks 2.0 JSON rules for discovery responses and cards (https://cds-hooks.hl7.org/2.0/)."""

from __future__ import annotations

from typing import Any

INDICATORS = {"info", "warning", "critical"}


def discovery_errors(body: dict[str, Any]) -> list[str]:
    errors = []
    services = body.get("services")
    if not isinstance(services, list) or not services:
        return ["services must be a non-empty array"]
    for s in services:
        for key in ("hook", "id", "description"):
            if not isinstance(s.get(key), str) or not s[key]:
                errors.append(f"service.{key} must be a non-empty string")
        prefetch = s.get("prefetch", {})
        if not isinstance(prefetch, dict) or not all(isinstance(v, str) for v in prefetch.values()):
            errors.append("service.prefetch must map keys to query strings")
    return errors


def card_errors(card: dict[str, Any]) -> list[str]:
    errors = []
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) >= 140:
        errors.append(f"summary must be a string under 140 characters: {summary!r}")
    if card.get("indicator") not in INDICATORS:
        errors.append(f"indicator {card.get('indicator')!r}")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str):
        errors.append("source.label is required")
    elif "topic" in source and not {"code", "system"} <= set(source["topic"]):
        errors.append("source.topic must be a Coding")
    if "detail" in card and not isinstance(card["detail"], str):
        errors.append("detail must be a (Markdown) string")
    if not isinstance(card.get("uuid"), str):
        errors.append("uuid is needed for feedback")
    suggestions = card.get("suggestions")
    if suggestions:
        if card.get("selectionBehavior") not in ("at-most-one", "any"):
            errors.append("selectionBehavior is required with suggestions")
        for s in suggestions:
            if not isinstance(s.get("label"), str):
                errors.append("suggestion.label is required")
            for a in s.get("actions", []):
                if a.get("type") not in ("create", "update", "delete"):
                    errors.append(f"action.type {a.get('type')!r}")
                if a["type"] in ("create", "update") and not isinstance(a.get("resource"), dict):
                    errors.append("create/update actions carry a resource")
                if a["type"] == "delete" and not isinstance(a.get("resourceId"), str):
                    errors.append("delete actions carry a resourceId string")
    for link in card.get("links", []):
        if link.get("type") not in ("absolute", "smart") or not str(link.get("url", "")).startswith("http"):
            errors.append(f"link {link!r}")
    for reason in card.get("overrideReasons", []):
        if not {"code", "system", "display"} <= set(reason):
            errors.append(f"overrideReason {reason!r} must be a Coding")
    return errors
