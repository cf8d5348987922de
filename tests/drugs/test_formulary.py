"""The formulary finds a drug from any name a record, a physician or a model uses."""

from __future__ import annotations

import pytest
import yaml

from diaguide.drugs import formulary
from diaguide.drugs.formulary import all_drugs, drug_class_of, ingredients, lookup
from diaguide.errors import ConfigError
from diaguide.knowledge.regions import resolve_region
from diaguide.records.schema import DRUG_CLASSES


@pytest.mark.parametrize(
    ("text", "name", "drug_class"),
    [
        ("metformin", "metformin", "metformin"),
        ("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "metformin", "metformin"),
        ("二甲双胍缓释片 0.5g bid", "metformin", "metformin"),
        ("格华止", "metformin", "metformin"),
        ("GLUCOPHAGE XR 500 mg", "metformin", "metformin"),
        ("拜糖平 50mg tid", "acarbose", "agi"),
        ("Glucobay", "acarbose", "agi"),
        ("诺和灵30R", "human insulin 70/30", "premixed_insulin"),
        ("Humulin 70/30", "human insulin 70/30", "premixed_insulin"),
        ("insulin isophane 70/30", "human insulin 70/30", "premixed_insulin"),
        ("门冬胰岛素30 注射液", "insulin aspart 30", "premixed_insulin"),
        ("门冬胰岛素", "insulin aspart", "prandial_insulin"),
        ("insulin glargine 100 UNT/ML", "insulin glargine", "basal_insulin"),
        ("Insulin Lispro 100 UNT/ML Injectable Solution [Humalog]", "insulin lispro", "prandial_insulin"),
        ("诺和灵N", "nph insulin", "basal_insulin"),
        ("glibenclamide", "glyburide", "sulfonylurea"),
        ("优降糖", "glyburide", "sulfonylurea"),
        ("聚乙二醇洛塞那肽", "polyethylene glycol loxenatide", "glp1ra"),
        ("贝那鲁肽", "beinaglutide", "glp1ra"),
        ("Rybelsus 7 mg daily", "semaglutide", "glp1ra"),
        ("Mounjaro", "tirzepatide", "gip_glp1ra"),
        ("恒格列净", "henagliflozin", "sglt2i"),
        ("lisinopril 10 MG Oral Tablet", "lisinopril", "acei"),
        ("缬沙坦", "valsartan", "arb"),
        ("立普妥", "atorvastatin", "statin"),
        ("Lopid", "gemfibrozil", "other"),
    ],
)
def test_names_brands_and_chinese_resolve(text: str, name: str, drug_class: str) -> None:
    drug = lookup(text)
    assert drug is not None and drug.name == name
    assert drug_class_of(text) == drug_class


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("860975", "metformin"),
        ("106892", "human insulin 70/30"),
        ("865098", "insulin lispro"),
        ("1373463", "canagliflozin"),
        ("897122", "liraglutide"),
        ("6809", "metformin"),
        ("A10BA02", "metformin"),
        ("a10bk01", "dapagliflozin"),
        ("http://www.nlm.nih.gov/research/umls/rxnorm|860975", "metformin"),
    ],
)
def test_codes_resolve(code: str, name: str) -> None:
    drug = lookup(code)
    assert drug is not None and drug.name == name


def test_synthea_humulin_display_is_premixed_not_its_parts() -> None:
    text = "insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML Injectable Suspension [Humulin]"
    assert drug_class_of(text) == "premixed_insulin"


@pytest.mark.parametrize("text", ["", "xyz tablets", "lymphoma", "insulinoma", None, "12345678901"])
def test_unknown_text_gives_none_and_class_other(text: str | None) -> None:
    assert lookup(text) is None
    assert drug_class_of(text) == "other"


def test_combination_brand_yields_every_ingredient() -> None:
    assert [d.name for d in ingredients("Janumet 50/1000 mg bid")] == ["sitagliptin", "metformin"]
    assert {d.name for d in ingredients("sitagliptin and metformin")} == {"sitagliptin", "metformin"}


def test_every_entry_has_source_class_and_a_known_dose_unit() -> None:
    drugs = all_drugs()
    assert len(drugs) >= 90
    for drug in drugs:
        assert drug.source, drug.name
        assert drug.drug_class in DRUG_CLASSES
        assert drug.dose_unit in {"mg", "mcg", "U", "mL"}
    covered = {d.drug_class for d in drugs}
    assert covered == set(DRUG_CLASSES)


def test_region_specific_maximum_dose() -> None:
    metformin = lookup("metformin")
    assert metformin is not None
    assert metformin.max_daily("ada") == 2550
    assert metformin.max_daily("cds") == 2000
    assert lookup("glipizide").max_daily("ada") == 40  # type: ignore[union-attr]


def test_no_name_points_at_two_drugs() -> None:
    seen: dict[str, str] = {}
    for drug in all_drugs():
        for term in drug.names():
            key = formulary.normalise_text(term)
            assert seen.setdefault(key, drug.name) == drug.name, f"{term!r} names {seen[key]} and {drug.name}"


def test_broken_formulary_is_a_config_error(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "formulary.yaml"
    bad.write_text(yaml.safe_dump({"drugs": [{"name": "x", "class": "nonsense", "source": "s"}]}))
    monkeypatch.setattr(formulary, "FORMULARY_PATH", bad)
    formulary._index.cache_clear()
    try:
        with pytest.raises(ConfigError, match="unknown class"):
            formulary._index()
    finally:
        monkeypatch.undo()
        formulary._index.cache_clear()
        formulary._ingredients.cache_clear()


def test_region_resolution(monkeypatch) -> None:
    monkeypatch.delenv("DIAGUIDE_REGION", raising=False)
    assert resolve_region() == "ada"
    monkeypatch.setenv("DIAGUIDE_REGION", "CDS")
    assert resolve_region() == "cds"
    assert resolve_region("ada") == "ada"
    monkeypatch.setenv("DIAGUIDE_REGION", "eu")
    with pytest.raises(ConfigError, match="DIAGUIDE_REGION"):
        resolve_region()
