"""The engine probe: a child process that crashes is a 'no' with the signal and the CPU, never the caller's death."""

from __future__ import annotations

import sys

from diaguide.inference.probe import probe_engine
from diaguide.machine import cpu

SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]


def test_a_crashing_engine_is_reported_with_its_signal_and_cpu() -> None:
    result = probe_engine(command=SEGFAULT)
    assert result.ok is False
    assert "SIGSEGV (signal 11)" in result.reason and cpu()["model"] in result.reason


def test_an_engine_that_cannot_load_gives_its_error_line(tmp_path) -> None:
    # an adapter folder that is not one: the child's own one-line error comes back
    result = probe_engine(adapter=str(tmp_path), timeout=120)
    assert result.ok is False
    assert "no adapter_config.json" in result.reason


def test_a_hung_engine_times_out() -> None:
    result = probe_engine(command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout=1)
    assert result.ok is False and "did not answer within 1 s" in result.reason
