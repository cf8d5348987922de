"""The regimen a plan leaves the patient on: plan orders plus current medications, normalised.

Every drug is read through the formulary (generic or brand, English or Chinese, combination
brands split into their ingredients), so the rules compare ingredients, not spellings. A drug the
formulary does not know keeps the class the record gave it, and is reported as unchecked.
"""

from __future__ import annotations

import dataclasses
import re

from diaguide.drugs import classes as drug_classes
from diaguide.drugs.formulary import Drug, get, ingredients
from diaguide.knowledge.conditions import mentions
from diaguide.records.schema import DRUG_CLASSES, Plan, Visit
from diaguide.safety.data import rules_data
from diaguide.safety.dose import DoseAmount, parse_dose

_INSULIN_WORD = re.compile(r"insulin|胰岛素", re.IGNORECASE)
# a clause of the notes that announces a study to come ("scheduled for CT angiography", "拟行冠脉造影")
_PLANNED = re.compile(
    r"schedul|planned|plan for|upcoming|booked|will (have|undergo)|next week|拟|计划|预约|将行|准备行", re.IGNORECASE
)
_CLAUSES = re.compile(r"[.;\n。；]")
# an "adjust" order whose reason says the dose goes down
_LOWER = re.compile(r"reduc|lower|decreas|taper|de-?intensif|cut|halve|减量|减少|下调|减半|降低剂量", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One ingredient of one medication line, from the plan or from the visit's current list."""

    label: str  # the drug as the plan or record wrote it (what findings name)
    drug: Drug | None  # None: not in the formulary
    drug_class: str
    origin: str  # "plan" | "current"
    action: str  # plan action; "continue" for a current medication the plan does not mention
    dose: str | None = None
    frequency: str | None = None
    reason: str = ""
    class_only: bool = False  # the line names a class ("basal insulin"), not a drug

    @property
    def key(self) -> str:
        """What makes two entries the same drug: the formulary name, else the written name."""
        return self.drug.name if self.drug else " ".join(self.label.lower().split())

    @property
    def tags(self) -> tuple[str, ...]:
        return self.drug.tags if self.drug else ()

    @property
    def known(self) -> bool:
        return self.drug is not None

    @property
    def is_insulin(self) -> bool:
        """An insulin of any kind, including a line that only says "insulin"."""
        return self.drug_class in drug_classes.INSULIN_CLASSES or bool(_INSULIN_WORD.search(self.label))

    def amount(self) -> DoseAmount | None:
        """The written dose per day/week in the formulary unit, when the text states one."""
        if self.drug is None:
            return None
        return parse_dose(self.dose, self.frequency, self.drug.dose_unit)

    def daily(self) -> float | None:
        """The amount per day; None for weekly drugs or unreadable doses (one written dose counts as a day's)."""
        amount = self.amount()
        if amount is None or amount.period == "week":
            return None
        return amount.amount


def _class(written: object) -> str:
    return written if isinstance(written, str) and written in DRUG_CLASSES else "other"


def class_from_words(text: str) -> str | None:
    """The class a generic line names ("GLP-1 RA", "basal insulin", "磺脲类"), or None: the class words of
    drugs/classes.yaml, tried in their order."""
    for drug_class, patterns in drug_classes.class_words().items():
        if any(re.search(p, text, re.IGNORECASE) for p in patterns):
            return drug_class
    return None


def _entries(
    label: object, written_class: object, origin: str, action: str, dose: object, freq: object, reason: object = ""
) -> list[Entry]:
    text = label if isinstance(label, str) else ""
    why = reason if isinstance(reason, str) else ""
    dose_text = dose if isinstance(dose, str) else (str(dose) if isinstance(dose, (int, float)) else None)
    freq_text = freq if isinstance(freq, str) else None
    if not dose_text and not freq_text:
        dose_text = text  # "二甲双胍缓释片 0.5g bid": the drug line itself may carry the dose
    drugs = ingredients(text)
    if not drugs:
        drug_class, class_only = _class(written_class), False
        if drug_class == "other" and text.strip():
            inferred = class_from_words(text)
            drug_class, class_only = (inferred, True) if inferred else ("other", False)
        return [Entry(text.strip(), None, drug_class, origin, action, dose_text, freq_text, why, class_only)]
    # a single-ingredient line keeps its dose; the strengths of a combination line are ambiguous
    keep_dose = len(drugs) == 1
    return [
        Entry(
            text.strip(),
            d,
            d.drug_class,
            origin,
            action,
            dose_text if keep_dose else None,
            freq_text if keep_dose else None,
            why,
        )
        for d in drugs
    ]


@dataclasses.dataclass
class Regimen:
    plan: list[Entry]  # plan orders, stopped ones included
    current: list[Entry]  # the visit's current medications

    @property
    def stopped(self) -> set[str]:
        return {e.key for e in self.plan if e.action == "stop"}

    def plan_active(self) -> list[Entry]:
        """Plan orders that are not stopped."""
        return [e for e in self.plan if e.action != "stop" and e.label]

    def carried_over(self) -> list[Entry]:
        """Current medications the plan neither stops nor re-orders: the patient keeps taking them."""
        in_plan = {e.key for e in self.plan}
        return [e for e in self.current if e.key not in in_plan and e.label]

    def active(self) -> list[Entry]:
        """Everything the patient will take after this plan."""
        return self.plan_active() + self.carried_over()

    def current_of(self, key: str) -> Entry | None:
        return next((e for e in self.current if e.key == key), None)

    def reduced(self, entry: Entry) -> bool:
        """The plan stops this drug or lowers its dose (readable doses, or an adjust whose reason says so)."""
        if entry.action == "stop":
            return True
        if entry.origin != "plan":
            return False
        before = self.current_of(entry.key)
        new, old = entry.daily(), (before.daily() if before else None)
        if new is not None and old is not None:
            return new < old
        return entry.action == "adjust" and bool(_LOWER.search(entry.reason))


def _contrast_study(visit: Visit, plan: Plan) -> str | None:
    """Where an iodinated contrast study is announced: "plan" (treatment, lab orders), "visit"
    (a clause of the notes that says it is planned), or None. Past studies ("s/p PCI") do not count."""
    patterns = rules_data()["contrast_study"]["patterns"]
    plan_texts = [plan.treatment, *(f"{lab.name} {lab.reason}" for lab in plan.labs)]
    if mentions([t for t in plan_texts if t], patterns, current_only=True):
        return "plan"
    notes = [visit.chief_complaint, visit.present_illness]
    clauses = [c for t in notes if t for c in _CLAUSES.split(t) if _PLANNED.search(c)]
    return "visit" if clauses and mentions(clauses, patterns, current_only=True) else None


def build_regimen(visit: Visit, plan: Plan) -> Regimen:
    """Normalise the plan's orders and the visit's medications through the formulary.

    An iodinated contrast study announced in the plan or the notes joins the regimen, so the
    interaction table sees it next to metformin.
    """
    plan_entries: list[Entry] = []
    for order in plan.medications:
        plan_entries += _entries(
            order.drug, order.drug_class, "plan", order.action, order.dose, order.frequency, order.reason
        )
    current: list[Entry] = []
    for med in visit.medications:
        current += _entries(med.drug, med.drug_class, "current", "continue", med.dose, med.frequency)
    contrast = get("iodinated contrast")
    already = any(e.drug is contrast for e in plan_entries + current)
    where = None if already or contrast is None else _contrast_study(visit, plan)
    if where is not None:
        label = rules_data()["contrast_study"]["label"]
        origin, action = ("plan", "start") if where == "plan" else ("current", "continue")
        entry = Entry(label, contrast, contrast.drug_class, origin, action)
        (plan_entries if where == "plan" else current).append(entry)
    return Regimen(plan_entries, current)
