"""Properties of the parser on text nobody wrote by hand."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diaguide.cohort.generate import generate_cohort
from diaguide.prompts import parse_plan, plan_to_text
from diaguide.prompts.target import as_written

RECORDS = generate_cohort(patients=6, seed=21, lang="mixed")
PIECES = st.sampled_from(
    ["GOAL:", "MED:", "LAB:", "END", "|", "｜", "：", "\n", " ", "start", "4548-4", "二甲双胍", "{", "}"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=40))
def test_never_raises_and_no_plan_means_an_error(parts):
    result = parse_plan("".join(parts))
    assert isinstance(result.errors, list)
    if result.plan is None:
        assert result.errors
    else:
        assert result.plan.findings == []


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(RECORDS) - 1), st.floats(0, 1))
def test_truncation_never_invents_an_order(index, fraction):
    record = RECORDS[index]
    text = plan_to_text(record.plan, record.visit.language)
    result = parse_plan(text[: int(len(text) * fraction)])
    whole = {(m.action, m.drug, m.dose, m.frequency) for m in as_written(record.plan)}
    if result.plan is not None:
        assert {(m.action, m.drug, m.dose, m.frequency) for m in result.plan.medications} <= whole
        assert {lab.loinc for lab in result.plan.labs} <= {lab.loinc for lab in record.plan.labs}
