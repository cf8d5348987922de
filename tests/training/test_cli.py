"""`diaguide train` and `diaguide export` through the CLI: bad input is one line on stderr, exit 2."""

from diaguide.cli import main


def test_train_with_a_bad_override_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("method:\n  name: lora\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "train.lr=fast"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.lr" in err and err.startswith("diaguide train: error:")
    assert not (tmp_path / "run").exists()


def test_export_of_a_folder_without_adapter_is_one_line(tmp_path, capsys):
    assert main(["export", "--adapter", str(tmp_path), "--out", str(tmp_path / "m"), "--merge"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no adapter_config.json" in err
