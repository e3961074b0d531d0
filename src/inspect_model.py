"""What a trained ViT learned: ``python src/inspect_model.py checkpoint=<run dir or file>``.

Figure 7 (patch-embedding filters, position-embedding similarity, mean attention distance) and
Figure 6 (attention rollout) as PNGs, with the numbers in ``inspection.json``; choose with
``analyses=[attention_distance,rollout]``.
"""

import json
import sys

import hydra
from omegaconf import DictConfig

from vitrepro.config.cli import check_overrides, exit_on_user_error
from vitrepro.config.script_schemas import InspectConfig
from vitrepro.files import CONF_DIR


@hydra.main(version_base="1.3", config_path="../conf", config_name="inspect")
@exit_on_user_error(schema=InspectConfig)
def main(cfg: DictConfig) -> None:
    from vitrepro.inspection.report import inspect_checkpoint  # heavy imports after parsing

    results = inspect_checkpoint(cfg)
    distance = results.get("attention_distance", {})
    per_head = distance.pop("per_layer_per_head", None)
    print(json.dumps(results, indent=2))
    if per_head:
        means = ", ".join(f"{sum(layer) / len(layer):.1f}" for layer in per_head)
        uniform = distance["uniform_attention_distance"]
        print(
            f"mean attention distance per layer (pixels): {means}; uniform attention {uniform:.1f}"
        )
    print(f"figures and inspection.json in {results['output_dir']}")


if __name__ == "__main__":
    check_overrides(CONF_DIR, "inspect", sys.argv[1:])
    main()
