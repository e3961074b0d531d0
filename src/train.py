"""Train one configuration: ``python src/train.py model=vit_b16 data=imagenet trainer.devices=8``.

Hydra composes conf/train.yaml with the overrides; ``--help`` lists the config groups.
"""

import sys

import hydra
from omegaconf import DictConfig

from vitrepro.config.cli import check_overrides, drop_wandb_resume_args, exit_on_user_error
from vitrepro.files import CONF_DIR


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    from vitrepro.training.run import run  # heavy imports after Hydra has parsed the command line

    summary = run(cfg)
    # Returned so Hydra sweepers (e.g. Optuna) can optimise it.
    return summary["final"].get("val/top1")


if __name__ == "__main__":
    sys.argv = drop_wandb_resume_args(sys.argv)
    check_overrides(CONF_DIR, "train", sys.argv[1:])
    main()
