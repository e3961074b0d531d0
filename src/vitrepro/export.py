"""A checkpoint as safetensors: ``python -m vitrepro.export <run dir or file> [--out DIR]``.

Writes ``model.safetensors`` (the weights: a JSON header and raw bytes, nothing to unpickle)
and, for our checkpoints, ``config.json`` (model config, number of classes, image size): the
layout timm and the Hugging Face hub use. ``model.pretrained``, ``src/evaluate.py`` and
``src/inspect_model.py`` take the folder (or its ``model.safetensors``) and give the logits of
the checkpoint it came from. A torch state dict (``.pth``) becomes a ``model.safetensors`` alone.

The checkpoint is read weights-only. ``--trust-pickle`` (``trust_pickle=True``) unpickles a
file that the weights-only loader refuses in full, after one warning line: only for a file
whose source is trusted, since any code it carries runs then.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import torch

from vitrepro.config.errors import ConfigError, RefusedFileError
from vitrepro.config.plain_types import plain
from vitrepro.files import write_file_atomic, write_json_atomic
from vitrepro.models.weight_files import (
    EXPORT_CONFIG,
    EXPORT_WEIGHTS,
    METADATA_KEYS,
    TORCH_SUFFIXES,
    lightning_weights,
    nested_state_dict,
    resolve_checkpoint,
)
from vitrepro.safe_load import load_torch

log = logging.getLogger(__name__)


def export_checkpoint(
    checkpoint: str | Path, out: str | Path | None = None, trust_pickle: bool = False
) -> Path:
    """Write ``checkpoint`` (a run directory, one of our ``.ckpt`` files or a torch state
    dict) as ``model.safetensors`` (+ ``config.json`` for ours) in ``out`` (by default
    ``default_folder``); returns ``out``."""
    path = resolve_checkpoint(checkpoint, key="checkpoint")
    if path.suffix not in TORCH_SUFFIXES:
        raise ConfigError("checkpoint", path, "read without pickle already; use it as it is")
    state = _read(path, trust_pickle)
    if not isinstance(state, dict):
        raise ConfigError("checkpoint", path, "holds no state dict; nothing to export")
    if "state_dict" in state and "hyper_parameters" in state:  # a Lightning checkpoint
        weights, config = lightning_weights(state), _config(state["hyper_parameters"], path)
    else:
        weights, config = nested_state_dict(state), None
    out = Path(out) if out else default_folder(Path(checkpoint).expanduser())
    _write_safetensors(weights, out / EXPORT_WEIGHTS, path)
    if config:
        write_json_atomic(out / EXPORT_CONFIG, config)
    return out


def _read(path: Path, trust_pickle: bool) -> Any:
    try:
        return load_torch(path, "checkpoint")
    except RefusedFileError:
        if not trust_pickle:
            raise
    log.warning(f"{path}: unpickling in full (--trust-pickle): any code it carries runs now")
    return torch.load(path, map_location="cpu", weights_only=False)


def _config(hparams: Any, path: Path) -> dict[str, Any] | None:
    """Model config, classes and image size as plain JSON values; ``None`` when the
    checkpoint does not record them (a LightningModule that is not ours)."""
    try:
        config = {name: plain(hparams.get(name)) for name in METADATA_KEYS}
    except (TypeError, AttributeError) as error:
        raise ConfigError("checkpoint", path, f"its hyper-parameters: {error}") from None
    return config if config["model_config"] else None


def default_folder(checkpoint: Path) -> Path:
    """``<run dir>/export`` for a run directory, else ``<file stem>-export`` beside the file."""
    if checkpoint.is_dir():
        return checkpoint / "export"
    return checkpoint.parent / f"{checkpoint.stem}-export"


def _write_safetensors(weights: dict[str, Any], target: Path, source: Path) -> None:
    """Write through a temporary file (``write_file_atomic``): no half export."""
    from safetensors.torch import save_file

    strays = [k for k, v in weights.items() if not isinstance(v, torch.Tensor)]
    if strays or not weights:
        detail = f"{strays[0]!r} is not a tensor" if strays else "it holds no weights"
        raise ConfigError("checkpoint", source, f"not a state dict ({detail})")
    # safetensors stores each tensor's own bytes: no views of shared storage
    tensors = {k: v.detach().contiguous().clone() for k, v in weights.items()}
    write_file_atomic(target, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))


def main(argv: list[str] | None = None) -> int:
    """The command: one line on success, one error line and exit code 2 on a user mistake."""
    from vitrepro.config.cli import OneLineErrors

    parser = OneLineErrors(prog="python -m vitrepro.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run directory, one of its .ckpt files or a .pth")
    parser.add_argument("--out", default=None, help="output folder (default: beside the input)")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="unpickle in full a file the weights-only loader refuses (runs any code it holds)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)
    try:
        out = export_checkpoint(args.checkpoint, args.out, args.trust_pickle)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an --out that cannot be a folder or written, a full disk
        where = error.filename or args.out or "the export folder"
        print(f"error: could not write {where}: {error.strerror}; give --out a writable folder",
              file=sys.stderr)  # fmt: skip
        return 2
    written = [name for name in (EXPORT_WEIGHTS, EXPORT_CONFIG) if (out / name).is_file()]
    print(f"{' and '.join(written)} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
