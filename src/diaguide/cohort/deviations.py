"""Real-world deviations: the small share of physician plans that break a rule.

At each visit, with probability `DEVIATION_RATE`, the plan gets one deviation, drawn by weight
among the kinds that apply to this patient (a kind that needs, say, eGFR <20 applies to few).
`missed_monitoring` applies to every visit, so the realised rate matches the documented one.
Rates and kinds are documented in docs/cohort.md and counted in summary.json.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from diaguide.cohort.catalog import class_of
from diaguide.cohort.decision import Context, Decision, Order

DEVIATION_RATE = 0.06  # share of visits; audits of diabetes care find 5-10% of prescriptions inappropriate


def _missed_monitoring(ctx: Context, d: Decision) -> None:
    """Forgets the yearly UACR (or, when none is due, the next HbA1c)."""
    for key in ("uacr", "creatinine") if "uacr" in d.labs else ("hba1c",):
        d.labs.pop(key, None)


def _metformin_low_egfr(ctx: Context, d: Decision) -> None:
    """Keeps metformin although eGFR <30 (contraindicated, FDA 2016)."""
    o = d.orders["metformin"]
    d.orders["metformin"] = Order("metformin", "continue", o.step, None, "continue")


def _second_sulfonylurea(ctx: Context, d: Decision) -> None:
    """Adds a second sulfonylurea on top of the one the patient takes."""
    current = ctx.on("sulfonylurea")
    d.start("glipizide" if current != "glipizide" else "glimepiride", "above_goal")


def _sglt2i_low_egfr(ctx: Context, d: Decision) -> None:
    """Starts an SGLT2 inhibitor at eGFR <20 (not to be started, ADA §11)."""
    d.start("dapagliflozin" if ctx.zh else "empagliflozin", "ckd")


def _glyburide_older(ctx: Context, d: Decision) -> None:
    """Starts glyburide in an adult over 75 (Beers criteria: avoid)."""
    d.start("glyburide", "above_goal")


def _dpp4i_with_glp1(ctx: Context, d: Decision) -> None:
    """Adds a DPP-4 inhibitor to a GLP-1 RA (no added lowering)."""
    d.start("sitagliptin", "above_goal")


def _raas_in_pregnancy(ctx: Context, d: Decision) -> None:
    """Leaves an ACE inhibitor/ARB running in pregnancy (contraindicated, ADA §15)."""
    for key, o in list(d.orders.items()):
        if class_of(key) in ("acei", "arb"):
            d.orders[key] = Order(key, "continue", o.step, None, "bp")
    if "labetalol" not in ctx.state.meds:
        d.orders.pop("labetalol", None)


def _keeps_su_after_hypo(ctx: Context, d: Decision) -> None:
    """Leaves the sulfonylurea dose unchanged after hypoglycaemia in an older adult."""
    key = ctx.on("sulfonylurea")
    d.orders[key] = Order(key, "continue", ctx.state.meds[key].step, None, "continue")  # type: ignore[index]


Applies = Callable[[Context, Decision], bool]
# kind -> (weight, applies, apply)
KINDS: dict[str, tuple[float, Applies, Callable[[Context, Decision], None]]] = {
    "missed_monitoring": (3.0, lambda c, d: True, _missed_monitoring),
    "metformin_low_egfr": (
        4.0,
        lambda c, d: d.orders.get("metformin", Order("", "")).action == "stop" and c.egfr < 30,
        _metformin_low_egfr,
    ),
    "second_sulfonylurea": (
        2.0,
        lambda c, d: c.on("sulfonylurea") is not None and not c.pregnant and not c.type1,
        _second_sulfonylurea,
    ),
    "sglt2i_low_egfr": (
        4.0,
        lambda c, d: c.egfr < 20 and not d.has_class("sglt2i") and not c.pregnant,
        _sglt2i_low_egfr,
    ),
    "glyburide_older": (3.0, lambda c, d: c.age >= 75 and not d.has_class("sulfonylurea"), _glyburide_older),
    "dpp4i_with_glp1": (
        2.0,
        lambda c, d: (d.has_class("glp1ra") or d.has_class("gip_glp1ra")) and not d.has_class("dpp4i"),
        _dpp4i_with_glp1,
    ),
    "raas_in_pregnancy": (
        5.0,
        lambda c, d: c.pregnant and (c.on("acei") or c.on("arb")) is not None,
        _raas_in_pregnancy,
    ),
    "keeps_su_after_hypo": (
        3.0,
        lambda c, d: c.hypo and c.older and c.on("sulfonylurea") is not None,
        _keeps_su_after_hypo,
    ),
}


def maybe_deviate(ctx: Context, d: Decision, rng: random.Random, rate: float = DEVIATION_RATE) -> str | None:
    """With probability `rate`, apply one applicable deviation to `d`; its kind, or None."""
    if rng.random() >= rate:
        return None
    kinds = [(name, w) for name, (w, applies, _) in KINDS.items() if applies(ctx, d)]
    name = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
    KINDS[name][2](ctx, d)
    return name
