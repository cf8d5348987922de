"""The synthetic cohort: determinism, validity, coherent records, styles and deviations."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from diaguide.cli import main
from diaguide.cohort.clinical import ckd_epi_2021, ckd_stage
from diaguide.cohort.deviations import DEVIATION_RATE, TRAPS
from diaguide.cohort.generate import build_cohort, cohort_command, generate_cohort
from diaguide.errors import InputError
from diaguide.records.schema import CohortRecord
from diaguide.records.units import ANALYTES, canonical_loinc

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def mixed():
    return build_cohort(500, seed=3, lang="mixed")


def _lab(visit, key):
    lab = visit.latest_lab(*ANALYTES[key].loincs)
    return lab.value if lab else None


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        assert cohort_command(patients=40, seed=seed, lang="mixed", out=str(tmp_path / name), agreement=False) == 0
    a, b, c = ((tmp_path / n / "visits.jsonl").read_bytes() for n in "abc")
    assert a == b
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
    assert a != c


def test_every_line_is_a_cohort_record(tmp_path):
    assert main(["cohort", "--patients", "12", "--seed", "5", "--lang", "zh", "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "visits.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 24  # 2-6 visits each
    for line in lines:
        raw = json.loads(line)
        record = CohortRecord.model_validate(raw)
        assert record.style and record.visit.language == "zh"
        assert "deviation" in raw
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["patients"] == 12 and summary["visits"] == len(lines)


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(InputError, match="patients"):
        generate_cohort(0, 1, "en")
    assert main(["cohort", "--patients", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "patients" in err and "Traceback" not in err


def test_population_shares_match_the_documented_rates(mixed):
    profiles = {g.profile.patient_id: g.profile for g in mixed}.values()
    types = Counter(p.dtype for p in profiles)
    n = len(profiles)
    assert 0.78 <= types["type2"] / n <= 0.93
    assert 0.02 <= types["type1"] / n <= 0.11
    assert 1 <= types["pregnancy"] <= 0.07 * n
    older = sum(p.age(p.dates[0]) >= 65 for p in profiles) / n
    assert 0.22 <= older <= 0.40


def test_visits_are_longitudinal_3_to_6_months_apart(mixed):
    by_patient: dict[str, list] = {}
    for g in mixed:
        by_patient.setdefault(g.record.visit.patient_id, []).append(g.record.visit)
    for visits in by_patient.values():
        assert 2 <= len(visits) <= 6
        for a, b in zip(visits, visits[1:], strict=False):
            assert 90 <= (b.date - a.date).days <= 183


def test_kidney_codes_match_egfr_uacr_and_creatinine(mixed):
    for g in mixed:
        v = g.record.visit
        egfr, creat, uacr = _lab(v, "egfr"), _lab(v, "creatinine"), _lab(v, "uacr")
        assert abs(ckd_epi_2021(creat, v.patient.age, v.patient.sex) - egfr) <= 0.5
        n18 = [c for c in v.icd10_codes() if c.startswith("N18")]
        if uacr is None:
            assert not n18 or egfr < 60
            continue
        stage = ckd_stage(egfr, uacr)
        assert n18 == (
            [{"1": "N18.1", "2": "N18.2", "3a": "N18.31", "3b": "N18.32", "4": "N18.4", "5": "N18.5"}[stage]]
            if stage
            else []
        )


def test_special_groups_are_coherent(mixed):
    seen = Counter()
    for g in mixed:
        v = g.record.visit
        classes = {m.drug_class for m in v.medications}
        if v.patient.pregnant:
            seen["pregnant"] += 1
            assert v.patient.sex == "female" and 18 <= v.patient.age <= 45
            assert v.has_diagnosis("O24")
            assert {m.drug_class for m in g.record.plan.medications if m.action != "stop"} & {"basal_insulin"}
        if v.has_diagnosis("E10"):
            seen["type1"] += 1
            assert {"basal_insulin", "prandial_insulin"} <= classes
            assert "sulfonylurea" not in classes
        if v.has_diagnosis("E66"):
            assert v.patient.bmi >= (28 if v.language == "zh" else 30)
        if v.has_diagnosis("K76.0"):
            assert _lab(v, "alt") > 40
    assert seen["pregnant"] and seen["type1"]


def test_labs_are_in_canonical_units(mixed):
    for g in mixed[:300]:
        for lab in g.record.visit.labs:
            assert lab.loinc == canonical_loinc(lab.loinc)
            assert lab.unit == ANALYTES_BY_LOINC[lab.loinc]


ANALYTES_BY_LOINC = {a.loincs[0]: a.unit for a in ANALYTES.values()}


def test_medications_carry_over_to_the_next_visit(mixed):
    for g, nxt in zip(mixed, mixed[1:], strict=False):
        if g.record.visit.patient_id != nxt.record.visit.patient_id:
            continue
        left_on = sorted((m.drug, m.dose) for m in g.record.plan.medications if m.action != "stop")
        assert left_on == sorted((m.drug, m.dose) for m in nxt.record.visit.medications)


def test_hba1c_falls_after_intensification(mixed):
    changed, unchanged = [], []
    for g, nxt in zip(mixed, mixed[1:], strict=False):
        v, plan = g.record.visit, g.record.plan
        if v.patient_id != nxt.record.visit.patient_id or v.patient.pregnant:
            continue
        delta = _lab(nxt.record.visit, "hba1c") - _lab(v, "hba1c")
        glucose = [m for m in plan.medications if m.drug_class not in ("acei", "arb", "statin", "other")]
        if any(m.action == "start" for m in glucose) and not any(m.action == "stop" for m in glucose):
            changed.append(delta)
        elif all(m.action == "continue" for m in glucose):
            unchanged.append(delta)
    # a new drug lowers HbA1c by roughly 0.5-1 point; unchanged therapy drifts up
    assert sum(changed) / len(changed) < -0.3, sum(changed) / len(changed)
    assert sum(unchanged) / len(unchanged) > sum(changed) / len(changed) + 0.4


def test_plans_state_the_goal_and_name_concrete_orders(mixed):
    for g in mixed:
        plan, v = g.record.plan, g.record.visit
        assert plan.hba1c_goal is not None
        goal = f"{plan.hba1c_goal:.1f}%"
        assert (f"控制目标<{goal}" if v.language == "zh" else f"HbA1c goal <{goal}") in plan.treatment
        for m in plan.medications:
            assert m.drug and m.dose and m.frequency and m.reason
        for lab in plan.labs:
            assert re.fullmatch(r"\d+-\d", lab.loinc)


def test_styles_follow_language(mixed):
    by_lang: dict[str, Counter] = {"en": Counter(), "zh": Counter()}
    for p in {g.profile.patient_id: g.profile for g in mixed}.values():
        by_lang[p.lang][p.style] += 1
    assert "acarbose_first" not in by_lang["en"]
    assert set(by_lang["en"]) == {"guideline_strict", "conservative", "insulin_early"}
    assert by_lang["zh"].most_common(1)[0][0] == "acarbose_first"
    zh_agi = sum(
        any(m.drug_class == "agi" for m in g.record.plan.medications)
        for g in mixed
        if g.record.style == "acarbose_first"
    )
    strict_agi = sum(
        any(m.drug_class == "agi" for m in g.record.plan.medications)
        for g in mixed
        if g.record.style == "guideline_strict"
    )
    assert zh_agi > 3 * max(1, strict_agi)


def test_deviation_rate_matches_the_documented_rate(mixed):
    rate = sum(g.deviation is not None for g in mixed) / len(mixed)
    expected = sum(g.deviation_chance for g in mixed) / len(mixed)
    assert DEVIATION_RATE <= expected < DEVIATION_RATE + 0.03  # traps add a little to the base rate
    assert abs(rate - expected) < 0.02
    trap_visits = [g for g in mixed if g.deviation_chance > DEVIATION_RATE]
    assert trap_visits and sum(g.deviation in TRAPS for g in trap_visits) >= 0.1 * len(trap_visits)
    kinds = Counter(g.deviation for g in mixed if g.deviation)
    assert len(kinds) >= 3


def test_zh_cohort_is_written_in_chinese():
    cohort = generate_cohort(40, seed=8, lang="zh")
    assert all(CJK.search(r.visit.chief_complaint) and CJK.search(r.visit.present_illness) for r in cohort)
    assert all(CJK.search(r.plan.treatment) for r in cohort)
    assert any(CJK.search(m.drug) for r in cohort for m in r.visit.medications)
    assert any(re.search(r"[a-z]{4,}", m.drug) for r in cohort for m in r.visit.medications)  # "sometimes" Chinese
    en = generate_cohort(20, seed=8, lang="en")
    assert not any(CJK.search(r.visit.present_illness + r.plan.treatment) for r in en)
    assert any(re.search(r"T[12]DM x\d+y", r.visit.present_illness) for r in en)


def test_same_bytes_across_processes_with_different_hash_seeds(tmp_path):
    import os
    import subprocess
    import sys

    code = "import sys; from diaguide.cohort.generate import cohort_command; cohort_command(30, 7, 'mixed', sys.argv[1], agreement=False)"
    for h in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": h}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / h)], check=True, env=env, capture_output=True)
    assert (tmp_path / "1" / "visits.jsonl").read_bytes() == (tmp_path / "2" / "visits.jsonl").read_bytes()


def test_notes_name_the_right_diabetes(mixed):
    for g in mixed:
        v = g.record.visit
        text = v.chief_complaint + " " + v.present_illness
        if v.has_diagnosis("E10"):
            assert "T2DM" not in text and "2型糖尿病" not in text
        else:
            assert "T1DM" not in text and "1型糖尿病" not in text
