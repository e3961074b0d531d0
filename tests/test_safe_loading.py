"""A file from elsewhere never runs code: every entry point that loads a file the user names
refuses one that would need pickle's code execution, in one line with exit code 2, before
any compute; the payload each test file carries (``os.mkdir``) never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cifar_files import write_fake_cifar
from conftest import TINY_DATA, TINY_VIT, few_steps, run_script
from helpers import export_command
from malicious_files import write_cifar_batch, write_ckpt, write_npz, write_pth
from vitrepro.training.module import LitClassifier

TINY = [*TINY_DATA, *TINY_VIT, "logger=none", "evaluation=none"]
PICKLED = "holds a Python object of type posix.mkdir: not loaded"
OBJECTS = "holds Python objects: not loaded"
WRITERS = {
    "evil.ckpt": (write_ckpt, PICKLED),
    "evil.pth": (write_pth, PICKLED),
    "evil-legacy.pth": (lambda path, marker: write_pth(path, marker, legacy=True), PICKLED),
    "evil.npz": (write_npz, OBJECTS),
}
CASES = [
    *(("train.py", "model.pretrained", name) for name in WRITERS),
    ("train.py", "resume", "evil.ckpt"),
    *(("evaluate.py", "checkpoint", name) for name in WRITERS),
    *(("inspect_model.py", "checkpoint", name) for name in WRITERS),
]


def refused_in_one_line(result, key: str, path: Path, reason: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {key}={path}: ") and reason in line
    return line


@pytest.mark.parametrize(("script", "key", "name"), CASES, ids=["-".join(c) for c in CASES])
def test_every_entry_point_refuses_a_file_that_runs_code(tmp_path, script, key, name):
    marker = tmp_path / "payload-ran"
    write, reason = WRITERS[name]
    path = write(tmp_path / name, marker)
    args = TINY if script == "train.py" else ["num_classes=10", "data.image_size=16"]
    result = run_script(script, *args, f"{key}={path}", output_dir=tmp_path)
    line = refused_in_one_line(result, key, path, reason)
    assert not marker.exists()
    if reason == PICKLED:  # what to do with a trusted file
        assert f"python -m vitrepro.export {path} --trust-pickle" in line
    assert not list(tmp_path.glob("runs/*")) and not (tmp_path / "inspect").exists()


@pytest.mark.parametrize("name", ["evil.ckpt", "evil.pth", "evil-legacy.pth"])
def test_the_export_refuses_a_file_that_runs_code_unless_trusted(tmp_path, name):
    marker = tmp_path / "payload-ran"
    path = WRITERS[name][0](tmp_path / name, marker)
    result = export_command(path, output_dir=tmp_path)
    line = refused_in_one_line(result, "checkpoint", path, PICKLED)
    assert "--trust-pickle" in line and not marker.exists()
    assert list(tmp_path.iterdir()) == [path]  # no export folder


def test_resume_auto_refuses_a_planted_last_checkpoint(tmp_path):
    marker = tmp_path / "payload-ran"
    run_dir = tmp_path / "runs" / "pinned"
    (run_dir / "checkpoints").mkdir(parents=True)
    last = write_ckpt(run_dir / "checkpoints" / "last.ckpt", marker)
    pinned = ["hydra.run.dir=${paths.output_dir}/runs/pinned", "resume=auto"]
    result = run_script("train.py", *TINY, *pinned, output_dir=tmp_path)
    refused_in_one_line(result, "resume", last, PICKLED)
    assert not marker.exists()


def test_no_setting_turns_the_check_off(tmp_path):
    """torch's own switch back to full unpickling leaves our explicit weights-only load."""
    marker = tmp_path / "payload-ran"
    path = write_ckpt(tmp_path / "evil.ckpt", marker)
    result = run_script(
        "evaluate.py",
        f"checkpoint={path}",
        output_dir=tmp_path,
        env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
    )
    refused_in_one_line(result, "checkpoint", path, PICKLED)
    assert not marker.exists()


def test_a_cifar_batch_that_runs_code_is_refused_before_training(tmp_path):
    marker = tmp_path / "payload-ran"
    folder = write_fake_cifar(tmp_path / "datasets" / "cifar10")
    batch = write_cifar_batch(folder / "data_batch_3", marker)
    data = ["data=cifar10", f"paths.data_root={tmp_path / 'datasets'}", "data.image_size=32"]
    tiny = [*TINY_VIT, "model.patch_size=8", "recipe=finetune", *few_steps(8, 3)]
    result = run_script("train.py", *data, *tiny, output_dir=tmp_path)
    refused_in_one_line(result, "data.root", batch, PICKLED)
    assert not marker.exists()


def test_the_modules_hyperparameters_are_plain_types(tmp_path):
    """Given config objects and NumPy numbers, a checkpoint still holds what the weights-only
    loader reads: plain dicts, lists, strings and numbers."""
    import numpy as np
    from omegaconf import OmegaConf

    recipe = OmegaConf.create({"optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}, "loss": "x"})
    module = LitClassifier(
        torch.nn.Linear(2, 3),
        recipe,
        num_classes=3,
        total_steps=np.int64(4),
        model_config=OmegaConf.create({"arch": "vit", "patch": (4, 4)}),
        image_size=np.int32(16),
    )
    torch.save({"hyper_parameters": dict(module.hparams)}, tmp_path / "hparams.ckpt")
    loaded = torch.load(tmp_path / "hparams.ckpt", weights_only=True)["hyper_parameters"]
    assert loaded["recipe"] == {"optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}, "loss": "x"}
    assert loaded["model_config"] == {"arch": "vit", "patch": [4, 4]}
    assert type(loaded["total_steps"]) is int and type(loaded["image_size"]) is int
