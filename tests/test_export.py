"""Exports: ``python -m vitrepro.export`` writes model.safetensors + config.json, and every
entry point that takes a checkpoint takes the export with the checkpoint's logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from conftest import TINY_DATA, TINY_VIT, run_script
from helpers import export_command
from vitrepro.config.errors import ConfigError
from vitrepro.export import export_checkpoint, main
from vitrepro.models import build_model
from vitrepro.models.build import model_from_checkpoint
from vitrepro.training.checkpointing import resume_from

SHOTS = ["evaluation.shots=[1,2]", "evaluation.seeds=1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    result = run_script("train.py", *TINY_DATA, *TINY_VIT, "logger=none", "evaluation=none",
                        output_dir=out)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = result.run_dirs()
    return run


def images(size: int) -> torch.Tensor:
    return torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))


def logits(checkpoint: Path | str) -> torch.Tensor:
    """The classifier's logits as evaluate and inspect build it, trained head kept."""
    model, size = model_from_checkpoint(checkpoint, {}, None, 0, head="keep")
    with torch.no_grad():
        return model.eval()(images(size))


def test_export_writes_safetensors_and_config_with_the_checkpoints_logits(run_dir, tmp_path):
    result = export_command(run_dir, output_dir=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]
    export = run_dir / "export"
    assert result.stdout.strip() == f"model.safetensors and config.json in {export}"
    config = json.loads((export / "config.json").read_text())
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert config == {k: ckpt["hyper_parameters"][k] for k in config}
    assert set(config) == {"model_config", "num_classes", "image_size"}
    weights = load_file(export / "model.safetensors")
    assert weights.keys() == {k.removeprefix("model.") for k in ckpt["state_dict"]}
    reference = logits(run_dir)
    assert reference.abs().min() > 0  # a trained head, not the fresh zero classifier
    assert torch.equal(logits(export), reference)
    assert torch.equal(logits(export / "model.safetensors"), reference)
    # model.pretrained: the export into the same model, head kept, gives the same logits
    model_cfg = {**config["model_config"], "pretrained": str(export), "pretrained_head": "keep"}
    tuned = build_model(model_cfg, config["num_classes"], config["image_size"]).eval()
    with torch.no_grad():
        assert torch.equal(tuned(images(config["image_size"])), reference)


def test_a_run_whose_model_config_kept_recipe_tables_still_loads(run_dir, tmp_path):
    """Runs made when model configs carried per-recipe lr/weight-decay tables (now in the
    recipes) record them in their model config: evaluate and inspect must still build them."""
    export = export_checkpoint(run_dir, tmp_path / "old_export")
    config = json.loads((export / "config.json").read_text())
    config["model_config"] |= {"lr": {"study_tiny": 0.001}, "weight_decay": {"study_tiny": 0.05}}
    (export / "config.json").write_text(json.dumps(config))
    assert torch.equal(logits(export), logits(run_dir))
    config["model_config"]["patch_grid"] = 4  # a setting no version of the model has
    (export / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"model\.patch_grid=4: not a setting of the vit"):
        logits(export)


def test_an_inspected_export_is_titled_with_the_model_it_holds(run_dir, tmp_path):
    from vitrepro.inspection.report import display_name

    export = export_checkpoint(run_dir, tmp_path / "named")
    config = json.loads((export / "config.json").read_text())
    config["model_config"]["name"] = "ViT-micro/8"
    (export / "config.json").write_text(json.dumps(config))
    assert display_name(str(export), {"name": "ViT-B/16"}) == "ViT-micro/8 from named"


def test_evaluate_inspect_and_train_take_the_export(run_dir, tmp_path):
    export = export_checkpoint(run_dir, tmp_path / "shared")
    scores = [
        run_script("evaluate.py", f"checkpoint={source}", *SHOTS, output_dir=tmp_path)
        for source in (run_dir, export)
    ]
    assert all(s.returncode == 0 for s in scores), scores[-1].stderr[-3000:]
    assert json.loads(scores[0].stdout) == json.loads(scores[1].stdout)
    inspected = run_script("inspect_model.py", f"checkpoint={export}", "num_images=4",
                           "rollout_images=2", output_dir=tmp_path)  # fmt: skip
    assert inspected.returncode == 0, inspected.stderr[-3000:]
    numbers = json.loads((tmp_path / "inspect" / "shared" / "inspection.json").read_text())
    assert numbers["grid"] == [4, 4] and numbers["image_size"] == 16
    tiny = [*TINY_DATA, *TINY_VIT, "logger=none", "evaluation=none", "recipe.steps=2"]
    tuned = run_script("train.py", *tiny, f"model.pretrained={export}", output_dir=tmp_path)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    assert tuned.summary()["config"]["model"]["pretrained"] == str(export)


def test_trust_pickle_converts_a_refused_checkpoint_after_one_warning(run_dir, tmp_path):
    """A checkpoint whose hyper-parameters are OmegaConf objects (as other code saves them)
    is refused by the weights-only loader; ``--trust-pickle`` converts it."""
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    state["hyper_parameters"] = OmegaConf.create(state["hyper_parameters"])
    foreign = tmp_path / "foreign.ckpt"
    torch.save(state, foreign)
    refused = export_command(foreign, output_dir=tmp_path)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: checkpoint={foreign}: holds a Python object of type omegaconf.")
    assert not (tmp_path / "foreign-export").exists()
    trusted = export_command(foreign, "--trust-pickle", output_dir=tmp_path)
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    (warning,) = trusted.stderr.strip().splitlines()
    assert warning.startswith(f"warning: {foreign}: unpickling in full (--trust-pickle)")
    assert torch.equal(logits(tmp_path / "foreign-export"), logits(run_dir))


def test_a_state_dict_exports_as_safetensors_alone(tmp_path):
    state = {"cls_token": torch.randn(1, 1, 8), "blocks.0.norm1.weight": torch.randn(8)}
    torch.save({"state_dict": state}, tmp_path / "weights.pth")
    out = export_checkpoint(tmp_path / "weights.pth")
    assert out == tmp_path / "weights-export" and not (out / "config.json").exists()
    exported = load_file(out / "model.safetensors")
    assert exported.keys() == state.keys()
    assert all(torch.equal(exported[k], v) for k, v in state.items())


def test_an_unwritable_out_is_one_line_and_exit_2_with_nothing_written(tmp_path, capsys):
    torch.save({"state_dict": {"w": torch.randn(2)}}, tmp_path / "weights.pth")
    (tmp_path / "a_file").write_text("not a folder")
    out = tmp_path / "a_file" / "export"
    assert main([str(tmp_path / "weights.pth"), "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line.startswith(f"error: could not write {out}") and "give --out a writable folder" in line
    )
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_an_export_is_no_run_to_resume(run_dir, tmp_path):
    export = export_checkpoint(run_dir, tmp_path / "shared")
    with pytest.raises(ConfigError, match=r"^resume=.*weights only, no training state"):
        resume_from(str(export), tmp_path)
