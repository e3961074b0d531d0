"""Linear few-shot evaluation of a checkpoint: ``python src/evaluate.py checkpoint=<run or file>``.

Prints one JSON object of ``fewshot/<dataset>/<k>shot`` accuracies (Section 4.1).
"""

import json
import sys

import hydra
from omegaconf import DictConfig

from vitrepro.config.cli import check_overrides, exit_on_user_error
from vitrepro.config.script_schemas import EvaluateConfig
from vitrepro.files import CONF_DIR


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error(schema=EvaluateConfig)
def main(cfg: DictConfig) -> None:
    from vitrepro.evaluation.checkpoint import evaluate_checkpoint

    results = evaluate_checkpoint(cfg)
    print(json.dumps(results, indent=2))
    if cfg.output:
        from vitrepro.files import write_json_atomic

        write_json_atomic(cfg.output, results)


if __name__ == "__main__":
    check_overrides(CONF_DIR, "evaluate", sys.argv[1:])
    main()
