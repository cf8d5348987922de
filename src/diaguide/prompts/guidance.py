"""The guideline engine in the prompt, and training targets checked against it.

The seed system missed treatment goals and proposed risky medication on complex records: a
small model cannot learn eGFR cut-offs, individual HbA1c goals and contraindications from a few
hundred physician plans, and physicians in outpatient data depart from the guideline often.
Two things fix that here, both opt-in per dataset and recorded with the adapter:

* **guidance**: the prompt carries one line with what the guideline engine (`knowledge`) decides
  for this visit: the individual goal and the drug classes to start, adjust, continue and stop.
  The model then writes the plan (drugs, doses, labs, wording) with those decisions in view.
* **checked targets**: a physician plan whose goal or glucose-lowering classes depart from the
  guideline, or that the safety checker flags where the guideline plan is not flagged, is
  replaced by the guideline plan as the training target. The model is never taught a plan the
  guideline contradicts or the checker flags; the dataset manifest counts each kind.

A model trained this way must be served with the same line: `PromptStyle` travels with the
adapter (`prompt.json` in its folder) and the inference engine reads it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from diaguide.errors import ConfigError, ModelError
from diaguide.prompts.target import ACTION_ORDER, goal_text
from diaguide.records.schema import Plan, Visit, kept_glucose_classes

STYLE_FILE = "prompt.json"


@dataclass(frozen=True)
class PromptStyle:
    """How prompts were rendered for training, so inference renders them the same way."""

    guidance: bool = False  # the guideline line is in the prompt
    notes_facts: bool = False  # a line of the facts read in the notes, with where they were written (docs/notes.md)

    def save(self, folder: str | Path) -> None:
        (Path(folder) / STYLE_FILE).write_text(json.dumps(asdict(self)) + "\n", encoding="utf-8")

    @classmethod
    def of(cls, folder: str | Path | None) -> PromptStyle:
        """The style an adapter folder was trained with (the default style without a prompt.json)."""
        if folder is None or not (Path(folder) / STYLE_FILE).is_file():
            return cls()
        path = Path(folder) / STYLE_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelError(f"{STYLE_FILE} is not JSON ({exc.msg})", source=str(path)) from None
        unknown = set(raw) - {"guidance", "notes_facts"}
        if unknown:
            raise ModelError(f"{STYLE_FILE} has unknown keys {sorted(unknown)}", source=str(path))
        return cls(guidance=bool(raw.get("guidance", False)), notes_facts=bool(raw.get("notes_facts", False)))

    @classmethod
    def of_dataset(cls, folder: str | Path) -> PromptStyle:
        """The style a dataset folder's prompts were rendered in (its manifest.json options; the default style
        for a folder without a manifest, e.g. JSONL written by hand).

        Raises:
            ConfigError: the manifest cannot be read: an adapter trained on it would be served with prompts
                it may not have been trained on.
        """
        path = Path(folder) / "manifest.json"
        if not path.is_file():
            return cls()
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"the dataset manifest is not JSON ({exc})", source=str(path)) from None
        options = manifest.get("options", {}) if isinstance(manifest, dict) else None
        if not isinstance(options, dict):
            raise ConfigError("the dataset manifest has no options object", source=str(path))
        return cls(guidance=bool(options.get("guidance", False)), notes_facts=bool(options.get("notes_facts", False)))


def notes_facts(visit: Visit, region: str = "ada") -> list[str]:
    """The facts the engines read in the visit's notes, for the prompt: `dialysis (past history)`,
    `eGFR 24 2025-05-25 (present illness)` (docs/notes.md)."""
    from diaguide.knowledge.conditions import derive
    from diaguide.knowledge.text_facts import FIELD_NAMES

    names = FIELD_NAMES["zh" if visit.language == "zh" else "en"]
    items: list[str] = []
    for fact, words in derive(visit, region).evidence.items():
        for e in words:
            what = f"{e.kind} {e.value:g}" if e.value is not None else fact
            when = f" {e.date}" if e.value is not None and e.date else ""
            item = f"{what}{when} ({names.get(e.field, e.field)})"
            if item not in items:
                items.append(item)
    return items


def guideline_plan(visit: Visit, region: str) -> Plan:
    from diaguide.knowledge.guideline import recommend

    return recommend(visit, region=region)


def guidance_text(plan: Plan) -> str:
    """`GOAL HbA1c <7.0%; stop glyburide (sulfonylurea); start metformin 500 mg bid (metformin); continue losartan`:
    the guideline plan's decisions in the order the target's MED lines take (`target.ACTION_ORDER`), each drug it
    starts, adjusts or stops with its dose and class (as a MED line writes them), the drugs it keeps by name (the
    visit's medication line has their doses)."""
    parts = [f"GOAL {goal_text(plan.hba1c_goal)}"]
    for action in ACTION_ORDER:
        items: list[str] = []
        for m in plan.medications:
            if m.action != action:
                continue
            if action == "continue":
                item = m.drug
            else:
                dose = " ".join(x for x in (m.dose, m.frequency) if x) if action != "stop" else ""
                item = f"{m.drug} {dose} ({m.drug_class})" if dose else f"{m.drug} ({m.drug_class})"
            if item not in items:
                items.append(item)
        if items:
            parts.append(f"{action} {', '.join(items)}")
    return "; ".join(parts)


# The guideline engine's treatment text lists every medication step ("Plan: continue metformin 500 mg bid;
# start ..."), which the MED lines already say: dropped from a target (it would double the tokens).
_STEPS = re.compile(r"\s*(?:Plan: .*?\.(?!\d)|治疗：[^。]*。)")


def as_target(reference: Plan) -> Plan:
    """The guideline plan as a training target: its treatment text without the list of steps."""
    return reference.model_copy(update={"treatment": _STEPS.sub("", reference.treatment, count=1).strip()})


def _flags(visit: Visit, plan: Plan, region: str) -> set[tuple[str, tuple[str, ...]]]:
    """Warning/critical findings on the drugs a plan gives (rule and drugs, to compare two plans)."""
    from diaguide.safety.checker import check, flags_on_proposed

    flagged = flags_on_proposed(plan, check(visit, plan, region=region))
    return {(f.rule_id, tuple(sorted(d.lower() for d in f.drugs))) for f in flagged}


def checked_target(visit: Visit, physician: Plan, region: str, reference: Plan | None = None) -> tuple[Plan, str]:
    """(target plan, why): the physician's plan, or the guideline's (`as_target`) where the physician's departs.

    `why` is `physician`, `goal` (a different HbA1c goal), `classes` (different glucose-lowering
    classes) or `safety` (the checker flags the physician's plan where it does not flag the
    guideline's).
    """
    reference = reference if reference is not None else guideline_plan(visit, region)
    if physician.hba1c_goal != reference.hba1c_goal:
        return as_target(reference), "goal"
    if kept_glucose_classes(physician) != kept_glucose_classes(reference):
        return as_target(reference), "classes"
    if _flags(visit, physician, region) - _flags(visit, reference, region):
        return as_target(reference), "safety"
    return physician, "physician"
