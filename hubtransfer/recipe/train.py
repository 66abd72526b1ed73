"""The recipe's train section: budget, learning rate (and its search), loss weights, precision, evaluation, early
stopping, checkpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hubtransfer.recipe.sections import Section


class EarlyStoppingSpec(Section):
    """When to stop: the metric watched on validation and how long it may go without a gain."""

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
    keep: Literal["best", "last_within_se"] = Field(
        "last_within_se",
        description=(
            "The weights a run keeps. 'last_within_se': the last evaluation whose score is within one standard error "
            "of the highest (as good as the best within the validation split's noise, and trained longer; on "
            "bbc-news 'best' kept a step-54 model that one validation article of 213 favoured, 94.8 test accuracy "
            "against 98.1); for accuracy, f1, precision and recall, else the best. 'best': the first evaluation with "
            "the highest watched metric. Early stopping counts from the highest either way."
        ),
    )


class LrSearchSpec(Section):
    """How `train.lr: auto` searches: the candidate rates and the successive-halving rungs."""

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

    schedule: Literal["run", "short"] = Field(
        "run",
        description=(
            "'run': each candidate trains on the run's own schedule (its warm-up and decay over the whole run) to "
            "the rung, and the winner continues from there. 'short': each candidate trains a run of fraction x the "
            "steps with its own warm-up and decay to zero, and the winner trains the whole run from the start; it "
            "costs one rung more, and compares each rate at the end of a schedule instead of near its peak."
        ),
    )

    @field_validator("candidates")
    @classmethod
    def _two_or_more(cls, v):
        if v is not None and (len(v) < 2 or any(x <= 0 for x in v)):
            raise ValueError(f"train.lr_search.candidates needs two or more positive learning rates, got {v}")
        return v


class TrainSpec(Section):
    """The training loop: budget, learning rate, batches, precision, evaluation, early stopping, checkpoints."""

    epochs: Literal["auto"] | float = Field(
        "auto",
        description=(
            "Training epochs (fractions allowed). 'auto': enough epochs for train.min_steps optimizer steps, at least "
            "2 and at most train.max_auto_epochs (early stopping ends it sooner when validation stops improving). In "
            "an update that continues the previous version: min_steps x the new data's share of the old and new "
            "training examples, at least one epoch."
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
            "among train.lr_search.candidates (successive halving, see lr_search); in an update that continues the "
            "previous version (candidates unset): the rate that version trained at."
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
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (none on biases and norm weights).")
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
    eval_batch_size: int = Field(64, gt=0, description="Batch size of the validation and test passes.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps with a linear warm-up.")
    scheduler: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="Learning-rate decay after the warm-up (transformers' get_scheduler)."
    )
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this; null: no clipping.")
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
            "under bf16 (they are slower in bf16 there); same results in distribution "
            "(hubtransfer/train/cpu_kernels.py)."
        ),
    )
    cache_features: bool = Field(
        True,
        description=(
            "strategy=head: run the frozen backbone once, cache its features on disk and train the head on them."
        ),
    )
    seed: int = Field(
        0, description="Seeds weights of the new head, shuffling, dropout: two runs give identical weights."
    )
    baseline: bool = Field(
        True,
        description=(
            "Also fit the classical baseline on the same split (tf-idf + logistic regression for text, pixels + "
            "logistic regression for images; single-label classification) and report it beside the model."
        ),
    )
    linear_probe: Literal["auto"] | bool = Field(
        "auto",
        description=(
            "Also fit logistic regression on the pretrained backbone's frozen features (one forward pass, cached; C "
            "chosen on validation), report it beside the model, say when the model is below it, and keep it instead "
            "of the fine-tuned weights when it leads them on validation by more than a standard error. 'auto': on "
            "for single-label text and image classification that fine-tunes a pretrained backbone with up to 5,000 "
            "training examples (where a fine-tune can end below its own frozen features, and the extra pass is a "
            "small share of the run)."
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

    @field_validator("precision", mode="before")
    @classmethod
    def _yaml_no(cls, v):
        # YAML 1.1 reads a bare `no` (in a file or a `train.precision=no` override) as false: it means 'no' here.
        return "no" if v is False else v

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
