"""Saved LoRA / DoRA adapters (peft's format: adapter_config.json + adapter_model.safetensors, naming the base by Hub id
and revision): saving, loading on their base, what the card says of them. Making them is the lora strategy's
(hubtransfer.strategies.lora)."""

from __future__ import annotations

import json
from pathlib import Path

import transformers
from peft import PeftConfig, PeftModel
from torch import nn

ADAPTER_CONFIG = "adapter_config.json"


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
        peft_config.base_model_name_or_path,
        revision=peft_config.revision,
        use_safetensors=True,
        id2label=config.id2label,
        label2id=config.label2id,
        problem_type=config.problem_type,
        ignore_mismatched_sizes=True,
        cache_dir=hub.get("cache_dir"),
    )
    return PeftModel.from_pretrained(base, str(folder), **hub)


def adapter_facts(folder: str | Path) -> dict | None:
    """What the card says of a saved adapter: method, rank, targets, base (None for a full model)."""
    path = Path(folder) / ADAPTER_CONFIG
    if not path.is_file():
        return None
    cfg = json.loads(path.read_text(encoding="utf-8"))
    return {
        "method": "dora" if cfg.get("use_dora") else cfg.get("peft_type", "LORA").lower(),
        "r": cfg.get("r"),
        "alpha": cfg.get("lora_alpha"),
        "target_modules": cfg.get("target_modules"),
        "modules_to_save": cfg.get("modules_to_save"),
        "base_model": cfg.get("base_model_name_or_path"),
        "peft_task_type": cfg.get("task_type"),
    }
