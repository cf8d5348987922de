"""The model's narrative for the physician page and CDS cards (`DIAGUIDE_NARRATOR`).

The service computes it ahead of time, never inside a hook. What the model proposes is shown
with every safety finding on it: the narrative is the checked model plan written out, followed
by the findings, so a flagged medication never appears without its finding.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from diaguide.records.schema import Plan, Visit

_NO_SUGGESTION = {
    "en": "The model gave no usable suggestion for this record; rely on the guideline plan.",
    "zh": "模型未能给出可用建议；请以指南方案为准。",
}
_PARTIAL = {
    "en": "The model's answer was cut off or had lines that could not be read; it may be incomplete.",
    "zh": "模型回答被截断或有无法识别的行，可能不完整。",
}


_ENGINE_DOWN = {
    "en": "The model engine could not start on this server ({reason}); the guideline plan and its checks stand.",
    "zh": "本服务器上模型引擎无法启动（{reason}）；指南方案及其安全检查照常提供。",
}


class EngineGate:
    """Whether the model engine may be loaded in this process: asked once, in a child process, before the first
    narrative (`probe.py`), so an engine that crashes (llama.cpp on AMX, docs/llamacpp.md) never takes the
    service down with it; the guideline and safety cards do not depend on it."""

    def __init__(self, probe: Callable[[], object] | None = None):
        self._probe = probe
        self._result = None
        self._started = False
        self._done = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Probe in the background (once); the service calls this at startup."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="engine-probe", daemon=True).start()

    def _run(self) -> None:
        try:
            if self._probe is None:
                from diaguide.inference.probe import probe_engine

                self._result = probe_engine()
            else:
                self._result = self._probe()
        finally:
            self._done.set()

    def readiness(self) -> dict:
        """{"ok": True/False, or None while the probe runs, "reason": one line} for /readyz."""
        if not self._started:
            return {"ok": None, "reason": "not probed: the engine loads on first use"}
        if not self._done.is_set():
            return {"ok": None, "reason": "starting: the engine is being probed in a child process"}
        if self._result is None:
            return {"ok": False, "reason": "the probe itself failed"}
        return {"ok": bool(self._result.ok), "reason": self._result.reason}

    def wait(self, timeout: float | None = None) -> str | None:
        """None when the engine may be used (or was never probed), else why not."""
        if not self._started:
            return None
        if not self._done.wait(timeout):
            return "the engine probe did not finish"
        state = self.readiness()
        return None if state["ok"] else state["reason"]


GATE = EngineGate()


def model_narrator(visit: Visit, plan: Plan) -> str:
    """Narrative from the default model (the shipped LoRA adapter, else the base model).

    `plan` (the guideline's or the submitted plan) is not passed to the model: the model sees the
    record only, as it was trained. When the service's probe found that the engine cannot start, the narrative
    says so and nothing is loaded.
    """
    down = GATE.wait()
    if down is not None:
        return _ENGINE_DOWN[visit.language].format(reason=down)
    from diaguide.inference.pipeline import recommend
    from diaguide.inference.registry import generator_for
    from diaguide.knowledge.regions import resolve_region
    from diaguide.prompts.target import plan_to_text

    lang = visit.language
    result = recommend(visit, generator_for(), region=resolve_region(None))
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


def _prepare() -> None:
    GATE.start()


def _readiness() -> dict:
    return GATE.readiness()


# the service calls these (app.py): probe at startup, and the engine's state in /readyz
model_narrator.prepare = _prepare  # type: ignore[attr-defined]
model_narrator.readiness = _readiness  # type: ignore[attr-defined]
