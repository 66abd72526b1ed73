"""LoRA (and DoRA) through peft: low-rank adapters on the frozen backbone, plus the new head.

The adapted model is peft's own :class:`~peft.PeftModel`, so what a run saves is peft's format
(``adapter_config.json`` + ``adapter_model.safetensors``) and loads back with
``AutoPeftModelFor<Task>`` (or ``AutoPeftModel`` for images, through the config's auto mapping).
The head (every parameter outside the backbone, plus the backbone's pooler: see
:mod:`hubtransfer.strategies`) is a peft ``modules_to_save`` entry: trained in full and saved
with the adapter. The adapter names its base by Hub id and revision, so it loads anywhere the
base does; the folder also keeps the task's ``config.json``, which holds the labels.

With ``peft.merge=true`` the adapters are folded into the base weights after training and the
run saves a stock transformers model instead (no peft needed to load it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import transformers
from peft import LoraConfig, PeftConfig, PeftModel, TaskType, get_peft_model
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as LORA_TARGETS
from torch import nn

from hubtransfer.errors import StrategyError
from hubtransfer.strategies.base import find_blocks, head_parameters

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
# peft's task types, where it has one; image classification has none and loads through the auto mapping.
_TASK_TYPES = {"text-classification": TaskType.SEQ_CLS, "token-classification": TaskType.TOKEN_CLS}


def lora_targets(model: nn.Module) -> list[str]:
    """The modules LoRA adapts: peft's own choice for the architecture (BERT: query, value); else every
    Linear inside the backbone's repeated blocks; else (convolutional nets) their pointwise convolutions."""
    known = LORA_TARGETS.get(getattr(model.config, "model_type", ""))
    if known:
        return list(known)
    prefix, blocks = find_blocks(model)
    for kind in (nn.Linear, nn.Conv2d):
        names = sorted({name.rsplit(".", 1)[-1] for name, m in blocks.named_modules()
                        if isinstance(m, kind) and (kind is nn.Linear or m.kernel_size == (1, 1))})
        if names:
            return names
    raise StrategyError(
        f"found no Linear or 1x1 convolution in the blocks of {type(model).__name__} for LoRA; set peft.target_modules"
    )


def head_modules(model: nn.Module) -> list[str]:
    """Paths of the modules holding the head's parameters (what peft keeps whole as modules_to_save)."""
    return sorted({name.rsplit(".", 1)[0] for name in head_parameters(model)})


def wrap(model: nn.Module, recipe, base_ref: str, task_name: str) -> tuple[PeftModel, dict]:
    """The model with LoRA adapters on its targets and the head trainable; everything else frozen.

    Returns the peft model and the plan the logs and the card report (trainable share of the
    original network's size: peft's copies of the head are not counted twice)."""
    spec = recipe.peft
    total = sum(p.numel() for p in model.parameters())
    targets = list(spec.target_modules) if spec.target_modules else lora_targets(model)
    saved = head_modules(model)
    config = LoraConfig(
        r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=targets, modules_to_save=list(saved),
        use_dora=spec.method == "dora", task_type=_TASK_TYPES.get(task_name),
        base_model_name_or_path=base_ref, revision=recipe.model.revision,
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as e:  # e.g. target modules that match nothing
        raise StrategyError(f"peft could not adapt {type(model).__name__}: {e}; check peft.target_modules") from None
    # get_peft_model records the base by the folder it was loaded from; the adapter must name the Hub id.
    peft_model.peft_config["default"].base_model_name_or_path = base_ref
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    plan = {"strategy": recipe.strategy, "trainable_params": trainable, "total_params": total, "trainable_share": trainable / total,
            "head_params": sorted(head_parameters(model)),
            "adapter": {"method": spec.method, "r": spec.r, "alpha": spec.alpha, "dropout": spec.dropout,
                        "target_modules": targets, "modules_to_save": saved, "merged": spec.merge}}
    logger.info("%s: r=%d alpha=%g on %s; head %s trained in full", spec.method, spec.r, spec.alpha, targets, saved)
    return peft_model, plan


def is_peft(model: nn.Module) -> bool:
    return isinstance(model, PeftModel)


def save(model: PeftModel, out_dir: Path, *, merge: bool, is_main: bool) -> nn.Module:
    """The adapter in peft's format plus the task config (labels), or with ``merge`` the merged stock model.
    Returns the model that was saved."""
    if merge:
        merged = model.merge_and_unload()
        merged.save_pretrained(out_dir, is_main_process=is_main)
        return merged
    model.save_pretrained(out_dir, is_main_process=is_main)
    if is_main:
        model.get_base_model().config.save_pretrained(out_dir)
    return model


def is_adapter_folder(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def load(folder: str | Path, task, **hub) -> PeftModel:
    """An adapter folder (or Hub repo, with ``hub`` = revision / cache_dir) on its base, with the labels it
    was trained for; what ``AutoPeftModelFor<Task>`` does, with the labels from the saved config."""
    peft_config = PeftConfig.from_pretrained(str(folder), **hub)
    config = transformers.AutoConfig.from_pretrained(str(folder), **hub)
    auto = getattr(transformers, task.auto_class)
    # The base's own output layer (if any) is replaced by the adapter's saved head: sizes may differ.
    base = auto.from_pretrained(
        peft_config.base_model_name_or_path, revision=peft_config.revision, use_safetensors=True,
        id2label=config.id2label, label2id=config.label2id, problem_type=config.problem_type, ignore_mismatched_sizes=True,
        cache_dir=hub.get("cache_dir"),
    )
    return PeftModel.from_pretrained(base, str(folder), **hub)


def adapter_facts(folder: str | Path) -> dict | None:
    """What the card says of a saved adapter: method, rank, targets, base (None for a full model)."""
    path = Path(folder) / ADAPTER_CONFIG
    if not path.is_file():
        return None
    cfg = json.loads(path.read_text(encoding="utf-8"))
    return {"method": "dora" if cfg.get("use_dora") else cfg.get("peft_type", "LORA").lower(), "r": cfg.get("r"),
            "alpha": cfg.get("lora_alpha"), "target_modules": cfg.get("target_modules"),
            "modules_to_save": cfg.get("modules_to_save"), "base_model": cfg.get("base_model_name_or_path"),
            "peft_task_type": cfg.get("task_type")}

