"""Drug classes as data: drugs/classes.yaml is the one list, and every vocabulary, set and name derives from it."""

from __future__ import annotations

import ast
import copy

import pytest

from diaguide import clinical_data
from diaguide.cohort import patients
from diaguide.drugs import classes
from diaguide.drugs.formulary import all_drugs
from diaguide.errors import ConfigError
from diaguide.evaluation import report
from diaguide.knowledge import plan_builder
from diaguide.prompts.parse import normalise_class
from diaguide.records import schema
from diaguide.safety.regimen import class_from_words

RAW = clinical_data.read(classes.CLASSES_PATH)


def _with(class_id: str, **entry: object) -> dict:
    data = copy.deepcopy(RAW)
    data["classes"][class_id] = entry
    return data


def test_the_schema_vocabulary_is_the_file_in_its_order() -> None:
    assert tuple(RAW["classes"]) == schema.DRUG_CLASSES
    assert schema.DRUG_CLASSES[0] == "metformin" and schema.DRUG_CLASSES[-1] == "other"
    medication = schema.json_schemas()["Visit"]["$defs"]["Medication"]["properties"]["drug_class"]
    assert medication["enum"] == list(schema.DRUG_CLASSES)  # `diaguide schema` lists them
    with pytest.raises(ValueError, match="drug_class"):
        schema.Medication(drug="x", drug_class="example_class")


def test_glucose_lowering_and_insulin_come_from_the_data() -> None:
    assert frozenset(schema.DRUG_CLASSES) - {"acei", "arb", "statin", "other"} == schema.GLUCOSE_LOWERING_CLASSES
    assert classes.INSULIN_CLASSES == ("basal_insulin", "prandial_insulin", "premixed_insulin")
    non_insulin = [c for c in classes.CLASS_IDS if c in schema.GLUCOSE_LOWERING_CLASSES - set(classes.INSULIN_CLASSES)]
    assert list(classes.NON_INSULIN_CLASSES) == non_insulin and non_insulin[:2] == ["metformin", "sglt2i"]
    assert [classes.get(c).insulin for c in classes.INSULIN_CLASSES] == ["basal", "prandial", "premixed"]


def test_a_new_class_must_say_whether_it_lowers_glucose() -> None:
    entry = {"name": {"en": "loop diuretic", "zh": "袢利尿剂"}, "source": "test"}
    with pytest.raises(ConfigError, match="glucose_lowering: true or false") as err:
        classes.read_classes(_with("loop_diuretic", **entry))
    assert err.value.field == "classes.loop_diuretic.glucose_lowering"
    assert "drugs/classes.yaml" in str(err.value)
    found, _ = classes.read_classes(_with("loop_diuretic", **entry, glucose_lowering=False))
    assert not found["loop_diuretic"].glucose_lowering and found["loop_diuretic"].insulin is None


def test_a_new_glucose_lowering_class_needs_its_cohort_effects_and_a_place_for_its_words() -> None:
    entry = {"name": {"en": "amylin analogue", "zh": "胰淀素类似物"}, "glucose_lowering": True, "source": "test"}
    with pytest.raises(ConfigError, match="hba1c_lowering"):
        classes.read_classes(_with("example_class", **entry))
    entry["cohort"] = {"hba1c_lowering": 0.5, "weight_kg": -1.5}
    found, order = classes.read_classes(_with("example_class", **entry))
    assert found["example_class"].hba1c_lowering == 0.5 and "example_class" not in order
    with pytest.raises(ConfigError, match="class_word_order"):
        classes.read_classes(_with("example_class", **entry, class_words=["pramlintide", "胰淀素"]))


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"name": {"en": "x"}, "glucose_lowering": False, "source": "s"}, "classes.x.name"),
        ({"name": {"en": "x", "zh": "x"}, "glucose_lowering": False}, "classes.x"),
        ({"name": {"en": "x", "zh": "x"}, "glucose_lowering": False, "insulin": "basal", "source": "s"}, "classes.x.glucose_lowering"),
        ({"name": {"en": "x", "zh": "x"}, "glucose_lowering": True, "insulin": "nph", "source": "s"}, "classes.x.insulin"),
        ({"name": {"en": "x", "zh": "x"}, "glucose_lowering": False, "class_words": ["(x"], "source": "s"}, "classes.x.class_words[0]"),
        ({"name": {"en": "x", "zh": "x"}, "glucose_lowering": False, "cohort": {"hba1c_lowering": 1}, "source": "s"}, "classes.x.cohort"),
        ({"name": {"en": "x", "zh": "x"}, "glucose_lowering": False, "spellings": "x", "source": "s"}, "classes.x.spellings"),
    ],
)  # fmt: skip
def test_a_broken_class_is_a_config_error_naming_the_field(entry: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        classes.read_classes(_with("x", **entry))
    assert err.value.field == field


def test_other_is_required() -> None:
    data = copy.deepcopy(RAW)
    del data["classes"]["other"]
    with pytest.raises(ConfigError, match="'other'"):
        classes.read_classes(data)


def test_every_class_has_a_formulary_drug_and_every_glucose_lowering_one_moves_the_cohort() -> None:
    assert {d.drug_class for d in all_drugs()} == set(classes.CLASS_IDS)
    assert set(patients.POTENCY) == classes.GLUCOSE_LOWERING_CLASSES


def test_the_parser_the_checker_and_the_writers_read_the_same_data() -> None:
    for class_id, info in classes.all_classes().items():
        for spelling in info.spellings:
            assert normalise_class(spelling, "an unknown drug") == class_id, spelling
    assert class_from_words("GIP/GLP-1 RA") == "gip_glp1ra"  # tried before glp1ra, whose words also match
    assert class_from_words("long-acting insulin") == "basal_insulin"
    assert plan_builder._suggested_classes("newgliflozin") == ["sglt2i"]
    assert classes.name("sglt2i", "zh") == "SGLT2抑制剂" and classes.name("metformin", "en") == "biguanide"
    assert report.CLASS_NAMES["metformin"] == "metformin" and report.CLASS_NAMES["tzd"] == "thiazolidinedione"


def test_an_unknown_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown drug class 'example_class'"):
        classes.get("example_class")


def _selections(node: object, where: str = ""):
    if isinstance(node, dict):
        for key in ("classes", "class_groups"):
            if isinstance(node.get(key), list):
                yield key, node[key], where
        for key, value in node.items():
            yield from _selections(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _selections(value, f"{where}[{i}]")


@pytest.mark.parametrize(
    "name", ["safety/rules.yaml", "knowledge/interactions.yaml", "safety/complexity.yaml", "knowledge/guideline.yaml"]
)
def test_every_class_a_rule_selects_is_a_class_or_a_group_of_the_data(name: str) -> None:
    for key, selected, where in _selections(clinical_data.load(name)):
        known = classes.CLASS_GROUPS if key == "class_groups" else classes.CLASS_IDS
        assert set(selected) <= set(known), f"{name}{where}.{key}: {sorted(set(selected) - set(known))}"


def test_a_rule_for_a_group_covers_every_class_of_it() -> None:
    assert classes.CLASS_GROUPS["all"] == frozenset(classes.CLASS_IDS) - {"other"}
    assert classes.in_groups("agi", ["insulin", "glucose_lowering"]) and not classes.in_groups(
        "statin", ["non_insulin"]
    )
    with pytest.raises(ConfigError, match="unknown class group 'insulins'"):
        classes.in_groups("agi", ["insulins"])


def _diaguide_imports(folder: str) -> set[str]:
    found = set()
    for path in (clinical_data.PACKAGE / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("diaguide"):
                found |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "diaguide" else {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("diaguide")}
    return found


def test_drugs_sit_at_the_bottom_and_records_import_no_layer_above() -> None:
    assert _diaguide_imports("drugs") <= {"diaguide.clinical_data", "diaguide.errors", "diaguide.drugs.classes"}
    above = ("knowledge", "safety", "prompts", "training", "inference", "evaluation", "service", "cohort")
    upward = {m for m in _diaguide_imports("records") if m.split(".")[1] in above}
    assert not upward
