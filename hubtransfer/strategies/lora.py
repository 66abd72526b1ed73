"""LoRA (and DoRA) through peft: low-rank adapters on the frozen backbone, plus the new head.

The adapted model is peft's own :class:`~peft.PeftModel`, so what a run saves is peft's format and loads back
with ``AutoPeftModelFor<Task>`` (saving and loading: :mod:`hubtransfer.tasks.peft_models`). The head (every
parameter outside the backbone, plus the backbone's pooler: see :mod:`hubtransfer.strategies.base`) is a peft
``modules_to_save`` entry: trained in full and saved with the adapter. With ``peft.merge=true`` the adapters are
folded into the base weights after training and the run saves a stock transformers model instead.
"""

from __future__ import annotations

import logging

from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as LORA_TARGETS
from torch import nn

from hubtransfer.errors import StrategyError
from hubtransfer.strategies.base import Strategy, find_blocks, head_parameters

logger = logging.getLogger(__name__)

# peft's task types, where it has one; image classification has none and loads through the auto mapping.
_TASK_TYPES = {"text-classification": TaskType.SEQ_CLS, "token-classification": TaskType.TOKEN_CLS}


def lora_targets(model: nn.Module) -> list[str]:
    """The modules LoRA adapts: peft's own choice for the architecture (BERT: query, value); else every
    Linear inside the backbone's repeated blocks; else (convolutional nets) their pointwise convolutions."""
    known = LORA_TARGETS.get(getattr(model.config, "model_type", ""))
    if known:
        return list(known)
    _prefix, blocks = find_blocks(model)
    for kind in (nn.Linear, nn.Conv2d):
        names = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, m in blocks.named_modules()
                if isinstance(m, kind) and (kind is nn.Linear or m.kernel_size == (1, 1))
            }
        )
        if names:
            return names
    raise StrategyError(
        f"found no Linear or 1x1 convolution in the blocks of {type(model).__name__} for LoRA; set peft.target_modules"
    )


def head_modules(model: nn.Module) -> list[str]:
    """Paths of the modules holding the head's parameters (what peft keeps whole as modules_to_save)."""
    return sorted({name.rsplit(".", 1)[0] for name in head_parameters(model)})


class LoRA(Strategy):
    """``lora``: the backbone stays frozen; low-rank adapters on some of its layers and the new head train."""

    name = "lora"
    keeps_native_head = True
    lr_family = "lora"

    def describe(self) -> str:
        return (
            "LoRA through peft: the pretrained weights stay frozen; "
            "low-rank adapters on some of their layers and the new head train"
        )

    def prepare(self, model: nn.Module, recipe, base_ref: str, task) -> tuple[PeftModel, dict]:
        return wrap(model, recipe, base_ref, task.name)

    def trainable(self, model: nn.Module) -> set[str]:
        raise StrategyError(
            "strategy 'lora' wraps the model in peft adapters (Strategy.prepare); it does not freeze it in place"
        )

    def check(self, recipe, task) -> list[str]:
        problems = []
        if recipe.head.type != "linear" or recipe.head.pooling not in ("native", "auto"):
            problems.append(
                "strategy 'lora' needs the checkpoint's own head (head.type=linear, head.pooling=native), so the "
                "adapter loads back with AutoPeftModel and stock transformers; drop the head settings or pick another "
                "strategy"
            )
        if recipe.train.layer_decay is not None:
            problems.append(
                "train.layer_decay does not apply to strategy 'lora' (the backbone's weights are frozen); drop it"
            )
        if task.multi_head:
            problems.append(
                f"strategy 'lora' does not support task '{task.name}' (peft keeps one head); use head, top:K or full"
            )
        return problems


def wrap(model: nn.Module, recipe, base_ref: str, task_name: str) -> tuple[PeftModel, dict]:
    """The model with LoRA adapters on its targets and the head trainable; everything else frozen.

    Returns the peft model and the plan the logs and the card report (trainable share of the
    original network's size: peft's copies of the head are not counted twice)."""
    spec = recipe.peft
    total = sum(p.numel() for p in model.parameters())
    targets = list(spec.target_modules) if spec.target_modules else lora_targets(model)
    saved = head_modules(model)
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=targets,
        modules_to_save=list(saved),
        use_dora=spec.method == "dora",
        task_type=_TASK_TYPES.get(task_name),
        base_model_name_or_path=base_ref,
        revision=recipe.model.revision,
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as e:  # e.g. target modules that match nothing
        raise StrategyError(f"peft could not adapt {type(model).__name__}: {e}; check peft.target_modules") from None
    # get_peft_model records the base by the folder it was loaded from; the adapter must name the Hub id.
    peft_model.peft_config["default"].base_model_name_or_path = base_ref
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    plan = {
        "strategy": str(recipe.strategy),
        "trainable_params": trainable,
        "total_params": total,
        "trainable_share": trainable / total,
        "head_params": sorted(head_parameters(model)),
        "adapter": {
            "method": spec.method,
            "r": spec.r,
            "alpha": spec.alpha,
            "dropout": spec.dropout,
            "target_modules": targets,
            "modules_to_save": saved,
            "merged": spec.merge,
        },
    }
    logger.info("%s: r=%d alpha=%g on %s; head %s trained in full", spec.method, spec.r, spec.alpha, targets, saved)
    return peft_model, plan
