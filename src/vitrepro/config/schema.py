"""The types and ranges of every config group, checked on the resolved config before any data is
read or model built (pydantic models; ``rules.py`` keeps the rules that span several keys or
touch the filesystem).

Each group declares every key its shipped options use (a test composes them all); a key a user
adds with ``+group.key=...`` passes through to its reader (Lightning's Trainer arguments, a
callback's). The first mistake becomes one ``ConfigError`` line naming the dotted key, the
value and what to use instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)

from vitrepro.config.errors import ConfigError

Positive = Annotated[StrictInt, Field(gt=0)]
NonNegative = Annotated[StrictInt, Field(ge=0)]
PositiveNumber = Annotated[float, Field(allow_inf_nan=False, gt=0)]
Fraction = Annotated[float, Field(allow_inf_nan=False, ge=0, lt=1)]  # dropout, label smoothing
AreaFraction = Annotated[float, Field(allow_inf_nan=False, gt=0, le=1)]  # of an image
DeviceIds = Annotated[list[NonNegative], Field(min_length=1)]


class _Group(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Model(_Group):
    arch: str
    name: str | None = None
    patch_size: Positive | None = None
    depth: Positive | None = None
    hidden_size: Positive | None = None
    mlp_size: Positive | None = None
    num_heads: Positive | None = None
    representation_size: Positive | None = None
    classifier: Literal["token", "gap"] | None = None
    gap_norm: Literal["tokens", "pooled"] | None = None
    position_embedding: Literal["learned_1d", "learned_2d", "relative", "none"] | None = None
    stem: Literal["bit", "cifar"] | None = None
    backbone_stem: Literal["bit", "cifar"] | None = None
    dropout: Fraction = 0.0
    attention_dropout: Fraction = 0.0
    head_bias_init: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    weight_init: Literal["jax", ""] | None = None
    width_factor: Positive | None = None
    layers: list[Positive] | None = None
    channels: list[Positive] | None = None
    stem_channels: Positive | None = None
    norm_groups: Positive | None = None
    backbone_layers: list[Positive] | None = None
    backbone_channels: list[Positive] | None = None
    backbone_stem_channels: Positive | None = None
    backbone_norm_groups: Positive | None = None
    pretrained: str | None = None
    pretrained_head: Literal["drop", "keep", "features"] = "drop"
    posemb_interpolation: Literal["zoom", "bilinear", "bicubic", "nearest", "area"] = "zoom"

    @model_validator(mode="after")
    def _transformer_sizes(self) -> Model:
        """A ViT or hybrid needs every size of its transformer (Table 1)."""
        if self.arch in ("vit", "hybrid"):
            for key in ("patch_size", "depth", "hidden_size", "mlp_size", "num_heads"):
                if getattr(self, key) is None:
                    raise ConfigError(f"model.{key}", None, f"a {self.arch} needs it; set it")
        return self


class Generator(_Group):
    """The embedded data's generator (v1: motif compositions, v2: glyph pairs)."""

    version: Literal[1, 2] | None = None
    num_glyphs: Annotated[StrictInt, Field(ge=2)] | None = None
    glyphs_per_class: Positive | None = None
    num_distractors: NonNegative | None = None
    num_distractor_glyphs: NonNegative | None = None
    cells: Positive | None = None
    relational: StrictBool | None = None
    noise_std: Annotated[float, Field(allow_inf_nan=False, ge=0)] | None = None
    cell_px: Annotated[list[PositiveNumber], Field(min_length=2, max_length=2)] | None = None


class Data(_Group):
    format: Literal["synthetic", "image_folder", "cifar", "shards"]
    name: str
    num_classes: Annotated[StrictInt, Field(ge=2)] | None = None  # a classifier: 2 or more
    image_size: Positive
    num_train: Positive | None = None
    num_val: Positive | None = None
    num_test: NonNegative | None = None
    num_workers: NonNegative = 0
    task: Literal["pretrain", "transfer"] | None = None
    seed: StrictInt | None = None
    subset: Positive | str | None = None
    crop_area: Annotated[list[AreaFraction], Field(min_length=2)] | None = None
    max_corrupt_fraction: Annotated[float, Field(allow_inf_nan=False, ge=0, le=1)] | None = None
    finetune_steps: Positive | None = None
    root: str | None = None
    train_dir: str | None = None
    val_dir: str | None = None
    real_labels: str | None = None
    variant: str | None = None
    generator: Generator | None = None
    fewshot_datasets: dict[str, Data] | None = None  # few-shot targets: datasets too
    minival_fraction: Annotated[float, Field(allow_inf_nan=False, gt=0, lt=1)] | None = None


class Optimizer(_Group):
    target: str = Field(alias="_target_")
    lr: PositiveNumber
    weight_decay: Annotated[float, Field(allow_inf_nan=False, ge=0)] | None = None


class Schedule(_Group):
    warmup_steps: NonNegative = 0
    decay: Literal["linear", "cosine", "constant"]
    end_factor: Annotated[float, Field(allow_inf_nan=False, ge=0, le=1)] = 0.0


class StepsScaling(_Group):
    """``recipe.steps_scaling``: Table 3's fewer epochs on larger sets (``budget.scaled_steps``)."""

    steps: Positive
    at_num_train: Positive
    exponent: Annotated[float, Field(allow_inf_nan=False, ge=0.0, le=1.0)]


class ModelSettings(BaseModel):  # a row of a recipe's per_model table (Table 3's rows)
    model_config = ConfigDict(extra="forbid")
    lr: PositiveNumber | None = None
    weight_decay: Annotated[float, Field(allow_inf_nan=False, ge=0)] | None = None
    epochs: PositiveNumber | None = None


class Recipe(_Group):
    name: str
    per_model: dict[str, ModelSettings] | None = None  # keyed by model.name
    optimizer: Optimizer
    schedule: Schedule
    global_batch_size: Positive
    per_device_batch_size: Positive | None = None
    steps: Positive | None = None
    steps_scaling: StepsScaling | None = None
    epochs: PositiveNumber | None = None
    grad_clip_norm: PositiveNumber | None = None
    loss: Literal["softmax_xent", "sigmoid_xent"] = "softmax_xent"
    label_smoothing: Fraction = 0.0
    dropout: Fraction = 0.0
    eval_every_steps: Positive | None = None
    checkpoint_every_steps: Positive | None = None
    resolution: Positive | None = None


class Trainer(_Group):
    target: str = Field(alias="_target_")
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"] = "auto"
    devices: Positive | Literal["auto", -1, "-1"] | DeviceIds
    num_nodes: Positive = 1
    strategy: str = "auto"
    precision: Literal[
        "32-true", "32", "bf16-mixed", "bf16-true", "16-mixed", "16-true", "64-true"
    ] = "32-true"
    log_every_n_steps: Positive = 50
    check_val_every_n_epoch: Positive | None = 1
    val_check_interval: PositiveNumber | None = None
    deterministic: StrictBool | Literal["warn"] = False
    enable_progress_bar: StrictBool = True
    enable_model_summary: StrictBool = True


class Logger(_Group):
    target: str | None = Field(default=None, alias="_target_")
    mode: Literal["auto", "online", "offline", "disabled"] | None = None
    tags: list[str] | None = None
    save_dir: str | None = None
    project: str | None = None
    entity: str | None = None
    name: str | None = None
    group: str | None = None


class Evaluation(_Group):
    target: str | None = Field(default=None, alias="_target_")
    recursive: StrictBool | None = Field(default=None, alias="_recursive_")
    shots: Annotated[list[Positive], Field(min_length=1)] | None = None
    seeds: Positive | None = None
    l2_reg: PositiveNumber | None = None
    every_n_steps: NonNegative | None = None
    batch_size: Positive | None = None
    datasets: dict[str, dict[str, Any]] | None = None


class Checkpoint(_Group):
    model_config = ConfigDict(extra="forbid")
    every_n_steps: Positive | None = None
    keep_best: StrictBool = True


class Performance(_Group):
    model_config = ConfigDict(extra="forbid")
    channels_last: StrictBool = False
    fused_attention: StrictBool = True
    pin_memory: StrictBool | Literal["auto"] = "auto"
    persistent_workers: StrictBool = True
    prefetch_factor: Positive | None = None
    threads: Positive | Literal["auto"] = "auto"
    keep_freed_memory: StrictBool = True
    render_once: StrictBool = True


class Paths(_Group):
    root_dir: str
    data_root: str
    output_dir: str
    run_dir: str


class RunConfig(_Group):
    """``conf/train.yaml`` composed: every top-level group and key."""

    model: Model
    data: Data
    recipe: Recipe
    trainer: Trainer
    logger: Logger | None = None
    evaluation: Evaluation | None = None
    callbacks: dict[str, dict[str, Any] | None] | None = None
    transfer: dict[str, list[str]] | None = None
    transfer_jobs: Literal["inline", "separate"] = "inline"
    rehearsal: StrictBool = False
    paths: Paths
    seed: Annotated[StrictInt, Field(ge=0, lt=2**32)]  # what seed_everything accepts
    compile: StrictBool = False
    performance: Performance = Performance()
    resume: str | None = None
    checkpoint: Checkpoint = Checkpoint()


def _dotted(location: tuple, config: dict[str, Any]) -> str:
    """``('model', 'depth')`` -> ``model.depth``, leaving out pydantic's union branch names."""
    parts, node = [], config
    for part in location:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not (isinstance(node, dict) and len(parts) == len(location) - 1):
            continue  # a union branch name
        parts.append(str(part))
    return ".".join(parts) if parts else "config"


def _value_at(config: dict[str, Any], key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        if isinstance(value, dict):
            value = value.get(part, value.get(f"_{part}_"))
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _wanted(message: str) -> str:
    """pydantic's "Input should be greater than 0" -> "a value greater than 0"."""
    text = message.removeprefix("Input should be ")
    return f"a value {text}" if text.startswith(("greater", "less")) else text


def check_types(config: dict[str, Any], schema: type[BaseModel] = RunConfig) -> None:
    """Raise ``ConfigError`` for the first key of ``config`` with a wrong type or a value out
    of range (the messages of every union branch of that key, joined)."""
    try:
        schema.model_validate(config)
    except ValidationError as error:
        problems = error.errors()
        raised = problems[0].get("ctx", {}).get("error")
        if isinstance(raised, ConfigError):  # a rule over several keys of one group
            raise raised from None
        key = _dotted(problems[0]["loc"], config)
        messages = [_wanted(p["msg"]) for p in problems if _dotted(p["loc"], config) == key]
        wanted = " or ".join(dict.fromkeys(messages))
        if problems[0]["type"] == "extra_forbidden":
            wanted = "unknown key; remove it (see conf/train.yaml for the keys)"
        else:
            wanted = f"use {wanted}"
        raise ConfigError(key, _value_at(config, key), wanted) from None
