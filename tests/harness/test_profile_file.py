"""Your own data: the few-steps warning, and --profile FILE.yaml validated like the built-in profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from osma_bench.cli import main
from osma_bench.errors import OsmaError
from osma_bench.harness.config import load_profile
from osma_bench.harness.profile_file import MAX_BYTES, is_profile_file, load_profile_file
from osma_bench.harness.runner import few_steps_warning

BUILTIN = Path(__file__).resolve().parents[2] / "osma_bench" / "harness" / "profiles"


def _write(tmp_path, data, name="mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["smoke", "mini", "paper"])
def test_builtin_profiles_load_as_files(name):
    assert load_profile_file(BUILTIN / f"{name}.yaml") == load_profile(name)


@pytest.mark.parametrize(("change", "message"), [
    ({"per_class": 0}, "mine.yaml per_class: expected an int >= 1, got 0"),
    ({"epochs": 2.5}, "mine.yaml epochs: expected an int >= 1, got 2.5"),
    ({"epochs": True}, "mine.yaml epochs: expected an int >= 1, got true"),
    ({"steps_per_epoch": -1}, "mine.yaml steps_per_epoch: expected an int >= 1 or null, got -1"),
    ({"lr": "fast"}, "mine.yaml lr: expected a float in (0, 10], got 'fast'"),
    ({"lr_gamma": 1.5}, "mine.yaml lr_gamma: expected a float in (0, 1], got 1.5"),
    ({"image_size": 4}, "mine.yaml image_size: expected an int >= 8, got 4"),
    ({"select_on": "test_accuracy"}, "mine.yaml select_on: expected one of 'val_accuracy', 'last'"),
    ({"width": {"a": 1}}, "mine.yaml: width must be a number, string, boolean, null or a list of those"),
    ({"name": 3}, "mine.yaml: name must be a string"),
])
def test_bad_values_are_one_clear_error(tmp_path, change, message):
    """The built-in profiles' keys are checked by their declarations (one message form)."""
    profile = {**load_profile("mini"), **change}
    with pytest.raises(OsmaError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        load_profile_file(_write(tmp_path, profile))


def test_a_profile_file_sets_the_budget_and_declared_method_keys(tmp_path):
    from osma_bench.harness.config import resolve
    from osma_bench.methods.base_cnn import BaseMethod
    from osma_bench.methods.pose import POSEMethod

    path = _write(tmp_path, {**load_profile("mini"), "image_size": 64, "width": 16, "aug_lr": 0.005})
    values = load_profile_file(path)
    base = resolve(BaseMethod, str(path), profile_values=values)
    assert base.values["image_size"] == 64 and base.sources["image_size"] == f"profile {path}"
    assert base.values["width"] == 16 and "aug_lr" not in base.values  # Base does not declare aug_lr
    assert resolve(POSEMethod, str(path), profile_values=values).values["aug_lr"] == 0.005


def test_missing_keys_bad_yaml_size_and_absence(tmp_path):
    profile = load_profile("mini")
    del profile["lr_step"], profile["epochs"]
    with pytest.raises(OsmaError, match="missing key\\(s\\) epochs, lr_step"):
        load_profile_file(_write(tmp_path, profile))
    with pytest.raises(OsmaError, match="not valid YAML"):
        load_profile_file(_write(tmp_path, "a: [1, 2\nb: {"))
    with pytest.raises(OsmaError, match="expected a mapping"):
        load_profile_file(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(OsmaError, match="not valid YAML \\(could not determine a constructor"):
        load_profile_file(_write(tmp_path, "!!python/object/apply:os.system ['true']\n"))  # safe_load refuses
    with pytest.raises(OsmaError, match="larger than 64 KiB"):
        load_profile_file(_write(tmp_path, "# x\n" * (MAX_BYTES // 4 + 1)))
    with pytest.raises(OsmaError, match="not found"):
        load_profile_file(tmp_path / "absent.yaml")


def test_profile_names_and_files_are_told_apart(tmp_path):
    assert not is_profile_file("mini") and not is_profile_file("paper")
    assert is_profile_file("mine.yaml") and is_profile_file(str(tmp_path / "budget"))


def test_cli_refuses_a_bad_profile_file_in_one_line(synthetic, tmp_path, capsys):
    bad = _write(tmp_path, {**load_profile("mini"), "per_class": -2})
    assert main(["run", "--method", "base", "--data", str(synthetic), "--profile", str(bad), "--out",
                 str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: profile file {bad} per_class: expected an int >= 1, got -2"]
    assert not (tmp_path / "out").exists()


def test_few_steps_per_epoch_warn_on_console_and_in_log(synthetic, tmp_path, capsys):
    assert few_steps_warning(10, 12) is None
    assert "only 1 optimiser step(s) per epoch (12 in all)" in few_steps_warning(1, 12)
    # mini's 16 images per class per step on a training set of 8 images per class: 1 step per epoch
    assert main(["run", "--method", "base", "--data", str(synthetic), "--profile", "mini", "--epochs", "1",
                 "--device", "cpu", "--out", str(tmp_path), "--no-progress", "--no-verify",
                 "--set", "num_threads=1", "--set", "width=8"]) == 0
    err = capsys.readouterr().err
    assert "warning: only 1 optimiser step(s) per epoch (1 in all)" in err
    assert "warning: only 1 optimiser step(s)" in (tmp_path / "syn/base/split1/seed0/log.txt").read_text()


def test_run_with_a_profile_file(synthetic, tmp_path):
    import json

    path = _write(tmp_path, {**load_profile("smoke"), "epochs": 1, "width": 8})
    assert main(["run", "--method", "base", "--data", str(synthetic), "--profile", str(path), "--device", "cpu",
                 "--out", str(tmp_path / "out"), "--no-progress", "--no-verify", "--set", "num_threads=1"]) == 0
    record = json.loads((tmp_path / "out/syn/base/split1/seed0/run.json").read_text())
    assert record["status"] == "complete" and record["config"]["epochs"] == 1
    assert record["hyperparameters"]["width"] == {"value": 8, "source": f"profile {path}", "kind": "method"}
