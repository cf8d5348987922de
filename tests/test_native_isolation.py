"""The child-process runner of tests/conftest.py: a native crash is one failing test that names the engine, the
signal and the CPU, and every other test still runs."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    return pytester


def test_a_segfault_in_native_code_is_one_failure_and_the_run_goes_on(suite) -> None:
    suite.makepyfile(
        test_crash="""
        import ctypes
        import pytest

        @pytest.mark.native("llama.cpp")
        def test_crashes():
            ctypes.string_at(0)  # reads address 0: SIGSEGV, as a bad kernel would

        @pytest.mark.native("llama.cpp")
        def test_native_but_fine():
            assert sum(range(4)) == 6

        @pytest.mark.native("llama.cpp")
        def test_native_and_wrong():
            assert 1 == 2

        def test_after_the_crash():
            assert True
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    text = result.stdout.str()
    assert "native crash: llama.cpp killed by SIGSEGV (signal 11)" in text
    assert "test_crash.py::test_crashes" in text
    from diaguide.machine import cpu

    assert cpu()["model"] in text  # the CPU it crashed on is named
    assert "assert 1 == 2" in text  # an ordinary failure in a child keeps its own report


def test_loading_llama_outside_a_native_test_is_refused(suite) -> None:
    suite.makepyfile(
        test_unmarked="""
        from diaguide.inference.native import load_llama

        def test_loads():
            load_llama("/nonexistent.gguf")
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mark it @pytest.mark.native('llama.cpp')*"])
