"""The previous version's model for an update: its head grown to the merged labels (old rows kept, new rows
initialised as a new head's), and the weight average of two versions (WiSE-FT)."""

from __future__ import annotations

import logging

import torch
from torch import nn

from hubtransfer.tasks.model import load_trained, output_layer, quiet_transformers
from hubtransfer.update.parent import Parent

logger = logging.getLogger(__name__)


def parent_model(parent: Parent, task, labels: list[str], *, new_rows_bias: float | None = None) -> nn.Module:
    """The previous version with one output row per label of ``labels`` (the previous labels first, in order).

    New rows start as a new head's (normal, std initializer_range; zero bias), or with ``new_rows_bias`` (a large
    negative value: the previous version as it was, never predicting a label it did not know, for evaluating it
    on the merged label map)."""
    with quiet_transformers():  # transformers warns that hubtransfer's own config type is not the head's base type
        model = load_trained(parent.folder, task)
    old = len(parent.labels)
    if len(labels) > old:
        _grow(model, old, len(labels), new_rows_bias)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.config.num_labels = len(labels)
    for module in model.modules():  # transformers' heads keep their own count for the loss's reshape
        if isinstance(getattr(module, "num_labels", None), int):
            module.num_labels = len(labels)
    return model


@torch.no_grad()
def _grow(model: nn.Module, old: int, total: int, new_rows_bias: float | None) -> None:
    parent, name, layer = output_layer(model, old)
    grown = nn.Linear(layer.in_features, total, bias=layer.bias is not None)
    nn.init.normal_(grown.weight, std=getattr(model.config, "initializer_range", 0.02))
    grown.weight[:old] = layer.weight
    if grown.bias is not None:
        grown.bias.zero_()
        grown.bias[:old] = layer.bias
        if new_rows_bias is not None:
            grown.weight[old:] = 0.0
            grown.bias[old:] = new_rows_bias
    setattr(parent, name, grown)
    logger.info("head grown from %d to %d labels: the previous rows kept, %d new", old, total, total - old)


@torch.no_grad()
def interpolate(model: nn.Module, previous: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], alpha: float):
    """Load ``(1 - alpha) * previous + alpha * trained`` into ``model`` (floating tensors; the rest from ``trained``).

    ``previous`` is the state ``trained`` started from: the previous version, its head grown to the same shapes (new
    rows at their initial values), so the average runs along the path from the start to the trained weights, as
    WiSE-FT's does. Alpha 1 is the trained model itself."""
    live = model.state_dict()
    for key, value in trained.items():
        old = previous.get(key)
        if old is None or not value.is_floating_point() or old.shape != value.shape:
            live[key].copy_(value)
        else:
            live[key].copy_(torch.lerp(old.to(value.dtype), value, alpha))
