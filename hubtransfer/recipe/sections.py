"""The recipe's sections besides train: the checkpoint, the data, the head(s), LoRA and the Hub."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    # Unknown keys are errors (with a did-you-mean), never silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(Section):
    """The source checkpoint and how it may be loaded."""

    id: str = Field(description="Hub model id (org/name) or a local folder with a transformers checkpoint.")
    revision: str = Field("main", description="Branch, tag or commit of a Hub model.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the checkpoint. Off unless you trust it.")
    allow_pickle: bool = Field(False, description="Allow pickled (.bin/.pth) weights. Only safetensors load otherwise.")
    init: Literal["pretrained", "random"] = Field(
        "pretrained",
        description=("'random': the same architecture re-initialised from the seed (the from-scratch baseline)."),
    )


class DataSpec(Section):
    """Where the examples come from, which columns hold input and label, and how they are split."""

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
            "Resize images to this square size. null: the processor's. 'auto': images at least the processor's size "
            "are resized whole to it (a processor's center crop would cut their border); smaller images are enlarged "
            "to twice their median side (a multiple of 32), at least 96, at most the processor's size."
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


class HeadSpec(Section):
    """The new head that replaces the checkpoint's output layer."""

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


class TaskHeadSpec(Section):
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


class PeftSpec(Section):
    """Low-rank adapters (`strategy: lora`) through peft."""

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


class HubSpec(Section):
    """Where and how the finished run is pushed."""

    repo_id: str | None = Field(None, description="Where to push the trained model (org/name).")
    push: bool = Field(False, description="Push the finished run (model, card, evidence) to hub.repo_id.")
    private: bool = Field(True, description="Create the repository private (an existing one keeps its visibility).")
    revision: str = Field("main", description="Branch to push to (created when missing).")
    commit_message: str | None = Field(
        None, description="Commit message of the push; null: 'Upload FOLDER with hubtransfer'."
    )
    tag: str | None = Field(
        "auto",
        description=(
            "Tag the pushed commit as a release: 'auto' takes the next free vN (v1, v2, ...; a commit pushed again "
            "keeps its vN), a name tags it so, null leaves it untagged."
        ),
    )
    verify: bool = Field(
        True,
        description=(
            "After the push, download the model by its tag (or commit) into a fresh cache, recompute the test "
            "metrics from those weights and require them equal to the card's."
        ),
    )


class UpdateSpec(Section):
    """Train the next version of a pushed hubtransfer model on new data, keeping what the previous one knew."""

    from_model: str = Field(
        description=(
            "The previous version: a Hub repo of a hubtransfer run, or a run folder. Its weights, labels and its "
            "recorded data split (old train / validation / test) are read back; model.id stays the base checkpoint "
            "(method 'joint' starts from it)."
        )
    )
    from_revision: str = Field("main", description="Tag, branch or commit of from_model (e.g. v1).")
    method: Literal["naive", "replay", "distill", "interpolate", "joint"] = Field(
        "replay",
        description=(
            "'naive': fine-tune the previous version on the new data only; 'replay': the new data plus "
            "replay_fraction of the old training examples; 'distill': the new data, with the previous version's "
            "outputs as soft targets for the old labels (learning without forgetting); 'interpolate': naive, then "
            "the weights averaged with the previous version's (WiSE-FT), the mix chosen on the old and new validation "
            "splits; 'joint': the base checkpoint trained on old and new data together (the reference)."
        ),
    )
    replay_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description=(
            "method 'replay': the share of the old training examples mixed in (1.0, all of them: it forgot less "
            "than 0.5 in the three settings of docs/updates.md, and than 0.25 on images, and it alone met the "
            "forgetting, quality and cost targets in all three)."
        ),
    )
    label_map: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "The new data's label names as the previous version's ({new: old}), for new data that names the same "
            "classes otherwise (e.g. {recommended: fresh}); unmapped labels the previous version lacks are new classes."
        ),
    )
    distill_weight: float = Field(1.0, gt=0, description="method 'distill': weight of the soft-target loss.")
    temperature: float = Field(2.0, gt=0, description="method 'distill': softmax temperature of the soft targets.")
    alphas: list[float] = Field(
        default_factory=lambda: [0.2, 0.4, 0.6, 0.8, 1.0],
        description="method 'interpolate': weights of the new version in the average tried (1.0: the new version).",
    )
    max_forgetting: float = Field(
        1.0,
        ge=0,
        description=(
            "Points of old-test accuracy the new version may lose against the previous one before its push is refused."
        ),
    )
    force: bool = Field(False, description="Push even when forgetting exceeds max_forgetting.")

    @field_validator("label_map", mode="before")
    @classmethod
    def _quoted_names(cls, v):
        if isinstance(v, dict) and any(isinstance(k, bool) or isinstance(x, bool) for k, x in v.items()):
            raise ValueError(
                "update.label_map holds true/false: YAML reads a bare yes/no/on/off as a boolean; quote the label "
                "names ('yes': pos)"
            )
        return v

    @field_validator("alphas")
    @classmethod
    def _unit_interval(cls, v):
        if not v or any(not 0 <= a <= 1 for a in v):
            raise ValueError(f"update.alphas must be numbers in [0, 1], got {v}")
        return sorted(set(v))
