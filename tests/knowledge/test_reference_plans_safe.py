"""The guideline engine's reference plans pass the safety checker on the synthetic cohort.

Every plan of `recommend` is checked by `safety.checker.check` (region "cds" for Chinese
visits, "ada" otherwise, as the cohort report does). No plan may draw a critical finding.
Warnings are allowed only where they cannot be avoided without leaving the guideline:

- `interaction.dpp4i_or_sglt2i_with_sulfonylurea_or_insulin` on a *newly started* basal insulin
  next to a kept SGLT2i/DPP-4i. ADA 2025 Figure 9.4 adds basal insulin when HbA1c stays above
  goal on several agents (or is >10%); the SGLT2i is kept for its heart/kidney benefit. The
  insulin starts at the lowest dose (10 U/day) and is titrated; the checker warns on any new
  insulin beside these drugs (its `started` escalation), so no dose can avoid it.
- `interaction.cardioselective_beta_blocker_hypoglycaemia` /
  `interaction.nonselective_beta_blocker_hypoglycaemia`: a beta-blocker the patient takes for
  the heart or blood pressure (not the diabetes guideline's to change: labetalol, for one, is a
  first-line antihypertensive in pregnancy, where insulin is the preferred agent) beside an
  insulin that is started for the same reason as above, or is essential and already lowered.
- `duplicate.premixed_with_basal` where an SGLT2i is also taken: stopping either insulin would
  cut it by far more than 20% next to the SGLT2i (ketoacidosis, `sglt2i_insulin_cut`).

Above goal, a GLP-1 RA below its top dose is raised before any insulin is added, which keeps
most of the first two kinds away. On 60 patients per language (seed 0) that leaves 0 warnings
in English and 5 in Chinese, all basal insulin started next to dapagliflozin: one patient on
four oral classes and above goal at two visits (Figure 9.4: insulin next), one with HbA1c >10%
at three visits (insulin whatever else, ADA 2025 §9). On 250 patients: 9 in English and 21 in
Chinese, all of the kinds above.
"""

from __future__ import annotations

import collections

import pytest

from diaguide.cohort.generate import generate_cohort
from diaguide.knowledge.guideline import recommend
from diaguide.safety.checker import check

UNAVOIDABLE = {
    "interaction.dpp4i_or_sglt2i_with_sulfonylurea_or_insulin",
    "interaction.cardioselective_beta_blocker_hypoglycaemia",
    "interaction.nonselective_beta_blocker_hypoglycaemia",
    "duplicate.premixed_with_basal",
}
MAX_WARNINGS = {"en": 2, "zh": 6}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reference_plans_draw_no_critical_and_only_unavoidable_warnings(lang):
    warnings: collections.Counter[str] = collections.Counter()
    for record in generate_cohort(60, 0, lang):
        visit = record.visit
        region = "cds" if visit.language == "zh" else "ada"
        plan = recommend(visit, region)
        started = {m.drug for m in plan.medications if m.action == "start"}
        for finding in check(visit, plan, region):
            assert finding.severity != "critical", (visit.visit_id, finding.rule_id, finding.message)
            if finding.severity != "warning":
                continue
            assert finding.rule_id in UNAVOIDABLE, (visit.visit_id, finding.rule_id, finding.message)
            if finding.rule_id == "interaction.dpp4i_or_sglt2i_with_sulfonylurea_or_insulin":
                # the insulin (last drug named) is new this visit, never a kept one left unlowered
                assert finding.drugs[-1] in started, (visit.visit_id, finding.message)
            warnings[finding.rule_id] += 1
    assert sum(warnings.values()) <= MAX_WARNINGS[lang], warnings
