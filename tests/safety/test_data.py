"""The safety YAML is parsed and validated once per process, not on every check."""

from __future__ import annotations

from diaguide.safety import data


def test_rules_are_validated_once_and_shared():
    first = data.rules_data()
    assert data.rules_data() is first
    assert data.rules_data.cache_info().hits >= 1
    assert all(rule["source"] for rule in first["rules"])
