"""`diaguide doctor`: one line per check, ok/warn/FAIL with a reason; exit 1 only when the job cannot run."""

from __future__ import annotations

import json

import pytest

from diaguide.cli import main

NAMES = {"python", "torch", "cpu", "llama.cpp", "database", "chromium", "base model", "engine"}


def _checks(capsys, *args) -> tuple[int, dict[str, dict]]:
    status = main(["doctor", "--json", *args])
    rows = json.loads(capsys.readouterr().out)
    return status, {row["name"]: row for row in rows}


def test_the_shipped_install_without_starting_the_engine(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DIAGUIDE_ADAPTER", raising=False)
    monkeypatch.delenv("DIAGUIDE_MODELS", raising=False)
    status, checks = _checks(capsys, "--no-probe")
    assert set(checks) >= NAMES
    assert status == 0
    assert checks["python"]["status"] == "ok" and checks["base model"]["status"] == "ok"
    assert "sha256" in checks["base model"]["detail"]
    # the shipped adapters, each with the hash of its weights
    lora = checks["adapter smollm2-135m-lora"]
    assert lora["status"] == "ok" and lora["detail"].startswith("LORA") and "sha256" in lora["detail"]
    assert checks["adapter smollm2-135m-ptuning_v2"]["detail"].startswith("PREFIX_TUNING")
    assert "adapter smollm2-135m-lora" in checks["engine"]["detail"]
    for flag in ("avx2",):  # every machine this project runs on has it
        assert flag in checks["cpu"]["detail"]


def test_without_the_adapter_folder_the_base_model_answers_and_doctor_says_so(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("DIAGUIDE_ADAPTER", raising=False)
    monkeypatch.setenv("DIAGUIDE_MODELS", str(tmp_path / "no-models-here"))
    status, checks = _checks(capsys, "--no-probe")
    assert status == 0  # it still works, unfine-tuned
    assert checks["adapter"]["status"] == "warn" and "base model answers" in checks["adapter"]["detail"]
    assert "the base model" in checks["engine"]["detail"]


def test_a_named_adapter_folder_that_is_missing_fails(capsys, monkeypatch, tmp_path) -> None:
    missing = tmp_path / "gone"
    monkeypatch.setenv("DIAGUIDE_ADAPTER", str(missing))
    status, checks = _checks(capsys, "--no-probe")
    assert status == 1
    assert checks["engine"]["status"] == "FAIL" and str(missing) in checks["engine"]["detail"]


def test_plain_output_is_one_line_per_check(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DIAGUIDE_ADAPTER", raising=False)
    assert main(["doctor", "--no-probe"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split()[0] in ("ok", "warn", "FAIL") for line in lines)


@pytest.mark.slow
def test_the_engine_starts_and_generates_in_a_child_process(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DIAGUIDE_ADAPTER", raising=False)
    monkeypatch.delenv("DIAGUIDE_MODELS", raising=False)
    status, checks = _checks(capsys)
    assert status == 0, checks
    engine = checks["engine"]
    assert engine["status"] == "ok" and "tokens generated" in engine["detail"] and "child process" in engine["detail"]
