"""The CLI contract: subcommands dispatch, user errors are one line and exit non-zero."""

import json

import pytest

from diaguide import cli


def test_schema_prints_the_visit_contract(capsys):
    assert cli.main(["schema", "Visit"]) == 0
    schema = json.loads(capsys.readouterr().out)
    for field in ("visit_id", "patient_id", "date", "patient", "labs", "medications", "history", "language"):
        assert field in schema["properties"]


def test_unknown_schema_model_is_one_line_error(capsys):
    assert cli.main(["schema", "Nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Nope" in err[0] and "Traceback" not in err[0]


def test_every_command_resolves_to_a_function():
    for command, target in cli.COMMANDS.items():
        fn = cli._resolve(target)
        assert callable(fn), command


def test_unknown_command_exits_nonzero():
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code != 0
