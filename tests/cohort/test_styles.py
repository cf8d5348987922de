"""Practice styles and deviations, one clinical situation per row."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from diaguide.cohort.decision import Context
from diaguide.cohort.deviations import KINDS, maybe_deviate
from diaguide.cohort.patients import Med, Profile, State
from diaguide.cohort.planwriter import write_plan
from diaguide.cohort.styles import STYLES

DAY = dt.date(2025, 3, 1)


def make_ctx(
    *,
    meds=(("metformin", 2),),
    a1c=8.0,
    egfr=80.0,
    uacr=10.0,
    age=55,
    bmi=26.0,
    lang="en",
    hf=False,
    ascvd=None,
    frail=False,
    hypo=False,
    pregnant=False,
    base_type="type2",
    htn=False,
) -> Context:
    profile = Profile(
        "T-1",
        lang,
        lang == "zh",
        "pregnancy" if pregnant else base_type,
        base_type,
        "female" if pregnant else "male",
        DAY.replace(year=DAY.year - age),
        170.0,
        DAY.replace(year=DAY.year - 6),
        htn=htn,
        ascvd=ascvd,
        hf=hf,
        frail=frail,
    )
    state = State(raw_a1c=a1c + 2, weight_base=bmi * 1.7**2, egfr=egfr, uacr=uacr, ldl_base=120, sbp_base=130)
    for key, step in meds:
        units = step if "insulin" in key else None
        state.meds[key] = Med(key, 0 if units else step, units, DAY.replace(year=DAY.year - 2))
    state.last_uacr = state.last_lipids = DAY
    return Context(profile, state, DAY, age, a1c, None, egfr, uacr, bmi, bmi * 1.7**2, pregnant, hypo, 90.0)


def orders(decision):
    return {key: (o.action, o.reason) for key, o in decision.orders.items()}


def classes_started(decision):
    from diaguide.cohort.catalog import class_of

    return {class_of(k) for k, o in decision.orders.items() if o.action == "start"}


@pytest.mark.parametrize(
    "style, ctx_args, expect_started, reason",
    [
        ("guideline_strict", {"hf": True, "egfr": 50.0, "a1c": 6.8}, "sglt2i", "hf"),
        ("guideline_strict", {"ascvd": "I25.10", "a1c": 6.8}, "glp1ra", "ascvd"),
        ("guideline_strict", {"egfr": 50.0, "uacr": 120.0, "a1c": 6.8}, "sglt2i", "ckd"),
        ("guideline_strict", {"a1c": 10.6}, "basal_insulin", "insulin_high_a1c"),
        ("guideline_strict", {"bmi": 33.0, "a1c": 7.8}, "glp1ra", "obesity"),
        ("insulin_early", {"a1c": 8.8}, "basal_insulin", "insulin_high_a1c"),
        ("acarbose_first", {"a1c": 8.0, "lang": "zh"}, "agi", "postprandial"),
        ("conservative", {"a1c": 8.4, "meds": (("metformin", 2),)}, "sulfonylurea", "above_goal"),
    ],
)
def test_style_starts_the_expected_class(style, ctx_args, expect_started, reason):
    d = STYLES[style](make_ctx(**ctx_args))
    assert expect_started in classes_started(d)
    assert reason in {r for _, r in orders(d).values()}


def test_conservative_waits_near_goal_and_titrates_what_is_there():
    near = STYLES["conservative"](make_ctx(a1c=7.4))
    assert all(action == "continue" for action, _ in orders(near).values())
    d = STYLES["conservative"](make_ctx(a1c=8.6, meds=(("metformin", 2), ("glimepiride", 1))))
    assert orders(d)["glimepiride"] == ("adjust", "titrate") and d.orders["glimepiride"].step == 2
    assert not classes_started(d)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_respects_kidney_limits_on_metformin(style):
    stop = STYLES[style](make_ctx(egfr=25.0, uacr=200.0, lang="zh" if style == "acarbose_first" else "en"))
    assert orders(stop)["metformin"] == ("stop", "renal_stop")
    reduce = STYLES[style](make_ctx(egfr=40.0, uacr=200.0))
    assert orders(reduce)["metformin"][0] == "adjust" and reduce.orders["metformin"].step == 1


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_keeps_type1_on_insulin_without_sulfonylurea(style):
    ctx = make_ctx(
        base_type="type1", a1c=8.5, meds=(("insulin_glargine", 20), ("insulin_lispro", 18), ("glimepiride", 0))
    )
    d = STYLES[style](ctx)
    assert orders(d)["insulin_glargine"][0] == "adjust" and d.orders["insulin_glargine"].units == 22
    assert orders(d)["glimepiride"] == ("stop", "type1_not_indicated")
    assert d.goal == 7.0


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_moves_pregnancy_to_insulin_and_off_ace_inhibitors(style):
    d = STYLES[style](make_ctx(pregnant=True, age=31, htn=True, a1c=7.1, meds=(("metformin", 2), ("lisinopril", 0))))
    o = orders(d)
    assert o["lisinopril"] == ("stop", "pregnancy_raas") and o["labetalol"][0] == "start"
    assert o["metformin"][0] == "stop" and o["insulin_glargine"][0] == "start"
    assert d.goal == 6.0


def test_goals_follow_age_frailty_and_style():
    assert STYLES["guideline_strict"](make_ctx(age=72)).goal == 7.0
    assert STYLES["conservative"](make_ctx(age=72)).goal == 7.5
    assert STYLES["guideline_strict"](make_ctx(age=72, frail=True)).goal == 8.0
    assert STYLES["guideline_strict"](make_ctx(age=33)).goal == 6.5


def test_hypoglycaemia_in_an_older_adult_lowers_the_sulfonylurea():
    d = STYLES["conservative"](make_ctx(age=78, hypo=True, a1c=6.6, meds=(("metformin", 2), ("glimepiride", 2))))
    assert orders(d)["glimepiride"] == ("adjust", "hypo_reduce") and d.orders["glimepiride"].step == 1
    d = STYLES["guideline_strict"](make_ctx(age=78, hypo=True, a1c=6.6, meds=(("metformin", 2), ("glipizide", 0))))
    assert orders(d)["glipizide"] == ("stop", "hypo_stop")


@pytest.mark.parametrize(
    "kind, ctx_args, check",
    [
        ("metformin_low_egfr", {"egfr": 25.0, "uacr": 100.0}, lambda o: o["metformin"][0] == "continue"),
        ("sglt2i_low_egfr", {"egfr": 18.0, "uacr": 100.0, "meds": ()}, lambda o: o["empagliflozin"][0] == "start"),
        ("glyburide_older", {"age": 80, "meds": (("metformin", 2),)}, lambda o: o["glyburide"][0] == "start"),
        (
            "second_sulfonylurea",
            {"meds": (("metformin", 2), ("glimepiride", 1))},
            lambda o: o["glipizide"][0] == "start",
        ),
        (
            "raas_in_pregnancy",
            {"pregnant": True, "age": 30, "htn": True, "meds": (("lisinopril", 0),)},
            lambda o: o["lisinopril"][0] == "continue" and "labetalol" not in o,
        ),
        ("dpp4i_with_glp1", {"meds": (("metformin", 2), ("semaglutide", 1))}, lambda o: o["sitagliptin"][0] == "start"),
        (
            "keeps_su_after_hypo",
            {"age": 78, "hypo": True, "a1c": 6.6, "meds": (("metformin", 2), ("glimepiride", 2))},
            lambda o: o["glimepiride"] == ("continue", "continue"),
        ),
        ("missed_monitoring", {"egfr": 50.0, "uacr": 80.0}, None),
    ],
)
def test_each_deviation_writes_the_error_it_names(kind, ctx_args, check):
    ctx = make_ctx(**ctx_args)
    d = STYLES["guideline_strict"](ctx)
    applies = KINDS[kind][1]
    assert applies(ctx, d)
    had_uacr = "uacr" in d.labs
    KINDS[kind][2](ctx, d)
    if check is None:
        assert had_uacr and "uacr" not in d.labs
    else:
        assert check(orders(d))


def test_deviation_rate_parameter():
    ctx = make_ctx()
    assert maybe_deviate(ctx, STYLES["guideline_strict"](ctx), random.Random(1), rate=0.0) is None
    assert maybe_deviate(ctx, STYLES["guideline_strict"](ctx), random.Random(1), rate=1.0) in KINDS


def test_plan_text_states_goal_and_orders_in_the_visit_language():
    en = write_plan(
        make_ctx(hf=True, egfr=50.0, a1c=7.9), STYLES["guideline_strict"](make_ctx(hf=True, egfr=50.0, a1c=7.9))
    )
    assert en.treatment.startswith("HbA1c goal <7.0%. HbA1c 7.9%, above goal.")
    assert "Start empagliflozin 10 mg qd (heart failure, SGLT2i benefit)." in en.treatment
    zh_ctx = make_ctx(lang="zh", a1c=8.0)
    zh = write_plan(zh_ctx, STYLES["acarbose_first"](zh_ctx))
    assert zh.treatment.startswith("糖化血红蛋白控制目标<7.0%。本次8.0%，未达标。")
    assert "加用阿卡波糖50mg tid（餐后血糖高）。" in zh.treatment
    assert {m.drug for m in zh.medications} >= {"二甲双胍", "阿卡波糖"}
