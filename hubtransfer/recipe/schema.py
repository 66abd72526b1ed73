"""The recipe: one typed schema for every run (the sections and their keys, each with its description).

This package imports nothing else of hubtransfer. The schema checks what a recipe's own values allow;
:func:`hubtransfer.job.check_recipe` checks the names against the task, problem and strategy registries, and the
run checks what needs the checkpoint's config or the data (a text checkpoint on an image task, a missing label
column) before any weights load.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator, model_validator

from hubtransfer.recipe.refs import ProblemType, StrategyRef, parse_strategy_ref


class _Section(BaseModel):
    # Unknown keys are errors (with a did-you-mean), never silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Section):
    id: str = Field(description="Hub model id (org/name) or a local folder with a transformers checkpoint.")
    revision: str = Field("main", description="Branch, tag or commit of a Hub model.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the checkpoint. Off unless you trust it.")
    allow_pickle: bool = Field(False, description="Allow pickled (.bin/.pth) weights. Only safetensors load otherwise.")
    init: Literal["pretrained", "random"] = Field(
        "pretrained",
        description=("'random': the same architecture re-initialised from the seed (the from-scratch baseline)."),
    )


class DataSpec(_Section):
    source: str = Field(
        description=(
            "'packaged:rotten-tomatoes' / 'packaged:animal-shapes', a Hub dataset id, a local csv/json/jsonl/parquet "
            "file, or a folder of images (one sub-folder per label)."
        )
    )
    config: str | None = Field(None, description="Dataset configuration name (Hub datasets).")
    revision: str | None = Field(None, description="Dataset revision (Hub datasets).")
    text_column: str = Field("text", description="Column with the input text (text tasks).")
    image_column: str = Field("image", description="Column with the input image (image tasks).")
    label_column: str = Field(
        "label", description="Column with the label (multi-label: a list of labels; regression: a number)."
    )
    label_separator: str | None = Field(
        None, description="problem=multi-label: split a label column of strings on this (e.g. '|' for 'Drama|Comedy')."
    )
    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share held out for validation when the source has no such split."
    )
    test_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share held out for test when the source has no such split."
    )
    split_seed: int = Field(0, description="Salt of the hash that assigns examples to splits.")
    max_train_samples: int | None = Field(
        None, gt=0, description="Keep the first N training examples (of the fixed split)."
    )
    max_eval_samples: int | None = Field(None, gt=0, description="Keep the first N validation and test examples.")
    max_length: Literal["auto"] | int = Field(
        "auto",
        description=(
            "Token limit for text inputs. 'auto': the 95th percentile of the training texts' token counts, rounded up "
            "to a multiple of 8, at most min(256, the checkpoint's limit), at least 16."
        ),
    )
    pad_to_multiple_of: int = Field(
        8,
        ge=1,
        description=(
            "Text batches pad to a multiple of this many tokens: fewer distinct tensor sizes keep the CPU heap from "
            "fragmenting (MiniLM peak RSS 2.25 -> 1.62 GB at the same speed) and suit GPU tensor cores; 1 pads to the "
            "longest text only."
        ),
    )
    image_size: Literal["auto"] | int | None = Field(
        "auto",
        description=(
            "Resize images to this square size. null: the processor's. 'auto': the processor's for images at least "
            "that large; smaller images are enlarged to twice their median side (a multiple of 32), at least 96, at "
            "most the processor's size."
        ),
    )

    @field_validator("max_length", "image_size")
    @classmethod
    def _positive_size(cls, v, info):
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"data.{info.field_name} must be 'auto' or a positive number, got {v}")
        return v

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataSpec:
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"data.validation_fraction + data.test_fraction = "
                f"{self.validation_fraction + self.test_fraction:g} leaves almost no training data; keep the sum "
                "below 0.9"
            )
        return self


class HeadSpec(_Section):
    type: Literal["linear", "mlp"] = Field(
        "linear", description="'linear': a new output layer; 'mlp': hidden layers + output layer."
    )
    hidden_sizes: list[int] = Field(default_factory=list, description="Hidden layer sizes of an 'mlp' head.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before each layer of an 'mlp' head.")
    pooling: Literal["auto", "native", "mean", "cls"] = Field(
        "auto",
        description=(
            "Features the head reads. 'auto': what the checkpoint was trained to give (a sentence-embedding "
            "checkpoint's own pooling from its 1_Pooling/config.json, mean or cls; 'native' for every other "
            "checkpoint, for strategy lora and for tasks that read every token). 'native': the checkpoint's own (stock "
            "class, loads without code). 'mean' / 'cls': mean of the tokens or the first token (suits sentence "
            "encoders such as all-MiniLM); like an 'mlp' head, this saves a small modeling file and loading needs "
            "trust_remote_code=True."
        ),
    )

    @model_validator(mode="after")
    def _mlp_needs_hidden(self) -> HeadSpec:
        if self.type == "mlp" and not self.hidden_sizes:
            raise ValueError("head.type 'mlp' needs head.hidden_sizes, e.g. head.hidden_sizes=[256]")
        if self.type == "linear" and self.hidden_sizes:
            raise ValueError(
                "head.hidden_sizes is set but head.type is 'linear'; set head.type=mlp or drop hidden_sizes"
            )
        return self


class TaskHeadSpec(_Section):
    """One head of a ``task: multi-task`` recipe (the ``heads:`` list)."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description=("Head name: letters, digits, '_' (it prefixes the head's metrics, e.g. name/accuracy)."),
    )
    label_column: str = Field(description="Column with this head's label.")
    type: Literal["classification", "regression"] = Field(
        "classification",
        description=("'classification': cross-entropy over the column's values; 'regression': MSE on the number."),
    )
    weight: float = Field(1.0, gt=0, description="Weight of this head's loss in the summed loss.")


class EarlyStoppingSpec(_Section):
    metric: str | None = Field(
        None,
        description=(
            "Validation metric watched for the best model, the learning-rate choice and early stopping. null: the "
            "task's (accuracy for classification, entity f1 for token-classification; f1_micro / r_squared for "
            "multi-label / regression), except that single-label classification watches macro f1 where the training "
            "labels are imbalanced (train.imbalance_ratio)."
        ),
    )
    patience: Literal["auto"] | int | None = Field(
        "auto",
        description=(
            "Stop after this many evaluations without improvement; null: never. 'auto': 3 when the run has at least 6 "
            "evaluations, else never."
        ),
    )

    @field_validator("patience")
    @classmethod
    def _positive_patience(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError(f"train.early_stopping.patience must be 'auto', null or at least 1, got {v}")
        return v

    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as an improvement.")


class LrSearchSpec(_Section):
    candidates: list[float] | None = Field(
        None,
        description=(
            "Learning rates tried when train.lr is 'auto'. null: by what trains (full / top / lp-ft / gradual: text "
            "3e-5, 1e-4, 3e-4; images 3e-4, 1e-3; head on cached features: 1e-3, 3e-3, 1e-2; lora: 3e-4, 1e-3, 3e-3)."
        ),
    )
    fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description=(
            "Each candidate trains this share of the run's steps (on the run's own schedule); the one with the best "
            "validation score there continues to the end, the others stop. The search costs (candidates - 1) x "
            "fraction of a run."
        ),
    )

    @field_validator("candidates")
    @classmethod
    def _two_or_more(cls, v):
        if v is not None and (len(v) < 2 or any(x <= 0 for x in v)):
            raise ValueError(f"train.lr_search.candidates needs two or more positive learning rates, got {v}")
        return v


class TrainSpec(_Section):
    epochs: Literal["auto"] | float = Field(
        "auto",
        description=(
            "Training epochs (fractions allowed). 'auto': enough epochs for train.min_steps optimizer steps, at least "
            "2 and at most train.max_auto_epochs (early stopping ends it sooner when validation stops improving)."
        ),
    )
    min_steps: int = Field(
        450,
        gt=0,
        description=("epochs 'auto': the run takes at least this many optimizer steps (within max_auto_epochs)."),
    )
    max_auto_epochs: int = Field(20, ge=2, description="epochs 'auto': never more than this many epochs.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps (overrides epochs).")
    lr: Literal["auto"] | float = Field(
        "auto",
        description=(
            "Peak learning rate of the backbone (and of the head unless head_lr is set). 'auto': chosen on validation "
            "among train.lr_search.candidates (successive halving, see lr_search)."
        ),
    )
    lr_search: LrSearchSpec = Field(default_factory=LrSearchSpec)
    head_lr: float | None = Field(None, gt=0, description="Learning rate of the new head (default: lr).")
    layer_decay: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Layer-wise learning-rate decay: a block k blocks below the head trains at lr * layer_decay**k (embeddings "
            "one step below the lowest block); null: one rate for the backbone."
        ),
    )
    weight_decay: float = Field(0.01, ge=0)
    class_weights: Literal["auto", "none"] | dict[str, float] = Field(
        "auto",
        description=(
            "Single-label classification: weights of the classes in the loss. 'auto': where the training labels are "
            "imbalanced (largest / smallest class >= train.imbalance_ratio), each class weighs sqrt(n_train / (classes "
            "x its count)); else none. 'none': plain cross-entropy. A mapping {label: weight} sets them (labels left "
            "out weigh 1)."
        ),
    )
    imbalance_ratio: float = Field(
        3.0,
        ge=1,
        description=(
            "Training labels count as imbalanced when the largest class has at least this many times the examples of "
            "the smallest: class_weights 'auto' then weights the loss and the watched metric defaults to macro f1."
        ),
    )
    batch_size: int = Field(32, gt=0, description="Examples per process per step (before accumulation).")
    eval_batch_size: int = Field(64, gt=0)
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps with a linear warm-up.")
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "no", "fp16", "bf16"] = Field(
        "auto",
        description=(
            "'auto' takes bf16 where the hardware runs it fast (recent GPUs, CPUs with avx512_bf16/AMX), else fp32."
        ),
    )
    eval_every: Literal["epoch"] | int = Field("epoch", description="'epoch' or a number of optimizer steps.")
    eval_at_start: bool = Field(
        False, description="Also evaluate before the first step (step 0 of the learning curve)."
    )
    probe_epochs: float = Field(
        3,
        gt=0,
        description=("strategy=lp-ft: epochs of the first phase, where only the new head trains (on cached features)."),
    )
    probe_lr: float = Field(1e-3, gt=0, description="strategy=lp-ft: learning rate of that head-only first phase.")
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    group_by_length: bool = Field(
        True, description="Text: batches of similar length (shuffled buckets) to cut padding."
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    cpu_kernels: bool = Field(
        True,
        description=(
            "Training on CPU: faster dropout and attention-with-dropout kernels, and grouped convolutions in fp32 "
            "under bf16 (they are slower in bf16 there); same results in distribution (hubtransfer/cpu_kernels.py)."
        ),
    )
    cache_features: bool = Field(
        True,
        description=(
            "strategy=head: run the frozen backbone once, cache its features on disk and train the head on them."
        ),
    )
    seed: int = 0
    baseline: bool = Field(
        True,
        description=(
            "Also fit the classical baseline on the same split (tf-idf + logistic regression for text, pixels + "
            "logistic regression for images; single-label classification) and report it beside the model."
        ),
    )
    log_with: list[Literal["tensorboard"]] = Field(
        default_factory=list, description="Accelerate trackers, e.g. [tensorboard]."
    )
    checkpoint_every: Literal["epoch"] | int | None = Field(
        "epoch",
        description=(
            "Checkpoint (model, optimizer, scheduler, RNG, position) every epoch, every N steps, or never (null)."
        ),
    )
    keep_checkpoints: int = Field(2, ge=1, description="How many of the newest checkpoints to keep while training.")
    resume: bool = Field(True, description="Continue an interrupted run of the same recipe from its newest checkpoint.")

    @field_validator("eval_every", "checkpoint_every")
    @classmethod
    def _positive_steps(cls, v, info):
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"train.{info.field_name} must be 'epoch' or a positive step count, got {v}")
        return v

    @field_validator("epochs", "lr")
    @classmethod
    def _positive_or_auto(cls, v, info):
        if not isinstance(v, str) and v <= 0:
            raise ValueError(f"train.{info.field_name} must be 'auto' or a positive number, got {v}")
        return v

    @field_validator("class_weights")
    @classmethod
    def _positive_weights(cls, v):
        if isinstance(v, dict) and any(w <= 0 for w in v.values()):
            raise ValueError(f"train.class_weights must be positive, got {v}")
        return v


class PeftSpec(_Section):
    method: Literal["lora", "dora"] = Field(
        "lora",
        description=(
            "strategy=lora: 'lora' (low-rank adapters) or 'dora' (LoRA with a learned magnitude, peft's use_dora)."
        ),
    )
    r: int = Field(8, gt=0, description="Rank of the adapters.")
    alpha: float = Field(16, gt=0, description="LoRA scaling numerator: updates are scaled by alpha / r.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: list[str] | None = Field(
        None,
        description=(
            "Module names to adapt; null: peft's choice for the architecture (BERT: query, value), else every Linear "
            "in the repeated blocks, else their 1x1 convolutions."
        ),
    )
    merge: bool = Field(
        False,
        description=(
            "Save and push the adapters merged into the base weights (a stock model, no peft needed); false: the "
            "adapter alone in peft's format, naming its base model."
        ),
    )


class HubSpec(_Section):
    repo_id: str | None = Field(None, description="Where to push the trained model (org/name).")
    push: bool = False
    private: bool = True
    revision: str = Field("main", description="Branch to push to (created when missing).")
    commit_message: str | None = None


StrategyField = Annotated[StrategyRef, BeforeValidator(parse_strategy_ref), PlainSerializer(str, return_type=str)]


class Recipe(_Section):
    task: str = Field(
        description=("text-classification | image-classification | token-classification | fill-mask | multi-task")
    )
    problem: ProblemType = Field(
        ProblemType.SINGLE_LABEL,
        description=(
            "Classification tasks: 'single-label' (one label), 'multi-label' (any number; sigmoid, thresholds tuned on "
            "validation) or 'regression' (one number). Sets config.problem_type and the default early-stopping metric "
            "(accuracy / f1_micro / r_squared)."
        ),
    )
    model: ModelSpec
    data: DataSpec
    strategy: StrategyField = Field(
        StrategyRef("full"),
        description=(
            "'head' (new head only), 'top:K' (top K blocks + head), 'full', 'lp-ft' (head only for train.probe_epochs, "
            "then everything), 'gradual' (head only in epoch 1, then one more block from the top each epoch, the "
            "embeddings last) or 'lora' (frozen backbone with low-rank adapters through peft, see the peft section, "
            "and the head)."
        ),
    )
    peft: PeftSpec = Field(default_factory=PeftSpec)
    head: HeadSpec = Field(default_factory=HeadSpec)
    heads: list[TaskHeadSpec] = Field(
        default_factory=list,
        description=(
            "task multi-task: the task heads trained together on one backbone, each {name, label_column, type: "
            "classification | regression, weight}; head: sets their pooling / MLP shape."
        ),
    )
    train: TrainSpec = Field(default_factory=TrainSpec)
    output_dir: str = Field("runs/latest", description="Folder that receives the trained model, metrics and recipe.")
    overwrite_output_dir: bool = Field(False, description="Replace an output folder that holds another finished run.")
    hub: HubSpec = Field(default_factory=HubSpec)
    candidates: list[str] = Field(
        default_factory=list,
        description=(
            "Checkpoints `hubtransfer rank` compares (Hub ids, folders, or random:ID for a random-init control)."
        ),
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Recipe:
        """What the recipe's own values allow together (names against registries:
        :func:`hubtransfer.job.check_recipe`)."""
        if self.hub.push and not self.hub.repo_id:
            raise ValueError("hub.push is true but hub.repo_id is empty; set hub.repo_id=you/model-name")
        patience, epochs = self.train.early_stopping.patience, self.train.epochs
        if isinstance(patience, int) and self.train.eval_every == "epoch" and epochs != "auto" and epochs < 2:
            raise ValueError(
                "train.early_stopping.patience needs several evaluations; raise train.epochs or set train.eval_every "
                "to a step count"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe, every default included. Recipes never hold secrets (tokens come from the
        environment)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
