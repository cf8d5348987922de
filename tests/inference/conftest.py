"""Fixtures for the engine tests: the training tests' tiny models and tokenizer, reused rather than copied.

tests/training/tiny_models.py builds them; it is loaded here by path (test folders are not packages and the
suite runs with --import-mode=importlib), so the whole suite has one definition of a tiny model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from diaguide.records.schema import Visit

_spec = importlib.util.spec_from_file_location(
    "diaguide_tests_tiny_models", Path(__file__).resolve().parents[1] / "training" / "tiny_models.py"
)
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)


def lively_llama(seed: int = 0, vocab: int = 128):
    """A tiny random Llama with a wide initialisation: the default (std 0.02) makes every greedy step pick the
    same token, so tests comparing outputs would compare nothing."""
    from transformers import AutoModelForCausalLM

    cfg = tiny.tiny_config("llama", vocab=vocab)
    cfg.initializer_range = 0.3
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").eval()


@pytest.fixture(scope="session")
def tok():
    return tiny.tiny_tokenizer()


@pytest.fixture(scope="session")
def lively():
    return lively_llama()


@pytest.fixture(scope="session")
def make_lively():
    """`lively_llama` itself, for tests that need fresh copies (adapters wrap a model in place)."""
    return lively_llama


@pytest.fixture(scope="session")
def tiny_models():
    """The shared tiny-model helpers module (tests/training/tiny_models.py)."""
    return tiny


def ckd_visit(language: str = "en") -> Visit:
    """80 years old, eGFR 25: glyburide is flagged (CKD and older adult)."""
    return Visit.model_validate(
        {
            "visit_id": "v1",
            "patient_id": "p1",
            "date": "2025-03-01",
            "language": language,
            "patient": {"age": 80, "sex": "female", "weight_kg": 60},
            "diagnoses": [{"system": "icd10", "code": "E11.9"}],
            "labs": [
                {"loinc": "33914-3", "value": 25, "date": "2025-02-20"},
                {"loinc": "4548-4", "value": 8.4, "date": "2025-02-20"},
            ],
            "medications": [{"drug": "linagliptin", "dose": "5 mg", "frequency": "qd", "since": "2022-01-01"}],
        }
    )


@pytest.fixture(scope="session")
def ckd():
    """`ckd_visit(language="en")`: an 80-year-old with eGFR 25, on linagliptin."""
    return ckd_visit
