"""Model sources, the checks on them, and building / saving / loading the adapted model."""

from __future__ import annotations

import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
import transformers
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig
from transformers.models.auto import modeling_auto

from hubtransfer.errors import ModelSourceError
from hubtransfer.recipe.schema import Recipe
from hubtransfer.tasks import TaskSpec, modeling_hubtransfer
from hubtransfer.tasks import peft_models as adapters

logger = logging.getLogger(__name__)

# The model types each auto class has a model for (transformers' public tables, by model type).
AUTO_CLASS_NAMES = {
    "AutoModel": "MODEL_MAPPING_NAMES",
    "AutoModelForSequenceClassification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "AutoModelForImageClassification": "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
    "AutoModelForTokenClassification": "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "AutoModelForMaskedLM": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
}


# --------------------------------------------------------------------------- sources


def check_task_fits(config, task: TaskSpec, recipe: Recipe) -> None:
    """A checkpoint whose architecture has no class for the task fails here, before any weights load."""
    auto_class = "AutoModel" if needs_custom_head(recipe) else task.auto_class  # a custom head needs a backbone
    fits = config.model_type in getattr(modeling_auto, AUTO_CLASS_NAMES[auto_class])
    modality_ok = _modality(config) in (task.modality, None)
    if not (fits and modality_ok):
        raise ModelSourceError(
            f"model.id: '{recipe.model.id}' is a {config.model_type} ({_modality(config) or 'unknown'}) checkpoint, "
            "which has no "
            f"{task.name} model in transformers; pick a {task.modality} checkpoint or change task"
        )


def _modality(config) -> str | None:
    if getattr(config, "vocab_size", None) and not getattr(config, "num_channels", None):
        return "text"
    if getattr(config, "num_channels", None) or getattr(config, "image_size", None):
        return "image"
    return None


# --------------------------------------------------------------------------- building


def needs_custom_head(recipe: Recipe) -> bool:
    """Pooled / MLP heads are not in the checkpoint's own classes: they use modeling_hubtransfer. (``auto`` pooling
    is resolved before the model is built; unresolved, it counts as the checkpoint's own.)"""
    return recipe.head.type == "mlp" or recipe.head.pooling not in ("native", "auto")


@contextmanager
def quiet_transformers(level: int = transformers.logging.ERROR):
    """Hide transformers' log lines below ``level`` (they describe what hubtransfer does on purpose)."""
    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity(level)
    try:
        yield
    finally:
        transformers.logging.set_verbosity(previous)


def build_model(task: TaskSpec, model_dir: Path, recipe: Recipe, labels: list[str]) -> nn.Module:
    """The pretrained backbone with a new head sized to ``labels``; the old output layer is dropped."""
    id2label = dict(enumerate(labels))
    label2id = {v: k for k, v in id2label.items()}
    common = dict(trust_remote_code=recipe.model.trust_remote_code, use_safetensors=not recipe.model.allow_pickle)
    # Loading with a replaced head logs "newly initialized" warnings for the head we replace on purpose.
    with quiet_transformers():
        if task.build_model is not None:  # a task with no transformers class of its own (multi-task)
            model = task.build_model(model_dir, recipe, labels, common)
        elif not task.labeled:  # self-supervised: the pretraining head is the task's head, nothing is replaced
            model = getattr(transformers, task.auto_class).from_pretrained(model_dir, **common)
        elif needs_custom_head(recipe):
            model = _custom_model(task, model_dir, recipe, id2label, label2id, common)
        else:
            auto = getattr(transformers, task.auto_class)
            model = auto.from_pretrained(
                model_dir,
                num_labels=len(labels),
                id2label=id2label,
                label2id=label2id,
                ignore_mismatched_sizes=True,
                **common,
            )
            replace_output_layer(model, len(labels))
    if recipe.model.init == "random":
        reinitialize(model)
        logger.info("model.init=random: every pretrained weight re-initialised (from-scratch baseline)")
    return model


def reinitialize(model: nn.Module) -> None:
    """Fresh weights for the same architecture, drawn from the global seed, in a way that trains from scratch.

    Not ``model.init_weights()``: transformers' ``_init_weights`` draws batch-norm scales from
    N(0, 0.02) for some vision models (EfficientNet), and activations then vanish. Here convolutions
    get Kaiming init (fan-out, ReLU), norms scale 1 / shift 0, linear layers and embeddings
    N(0, initializer_range). Convolutions that are exactly zero in the checkpoint are kept: they encode
    an identity on purpose (the converted EfficientNet-Lite0's squeeze-excite blocks, which Lite lacks).
    """
    std = getattr(model.config, "initializer_range", 0.02)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d)):
                if not module.weight.any():
                    continue  # a deliberate identity: keep it (and its bias)
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                if module.weight is not None:
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)
                if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    module.reset_running_stats()
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()


def _custom_model(task, model_dir, recipe, id2label, label2id, common):
    config = AutoConfig.from_pretrained(
        model_dir,
        num_labels=len(id2label),
        id2label=id2label,
        label2id=label2id,
        trust_remote_code=common["trust_remote_code"],
    )
    backbone = AutoModel.from_pretrained(model_dir, config=config, **common)
    pooling = resolve_pooling(recipe, backbone)
    config.hubtransfer_head = {
        "pooling": pooling,
        "hidden_sizes": list(recipe.head.hidden_sizes),
        "dropout": recipe.head.dropout,
    }
    cls = getattr(modeling_hubtransfer, task.custom_class)
    model = cls(config, backbone=backbone)
    logger.info("head: %s pooling -> %s", pooling, model.head.layers)
    return model


def resolve_pooling(recipe: Recipe, backbone: nn.Module) -> str:
    """The head's pooling for modeling_hubtransfer: 'native' is the backbone's pooler where it has one, else the first
    token."""
    if recipe.head.pooling not in ("native", "auto"):
        return recipe.head.pooling
    return "pooler" if getattr(backbone, "pooler", None) is not None else "cls"


def output_layer(model: nn.Module, num_labels: int) -> tuple[nn.Module, str, nn.Linear]:
    """(parent, attribute, layer) of the classifier's last Linear."""
    for name in ("classifier", "score", "fc", "head", "logits"):
        mod = getattr(model, name, None)
        if isinstance(mod, nn.Linear):
            return model, name, mod
        if isinstance(getattr(mod, "out_proj", None), nn.Linear):  # RoBERTa-style heads
            return mod, "out_proj", mod.out_proj
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_labels]
    if not linears:
        raise ModelSourceError(f"cannot find the output layer of {type(model).__name__}; use head.type=mlp")
    path, layer = linears[-1]
    parent = model.get_submodule(path.rsplit(".", 1)[0]) if "." in path else model
    return parent, path.rsplit(".", 1)[-1], layer


def replace_output_layer(model: nn.Module, num_labels: int) -> None:
    """A fresh Linear sized to the labels replaces the old output layer, even when sizes happen to match."""
    parent, name, old = output_layer(model, num_labels)
    new = nn.Linear(old.in_features, num_labels)
    nn.init.normal_(new.weight, std=getattr(model.config, "initializer_range", 0.02))
    nn.init.zeros_(new.bias)
    setattr(parent, name, new)
    logger.info("output layer '%s' replaced: %d -> %d outputs", name, old.in_features, num_labels)


# --------------------------------------------------------------------------- saving and loading


def save_model(
    model: nn.Module,
    processor,
    out_dir: Path,
    task: TaskSpec,
    *,
    is_main: bool = True,
    merge: bool = False,
    state_dict: dict | None = None,
) -> nn.Module:
    """save_pretrained (safetensors) + processor; custom heads ship their modeling file and auto_map; a peft
    model saves its adapter (or, with ``merge``, the merged stock model). Returns the model saved.

    ``state_dict``: the full weights gathered from a sharded engine (FSDP, ZeRO-3), whose own parameters are only
    this process's shards; saved as one consolidated file."""
    if adapters.is_peft(model):
        saved = adapters.save(model, out_dir, merge=merge, is_main=is_main)
        if is_main:
            processor.save_pretrained(out_dir)
        return saved
    custom = hasattr(model.config, "hubtransfer_head")
    if custom:
        model.config.auto_map = {
            "AutoConfig": "modeling_hubtransfer.HubtransferConfig",
            task.auto_class: f"modeling_hubtransfer.{task.custom_class}",
        }
        model.config.architectures = [task.custom_class]
    model.save_pretrained(out_dir, is_main_process=is_main, state_dict=state_dict)
    if is_main:
        processor.save_pretrained(out_dir)
        if custom:  # under hubtransfer's own model type: stock loaders ask for trust_remote_code, never guess
            modeling_hubtransfer.HubtransferConfig.wrap(model.config).save_pretrained(out_dir)
            shutil.copyfile(modeling_hubtransfer.__file__, out_dir / "modeling_hubtransfer.py")
    return model


def saved_config(folder: str | Path, **hub):
    """A saved model's config (a folder or a Hub repo); hubtransfer's own heads read with hubtransfer's own config
    class, so no code from the folder runs."""
    keys, _ = PretrainedConfig.get_config_dict(str(folder), **hub)
    if keys.get("model_type") == modeling_hubtransfer.HubtransferConfig.model_type:
        return modeling_hubtransfer.HubtransferConfig.from_pretrained(str(folder), **hub)
    return AutoConfig.from_pretrained(str(folder), **hub)


def load_trained(folder: str | Path, task: TaskSpec):
    """A model saved by hubtransfer, without running code from the folder (custom heads use our own class)."""
    if adapters.is_adapter_folder(folder):
        return adapters.load(folder, task)
    config = saved_config(folder)
    if hasattr(config, "hubtransfer_head"):
        # The head classes serve any backbone config, so they carry no config_class: pass the config.
        return getattr(modeling_hubtransfer, task.custom_class).from_pretrained(folder, config=config)
    return getattr(transformers, task.auto_class).from_pretrained(folder, use_safetensors=True)
