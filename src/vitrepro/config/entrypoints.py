"""Console commands, installed by ``pip install -e .`` (``[project.scripts]`` in pyproject.toml):
``vitrepro-train model=vit_b16`` is ``python src/train.py model=vit_b16``, and so on for every
entry script of ``src/``. Each runs its script as ``__main__``, so Hydra finds ``conf/`` beside it
and the command line behaves the same, tab completion included (the checkout is the install).
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable

from vitrepro.files import PROJECT_ROOT


def _script(name: str) -> Callable[[], None]:
    def main() -> None:
        sys.argv[0] = str(PROJECT_ROOT / "src" / f"{name}.py")
        runpy.run_path(sys.argv[0], run_name="__main__")

    main.__doc__ = f"``python src/{name}.py`` with this command's arguments."
    return main


train = _script("train")
evaluate = _script("evaluate")
inspect_model = _script("inspect_model")
model_card = _script("model_card")
make_shards = _script("make_shards")
