"""The model's narrative for the physician page and CDS cards (`DIAGUIDE_NARRATOR`).

The service computes it ahead of time, never inside a hook. What the model proposes is shown
with every safety finding on it: the narrative is the checked model plan written out, followed
by the findings, so a flagged medication never appears without its finding.
"""

from __future__ import annotations

from diaguide.records.schema import Plan, Visit

_NO_SUGGESTION = {
    "en": "The model gave no usable suggestion for this record; rely on the guideline plan.",
    "zh": "模型未能给出可用建议；请以指南方案为准。",
}
_PARTIAL = {
    "en": "The model's answer was cut off or had lines that could not be read; it may be incomplete.",
    "zh": "模型回答被截断或有无法识别的行，可能不完整。",
}


def model_narrator(visit: Visit, plan: Plan) -> str:
    """Narrative from the default model (the shipped LoRA adapter, else the base model).

    `plan` (the guideline's or the submitted plan) is not passed to the model: the model sees the
    record only, as it was trained.
    """
    from diaguide.inference.engine import recommend
    from diaguide.inference.registry import get_engine
    from diaguide.knowledge.regions import resolve_region
    from diaguide.prompts.target import plan_to_text

    lang = visit.language
    result = recommend(visit, get_engine(), region=resolve_region(None))
    if result.status == "no_suggestion" or result.plan is None:
        return _NO_SUGGESTION[lang]
    lines = [] if result.status == "ok" else [_PARTIAL[lang]]
    # the target format keeps two cautions, cut short: here every one is written whole, as the findings are
    lines.append(plan_to_text(result.plan.model_copy(update={"prompts": []}), lang).rstrip())
    lines += [f"CAUTION: {p}" for p in result.plan.prompts]
    for f in result.plan.findings:
        drugs = ", ".join(f.drugs)
        lines.append(f"FINDING {f.severity.upper()}: {drugs + ': ' if drugs else ''}{f.message} ({f.source})")
    version = f" · adapter {result.adapter_version}" if result.adapter_version else ""
    lines.append(f"— {result.model}{version} · {result.engine}")
    return "\n".join(lines)
