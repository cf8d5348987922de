"""Real-world deviations: the small share of physician plans that break a rule.

Two ways a plan goes wrong, both documented in docs/cohort.md and counted in summary.json:

- at any visit, with probability `DEVIATION_RATE`, one deviation drawn by weight among the kinds
  that apply (`missed_monitoring` applies to every visit);
- in a trap situation (metformin at eGFR <30, eGFR <20 without an SGLT2i, an ACE inhibitor in
  pregnancy, hypoglycaemia in an older adult on a sulfonylurea), with probability `TRAP_RATE`,
  the error that situation invites. Errors cluster in complex records, the seed system's weak spot.

`deviation_chance` gives a visit's probability of any deviation, so a cohort's expected rate
can be stated exactly and compared with what was drawn.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from diaguide.cohort.catalog import class_of
from diaguide.cohort.decision import Context, Decision, Order

DEVIATION_RATE = 0.06  # share of visits; audits of diabetes care find 5-10% of prescriptions inappropriate
TRAP_RATE = 0.25  # share of trap situations that the physician misses
TRAPS = ("metformin_low_egfr", "sglt2i_low_egfr", "raas_in_pregnancy", "keeps_su_after_hypo")


def _free(d: Decision, keys: tuple[str, ...]) -> str:
    """The first product not already on the order sheet (an order stopped in this plan stays stopped)."""
    return next((k for k in keys if k not in d.orders), keys[0])


def _kept(d: Decision, drug_class: str) -> int:
    return sum(class_of(k) == drug_class and o.action != "stop" for k, o in d.orders.items())


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
    d.start(_free(d, ("glipizide", "glimepiride", "gliclazide")), "above_goal")


def _sglt2i_low_egfr(ctx: Context, d: Decision) -> None:
    """Starts an SGLT2 inhibitor at eGFR <20 (not to be started, ADA §11)."""
    d.start("dapagliflozin" if ctx.zh else "empagliflozin", "ckd")


def _glyburide_older(ctx: Context, d: Decision) -> None:
    """Starts glyburide in an adult over 75 (Beers criteria: avoid)."""
    d.start("glyburide", "above_goal")


def _dpp4i_with_glp1(ctx: Context, d: Decision) -> None:
    """Adds a DPP-4 inhibitor to a GLP-1 RA (no added lowering)."""
    d.start(_free(d, ("sitagliptin", "linagliptin", "saxagliptin")), "above_goal")


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
# kind -> (weight, applies, apply); the situations of the heavy kinds are rare, so when one
# arises it is the likelier error (documented in docs/cohort.md)
KINDS: dict[str, tuple[float, Applies, Callable[[Context, Decision], None]]] = {
    "missed_monitoring": (3.0, lambda c, d: True, _missed_monitoring),
    "metformin_low_egfr": (
        10.0,
        lambda c, d: d.orders.get("metformin", Order("", "")).action == "stop" and c.egfr < 30,
        _metformin_low_egfr,
    ),
    "second_sulfonylurea": (
        3.0,
        lambda c, d: _kept(d, "sulfonylurea") == 1 and not c.pregnant and not c.type1,
        _second_sulfonylurea,
    ),
    "sglt2i_low_egfr": (
        10.0,
        lambda c, d: (
            c.egfr < 20
            and not c.on("sglt2i")
            and not c.pregnant
            and not c.type1
            and not {"empagliflozin", "dapagliflozin"} & set(d.orders)
        ),
        _sglt2i_low_egfr,
    ),
    "glyburide_older": (
        5.0,
        lambda c, d: (
            c.age >= 75
            and _kept(d, "sulfonylurea") == 0
            and "glyburide" not in d.orders
            and not c.type1
            and not c.pregnant
        ),
        _glyburide_older,
    ),
    "dpp4i_with_glp1": (
        3.0,
        lambda c, d: (
            (d.has_class("glp1ra") or d.has_class("gip_glp1ra")) and not c.on("dpp4i") and _kept(d, "dpp4i") == 0
        ),
        _dpp4i_with_glp1,
    ),
    "raas_in_pregnancy": (
        10.0,
        lambda c, d: c.pregnant and (c.on("acei") or c.on("arb")) is not None,
        _raas_in_pregnancy,
    ),
    "keeps_su_after_hypo": (
        6.0,
        lambda c, d: c.hypo and c.older and c.on("sulfonylurea") is not None,
        _keeps_su_after_hypo,
    ),
}


def deviation_chance(ctx: Context, d: Decision, rate: float = DEVIATION_RATE) -> float:
    """Probability that `maybe_deviate` changes this decision."""
    trap = any(KINDS[k][1](ctx, d) for k in TRAPS)
    return 1 - (1 - TRAP_RATE) * (1 - rate) if trap else rate


def maybe_deviate(ctx: Context, d: Decision, rng: random.Random, rate: float = DEVIATION_RATE) -> str | None:
    """Maybe apply one deviation to `d` (see the module docstring); its kind, or None."""
    traps = [(k, KINDS[k][0]) for k in TRAPS if KINDS[k][1](ctx, d)]
    if traps and rng.random() < TRAP_RATE:
        kinds = traps
    elif rng.random() < rate:
        kinds = [(name, w) for name, (w, applies, _) in KINDS.items() if applies(ctx, d)]
    else:
        return None
    name = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
    before = (repr(d.orders), repr(d.labs))
    KINDS[name][2](ctx, d)
    # a deviation that changed nothing is not one (never expected: `applies` rules it out)
    return name if (repr(d.orders), repr(d.labs)) != before else None
