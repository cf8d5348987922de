"""Narratives computed ahead of time, never inside a hook.

The CDS Hooks spec expects an answer in about 500 ms; a language model's narrative takes
seconds on a CPU. So a hook only *asks* for the narrative: one background worker computes
it and stores it by the record's hash; the card links to it until it is ready. The narrator
is pluggable (`DIAGUIDE_NARRATOR=module:function`, called as `fn(visit, plan) -> str`); the
default renders the checked guideline plan as text until the inference engine is wired in.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from diaguide.errors import ConfigError
from diaguide.records.schema import Plan, Visit
from diaguide.service.metrics import MODEL_SECONDS
from diaguide.service.store import Narrative, Store

log = logging.getLogger("diaguide.service")

Narrator = Callable[[Visit, Plan], str]


def plan_narrator(visit: Visit, plan: Plan) -> str:
    """The default narrator: the checked plan written out in the visit's language."""
    try:
        from diaguide.prompts.target import plan_to_text

        return plan_to_text(plan, visit.language)
    except ImportError:
        lines = [plan.treatment] if plan.treatment else []
        lines += [f"{m.action} {m.drug} {m.dose or ''} {m.frequency or ''}".strip() for m in plan.medications]
        lines += [f"lab: {lab.name or lab.loinc}" for lab in plan.labs]
        lines += [f"caution: {p}" for p in plan.prompts]
        return "\n".join(lines)


def load_narrator(spec: str) -> Narrator:
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot load narrator {spec!r}: {exc}", field="DIAGUIDE_NARRATOR") from None


class NarrativeCache:
    """Schedules narratives on one background thread and serves them from the store."""

    def __init__(self, store: Store, narrator: Narrator, model_version: str):
        self.store = store
        self.narrator = narrator
        self.model_version = model_version
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def get(self, record_hash: str) -> Narrative | None:
        return self.store.get(Narrative, record_hash)

    def ensure(self, record_hash: str, visit: Visit, plan: Plan) -> Narrative | None:
        """The narrative when ready; otherwise schedule it (once per process) and return None."""
        row = self.get(record_hash)
        if row is not None and row.status == "ready":
            return row
        with self._lock:
            if record_hash in self._pending:
                return None
            self._pending.add(record_hash)
            if self._pool is None:
                # one worker: a model run uses every core it gets; queueing beats thrashing
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="narrative")
            self._pool.submit(self._run, record_hash, visit, plan)
        return None

    def _run(self, record_hash: str, visit: Visit, plan: Plan) -> None:
        start = time.perf_counter()
        try:
            text = self.narrator(visit, plan)
            seconds = time.perf_counter() - start
            MODEL_SECONDS.observe(seconds)
            self.store.put_narrative(
                record_hash, "ready", text, model_version=self.model_version, duration_ms=seconds * 1000
            )
        except Exception as exc:  # a narrator failure must not take the service down; the card says so
            log.warning("narrative failed", extra={"event": "narrative_failed", "error": type(exc).__name__})
            self.store.put_narrative(record_hash, "failed", None, model_version=self.model_version)
        finally:
            with self._lock:
                self._pending.discard(record_hash)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until queued narratives are done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return
            time.sleep(0.02)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
