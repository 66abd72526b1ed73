"""Classification models with a pooled / MLP head on any transformers backbone.

This file is self-contained (torch + transformers only) because it is copied next to a saved
model: stock ``AutoModelFor...Classification.from_pretrained(folder, trust_remote_code=True)``
and ``pipeline(..., trust_remote_code=True)`` load it through ``config.auto_map``.
hubtransfer uses it only when a recipe asks for a head the checkpoint's own classes lack
(mean pooling, an MLP); the default linear head keeps the stock class and needs no code.

A saved model's config is a :class:`HubtransferConfig`: the backbone's keys, flat, under a model type of its own
(the backbone's in ``backbone_model_type``). Saved under the backbone's model type, stock ``Auto*`` classes called
without ``trust_remote_code`` would build the backbone's stock head around these weights and answer with it,
silently; under its own type they ask for ``trust_remote_code=True`` instead.

The head is described by ``config.hubtransfer_head``:
``{"pooling": "pooler" | "cls" | "mean", "hidden_sizes": [..], "dropout": float}``.

:class:`HubtransferMultiTask` puts several such heads on one backbone (multi-task learning), listed in
``config.hubtransfer_heads``: ``[{"name", "type": "classification" | "regression", "weight", "labels"}]``.
It loads with ``AutoModel.from_pretrained(folder, trust_remote_code=True)``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import ImageClassifierOutput, SequenceClassifierOutput


class ClassificationHead(nn.Module):
    """Dropout -> [Linear -> GELU -> Dropout]* -> Linear(num_labels)."""

    def __init__(self, in_features: int, num_labels: int, hidden_sizes: list[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = in_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_labels))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def pool(outputs, attention_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """Features for the head from a backbone's outputs."""
    if how == "pooler":
        return outputs.pooler_output.flatten(1)
    hidden = outputs.last_hidden_state
    if hidden.dim() == 4:  # a convolutional feature map (B, C, H, W)
        return hidden.mean(dim=(2, 3))
    if how == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def feature_size(config) -> int:
    """Width of the pooled features for the common config conventions."""
    for name in ("hidden_size", "hidden_dim", "d_model", "dim"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    sizes = getattr(config, "hidden_sizes", None)
    if sizes:
        return sizes[-1]
    raise ValueError(f"cannot tell the feature width of a {type(config).__name__}; use head.type=linear")


def drop_unused_pooler(backbone: nn.Module, pooling: str) -> None:
    if pooling != "pooler" and getattr(backbone, "pooler", None) is not None and hasattr(backbone.pooler, "dense"):
        # An unused pooler would hold trainable weights that never get gradients (DDP refuses those).
        backbone.pooler = None


class HubtransferConfig(PretrainedConfig):
    """The backbone's config under hubtransfer's model type; ``backbone_model_type`` names the backbone's."""

    model_type = "hubtransfer"

    @classmethod
    def wrap(cls, config: PretrainedConfig) -> HubtransferConfig:
        keys = {k: v for k, v in config.to_dict().items() if k != "model_type"}
        return cls(**{**keys, "backbone_model_type": keys.get("backbone_model_type", config.model_type)})


def backbone_config(config: PretrainedConfig) -> PretrainedConfig:
    """The config the backbone is built from: the backbone's own class (a HubtransferConfig unwrapped)."""
    if not isinstance(config, HubtransferConfig):
        return config
    keys = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "backbone_model_type")}
    return AutoConfig.for_model(config.backbone_model_type, **keys)


class _PooledBackboneModel(PreTrainedModel):
    """What every hubtransfer model shares: any AutoModel of the config as ``backbone`` (saved as backbone.*),
    its pooler dropped when unused, and new heads initialised like transformers' Linear layers."""

    config_class = HubtransferConfig  # what a saved model loads with; built in training on the backbone's own config
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _set_backbone(self, config, backbone: nn.Module | None) -> None:
        self.backbone = backbone if backbone is not None else AutoModel.from_config(backbone_config(config))
        drop_unused_pooler(self.backbone, config.hubtransfer_head["pooling"])

    def _new_heads(self) -> nn.Module:
        raise NotImplementedError

    def _init_weights(self, module):
        if isinstance(module, nn.Linear) and any(module is m for m in self._new_heads().modules()):
            nn.init.normal_(module.weight, std=getattr(self.config, "initializer_range", 0.02))
            nn.init.zeros_(module.bias)


class _HeadModel(_PooledBackboneModel):
    # Saved keys are backbone.* and head.*.

    def __init__(self, config, backbone: nn.Module | None = None):
        super().__init__(config)
        spec = config.hubtransfer_head
        self._set_backbone(config, backbone)
        self.head = ClassificationHead(feature_size(config), config.num_labels, spec["hidden_sizes"], spec["dropout"])
        self.post_init()

    def _new_heads(self) -> nn.Module:
        return self.head

    def _logits_and_loss(self, outputs, attention_mask, labels):
        logits = self.head(pool(outputs, attention_mask, self.config.hubtransfer_head["pooling"]))
        if labels is None:
            loss = None
        elif self.config.problem_type in ("multi_label_classification", "regression"):
            # transformers' loss for these problem types (BCE-with-logits on multi-hot floats / MSE), as stock heads use
            loss = ForSequenceClassificationLoss(labels, logits.float(), self.config)
        else:
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return logits, loss


class HubtransferForSequenceClassification(_HeadModel):
    """Text backbone + pooled head; forward takes the tokenizer's outputs and optional labels."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        kwargs.pop("return_dict", None)
        outputs = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        logits, loss = self._logits_and_loss(outputs, attention_mask, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class HubtransferForImageClassification(_HeadModel):
    """Vision backbone + pooled head; forward takes ``pixel_values`` and optional labels."""

    main_input_name = "pixel_values"

    def forward(self, pixel_values=None, labels=None, **kwargs):
        kwargs.pop("return_dict", None)
        outputs = self.backbone(pixel_values=pixel_values, **kwargs)
        logits, loss = self._logits_and_loss(outputs, None, labels)
        return ImageClassifierOutput(loss=loss, logits=logits)


class HubtransferMultiTask(_PooledBackboneModel):
    """Text backbone + one pooled head per task, trained together (multi-task learning).

    ``logits`` is every head's output side by side, in ``config.hubtransfer_heads`` order (a classification head
    gives one column per label, a regression head one column); :meth:`split_logits` cuts it per head. ``labels``
    is a float (batch, heads) tensor: class ids for classification heads, numbers for regression heads. The loss
    is the weighted sum of the heads' losses: cross-entropy for classification, mean squared error for regression.
    """

    is_multi_task = True

    def __init__(self, config, backbone: nn.Module | None = None):
        super().__init__(config)
        spec = config.hubtransfer_head
        self._set_backbone(config, backbone)
        width = feature_size(config)
        self.heads = nn.ModuleDict(
            {
                h["name"]: ClassificationHead(width, head_outputs(h), spec["hidden_sizes"], spec["dropout"])
                for h in config.hubtransfer_heads
            }
        )
        self.post_init()

    def _new_heads(self) -> nn.Module:
        return self.heads

    def split_logits(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """{head name: its (batch, outputs) slice of ``logits``}."""
        sizes = [head_outputs(h) for h in self.config.hubtransfer_heads]
        return {h["name"]: part for h, part in zip(self.config.hubtransfer_heads, logits.split(sizes, dim=-1))}

    def head_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """{head name: its unweighted loss} for (batch, heads) ``labels``."""
        out = {}
        for i, (head, part) in enumerate(zip(self.config.hubtransfer_heads, self.split_logits(logits).values())):
            target = labels[:, i]
            if head["type"] == "regression":
                out[head["name"]] = nn.functional.mse_loss(part.float().squeeze(-1), target.float())
            else:
                out[head["name"]] = nn.functional.cross_entropy(part.float(), target.long())
        return out

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        kwargs.pop("return_dict", None)
        outputs = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        features = pool(outputs, attention_mask, self.config.hubtransfer_head["pooling"])
        logits = torch.cat([head(features) for head in self.heads.values()], dim=-1)
        loss = None
        if labels is not None:
            weights = {h["name"]: h["weight"] for h in self.config.hubtransfer_heads}
            loss = sum(weights[name] * value for name, value in self.head_losses(logits, labels).items())
        return SequenceClassifierOutput(loss=loss, logits=logits)


def head_outputs(head: dict) -> int:
    """Output columns of one multi-task head: its labels, or one number."""
    return 1 if head["type"] == "regression" else len(head["labels"])
