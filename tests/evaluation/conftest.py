"""Fixtures of the evaluation tests: a small seeded dataset; machine info kept cheap."""

from __future__ import annotations

from pathlib import Path

import pytest

from diaguide.cohort.generate import cohort_command
from diaguide.prompts.dataset import build_dataset


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder from a 12-patient mixed-language cohort, 30% of patients held out."""
    root = tmp_path_factory.mktemp("eval-data")
    cohort_command(patients=12, seed=3, lang="mixed", out=str(root / "cohort"), agreement=False)
    build_dataset(root / "cohort", root / "dataset", seed=3, test_frac=0.3)
    return root / "dataset"


@pytest.fixture(autouse=True)
def _fast_machine_info(monkeypatch: pytest.MonkeyPatch) -> None:
    # bench.machine_info imports torch and transformers (~14 s here); these tests do not need them
    monkeypatch.setattr("diaguide.evaluation.run._machine", lambda: {"processor": "test", "cpu_count": 1})
