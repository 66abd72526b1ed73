"""The recipe: one typed schema for every run (the sections and their keys, each with its description).

This package imports nothing else of hubtransfer. The schema checks what a recipe's own values allow;
:func:`hubtransfer.job.check_recipe` checks the names against the task, problem and strategy registries, and the
run checks what needs the checkpoint's config or the data (a text checkpoint on an image task, a missing label
column) before any weights load.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, PlainSerializer, model_validator

from hubtransfer.recipe.refs import ProblemType, StrategyRef, parse_strategy_ref
from hubtransfer.recipe.sections import (
    DataSpec,
    HeadSpec,
    HubSpec,
    ModelSpec,
    PeftSpec,
    Section,
    TaskHeadSpec,
    UpdateSpec,
)
from hubtransfer.recipe.train import TrainSpec

StrategyField = Annotated[StrategyRef, BeforeValidator(parse_strategy_ref), PlainSerializer(str, return_type=str)]


class Recipe(Section):
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
    update: UpdateSpec | None = Field(
        None, description="Train the next version of a pushed model on new data (see the update section)."
    )
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
