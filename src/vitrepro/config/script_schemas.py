"""The configs of the entry scripts beside training (``src/evaluate.py``, ``src/inspect_model.py``,
``src/model_card.py``), typed with the training groups of ``schema.py``."""

from __future__ import annotations

from typing import Literal

from vitrepro.config.schema import Data, Evaluation, Model, Paths, Positive, PositiveNumber, _Group


class EvaluateConfig(_Group):
    """``conf/evaluate.yaml``: few-shot evaluation of a checkpoint (``src/evaluate.py``)."""

    model: Model
    data: Data
    evaluation: Evaluation | None = None
    paths: Paths
    checkpoint: str
    num_classes: Positive | None = None
    output: str | None = None


class InspectConfig(_Group):
    """``conf/inspect.yaml``: Figures 6 and 7 of a checkpoint (``src/inspect_model.py``)."""

    model: Model
    data: Data
    paths: Paths
    checkpoint: str
    num_classes: Positive | None = None
    analyses: list[Literal["filters", "position_embeddings", "attention_distance", "rollout"]]
    num_components: Positive
    num_images: Positive
    rollout_images: Positive
    output: str | None = None


class ModelCardConfig(_Group):
    """``conf/model_card.yaml``: parameters and FLOPs of a model (``src/model_card.py``)."""

    model: Model
    num_classes: Positive
    images: Positive | None = None
    epochs: PositiveNumber | None = None
