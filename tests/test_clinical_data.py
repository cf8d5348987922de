"""The clinical data registry: every decision-making YAML is in it, and the version stamped on cards covers it."""

from __future__ import annotations

import pytest

from diaguide import clinical_data
from diaguide.errors import ConfigError
from diaguide.service import clinical as service_clinical


def test_every_package_yaml_is_registered_or_declared_not_clinical() -> None:
    found = {p.relative_to(clinical_data.PACKAGE).as_posix() for p in clinical_data.PACKAGE.rglob("*.yaml")}
    unplaced = {
        name for name in found if name not in clinical_data.FILES and not name.startswith(clinical_data.NOT_CLINICAL)
    }
    assert not unplaced, f"add these to clinical_data.FILES (or NOT_CLINICAL, with the reason): {sorted(unplaced)}"
    assert set(clinical_data.FILES) <= found


@pytest.mark.parametrize(
    "name", ["safety/rules.yaml", "safety/complexity.yaml", "prompts/vocab.yaml", "drugs/classes.yaml"]
)
def test_an_edit_to_any_clinical_file_changes_the_rule_version(name, tmp_path, monkeypatch) -> None:
    before = clinical_data.version()
    for registered in clinical_data.FILES:
        copy = tmp_path / registered
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(clinical_data.path(registered).read_bytes())
    monkeypatch.setattr(clinical_data, "PACKAGE", tmp_path)
    clinical_data.version.cache_clear()
    try:
        assert clinical_data.version() == before  # same bytes, same version
        clinical_data.version.cache_clear()
        (tmp_path / name).write_text((tmp_path / name).read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        assert clinical_data.version() != before
    finally:
        clinical_data.version.cache_clear()
    monkeypatch.undo()
    assert service_clinical.rule_version() == before


def test_unregistered_and_broken_files_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not a registered clinical data file"):
        clinical_data.load("knowledge/nonsense.yaml")
    broken = tmp_path / "rules.yaml"
    broken.write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read") as err:
        clinical_data.read(broken)
    assert str(broken) in str(err.value)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        clinical_data.read(listing)
