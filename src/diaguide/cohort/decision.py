"""The physician's decision before it is written out: goal, orders, labs, remarks.

Styles (`styles.py`) and deviations (`deviations.py`) edit a `Decision`; `notes.py` turns it
into the `Plan` text in the visit's language. Orders keep insertion order, so output is
deterministic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from diaguide.cohort.catalog import class_of, spec
from diaguide.cohort.patients import Profile, State


@dataclasses.dataclass
class Order:
    key: str
    action: str  # start | continue | adjust | stop
    step: int = 0
    units: int | None = None
    reason: str = "continue"  # a reason code, see notes.REASONS


@dataclasses.dataclass
class Context:
    """What the physician sees at the visit."""

    profile: Profile
    state: State
    date: dt.date
    age: int
    a1c: float
    prev_a1c: float | None
    egfr: float
    uacr: float
    bmi: float
    weight: float
    pregnant: bool
    hypo: bool
    ldl: float | None

    def classes(self) -> list[str]:
        return [class_of(k) for k in self.state.meds]

    def on(self, drug_class: str) -> str | None:
        """The key of a current drug of `drug_class`, or None."""
        return next((k for k in self.state.meds if class_of(k) == drug_class), None)

    @property
    def type1(self) -> bool:
        return self.profile.base_type == "type1"

    @property
    def older(self) -> bool:
        return self.age >= 65

    @property
    def obese(self) -> bool:
        return self.bmi >= self.profile.obese_bmi()

    @property
    def ckd(self) -> bool:
        return self.egfr < 60 or self.uacr >= 30

    @property
    def zh(self) -> bool:
        return self.profile.lang == "zh"


@dataclasses.dataclass
class Decision:
    goal: float
    orders: dict[str, Order] = dataclasses.field(default_factory=dict)
    labs: dict[str, str] = dataclasses.field(default_factory=dict)  # analyte key -> reason code
    remarks: list[str] = dataclasses.field(default_factory=list)  # remark codes, see notes.REMARKS

    @classmethod
    def keep_all(cls, ctx: Context, goal: float) -> Decision:
        d = cls(goal)
        for key, m in ctx.state.meds.items():
            d.orders[key] = Order(key, "continue", m.step, m.units)
        return d

    def has_class(self, drug_class: str) -> bool:
        return any(class_of(o.key) == drug_class and o.action != "stop" for o in self.orders.values())

    def changed(self) -> bool:
        return any(o.action in ("start", "adjust") for o in self.orders.values())

    def start(self, key: str, reason: str, step: int = 0, units: int | None = None) -> None:
        if key in self.orders and self.orders[key].action == "stop":
            return  # stopped for a reason in this same plan: not restarted by a later rule
        self.orders[key] = Order(key, "start", step, units, reason)

    def stop(self, key: str, reason: str) -> None:
        if key in self.orders:
            o = self.orders[key]
            self.orders[key] = Order(key, "stop", o.step, o.units, reason)

    def stop_class(self, drug_class: str, reason: str) -> None:
        for key in [k for k, o in self.orders.items() if class_of(k) == drug_class and o.action != "stop"]:
            self.stop(key, reason)

    def titrate(self, key: str, reason: str, delta: int = 1) -> bool:
        """Move an oral drug `delta` steps along its ladder; False when already at the end."""
        o = self.orders.get(key)
        if o is None or o.action == "stop":
            return False
        new = max(0, min(spec(key).top_step, o.step + delta))
        if new == o.step:
            return False
        self.orders[key] = Order(key, "adjust" if o.action != "start" else "start", new, None, reason)
        return True

    def set_units(self, key: str, units: int, reason: str) -> None:
        o = self.orders[key]
        if units != o.units:
            self.orders[key] = Order(key, "adjust" if o.action != "start" else "start", 0, max(2, units), reason)
