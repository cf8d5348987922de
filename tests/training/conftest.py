"""Fixtures for the training tests: tiny offline models, a char-level tokenizer, a small dataset."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib
from tiny_models import ARCHS, save_tiny, tiny_tokenizer, write_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A saved tiny model + tokenizer folder per architecture."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: save_tiny(root / arch, arch) for arch in ARCHS}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is 10-100x faster than two that wait
    on each other whenever other processes hold a core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
