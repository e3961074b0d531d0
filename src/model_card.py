"""Print one JSON object describing a model: ``python src/model_card.py model=vit_b16``.

Keys: params, params_without_head, seq_len, forward_flops (per image, 2 FLOPs per
multiply-add) and, with ``images=N epochs=E``, train_exaflops (3 x forward FLOPs x N x E).
"""

import json
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from vitrepro.config.cli import check_overrides, exit_on_user_error
from vitrepro.config.script_schemas import ModelCardConfig
from vitrepro.files import CONF_DIR


@hydra.main(version_base="1.3", config_path="../conf", config_name="model_card")
@exit_on_user_error(schema=ModelCardConfig)
def main(cfg: DictConfig) -> None:
    from vitrepro.compute.flops import model_card
    from vitrepro.config.rules import check_model

    config = OmegaConf.to_container(cfg, resolve=True)
    image_size = config["model"]["image_size"]
    check_model(config["model"], {"image_size": image_size})
    card = model_card(
        config["model"], image_size, config["num_classes"], config["images"], config["epochs"]
    )
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    check_overrides(CONF_DIR, "model_card", sys.argv[1:])
    main()
