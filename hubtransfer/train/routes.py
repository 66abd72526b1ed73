"""What the loop trains, and the two routes besides the plain one: a head trained on cached backbone features
(head-only strategies), and LP-FT's head-only first phase."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace

import torch

from hubtransfer.job import Job, load_recipe
from hubtransfer.strategies.base import freeze, head_parameters
from hubtransfer.strategies.full import Full
from hubtransfer.strategies.head import Head
from hubtransfer.train.batches import make_loaders
from hubtransfer.train.features import (
    FeatureClassifier,
    FeatureDataset,
    collate_features,
    key_parts,
    split_features,
    split_head,
)
from hubtransfer.train.loop import class_weight_tensor, fit
from hubtransfer.train.precision import autocast_dtype

logger = logging.getLogger(__name__)


@dataclass
class Trainable:
    """What the loop trains and on which inputs: the model on encoded inputs, or its head on cached features (the
    head's modules are the model's own, so the model holds the trained weights either way)."""

    model: torch.nn.Module
    encoded: dict
    collate: object


def frozen_features(split, trainer: Trainable, job: Job, data, processor, model_dir, device, mixed: str) -> dict:
    """Every split's vectors at ``split`` (the model's frozen part), from the disk cache or computed into it: the
    head-only route and the linear probe (:mod:`hubtransfer.checks.probe`) read the same entries."""
    trainer.model.to(device)
    return split_features(
        split,
        trainer.encoded,
        trainer.collate,
        key_parts=key_parts(model_dir, job.recipe, data.splits, job.task.modality, processor),
        batch_size=job.recipe.train.eval_batch_size,
        device=device,
        dtype=autocast_dtype(mixed),
    )


def feature_route(
    trainer: Trainable, job: Job, data, processor, model_dir, accelerator, mixed: str
) -> tuple[Trainable, dict]:
    """Head-only: the frozen part runs once per split (or comes from the cache); the head trains on its vectors."""
    split, why = split_head(trainer.model)
    if split is None:
        logger.info("features not cached: %s; the backbone runs every epoch", why)
        return trainer, {"cached": False, "reason": why}
    with accelerator.main_process_first():  # the main process fills the cache; the others then read it
        feats = frozen_features(split, trainer, job, data, processor, model_dir, accelerator.device, mixed)
    encoded = {
        s: FeatureDataset(f.features, f.labels, getattr(trainer.encoded[s], "lengths", None)) for s, f in feats.items()
    }
    info = {
        "cached": True,
        "hits": sorted(s for s, f in feats.items() if f.hit),
        "extract_seconds": round(sum(f.seconds for f in feats.values()), 2),
        "extract_seconds_by_split": {s: round(f.seconds, 3) for s, f in feats.items()},
        "pooling": split.pooling,
        "dim": int(next(iter(feats.values())).features.shape[1]),
    }
    logger.info("features: %s", json.dumps(info))
    return Trainable(FeatureClassifier(split.head, trainer.model.config), encoded, collate_features), info


def linear_probe(job: Job, data, processor, model_dir, accelerator, mixed: str, trainer: Trainable) -> dict:
    """LP-FT's first phase: only the new head trains (on cached features where it can) for ``train.probe_epochs``
    at ``train.probe_lr``; the best head by validation stays in the model, and everything trains from there."""
    recipe = job.recipe
    d = recipe.to_dict()
    d["strategy"] = Head.name
    d["train"].update(
        epochs=recipe.train.probe_epochs,
        max_steps=None,
        lr=recipe.train.probe_lr,
        head_lr=None,
        warmup_ratio=0.0,
        checkpoint_every=None,
        eval_at_start=False,
        early_stopping={"metric": recipe.train.early_stopping.metric, "patience": None},
    )
    probe = replace(job, recipe=load_recipe(d), strategy=Head())
    freeze(trainer.model, set(head_parameters(trainer.model)), str(probe.strategy))
    head, info = Trainable(trainer.model, trainer.encoded, trainer.collate), {}
    if probe.recipe.train.cache_features:
        head, info = feature_route(head, probe, data, processor, model_dir, accelerator, mixed)
    loaders = make_loaders(head.encoded, head.collate, probe.recipe)
    logger.info("lp-ft: probe phase, head only, %g epochs at lr %g", probe.recipe.train.epochs, probe.recipe.train.lr)
    result = fit(
        head.model,
        loaders,
        probe,
        accelerator,
        probe.scorer(data.labels),
        class_weights=class_weight_tensor(probe.recipe, data.labels),
    )
    # Forget the probe's model and optimizer: the fine-tuning phase's checkpoints hold only its own.
    accelerator.free_memory()
    freeze(trainer.model, Full().trainable(trainer.model), str(job.strategy))
    best = result.best or {}
    return {
        "epochs": probe.recipe.train.epochs,
        "lr": probe.recipe.train.lr,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 2),
        "validation_best": best.get("validation"),
        "features_cached": bool(info.get("cached")),
        "extract_seconds": info.get("extract_seconds", 0.0),
    }
