"""Model sources, the checks on them, and building / saving / loading the adapted model."""

from __future__ import annotations

import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
import transformers
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import validate_repo_id
from torch import nn
from transformers import AutoConfig, AutoModel

from hubtransfer import adapters, modeling_hubtransfer
from hubtransfer.recipe import ModelSpec, Recipe
from hubtransfer.tasks import TaskSpec

logger = logging.getLogger(__name__)

SAFE_WEIGHTS = ("*.safetensors",)
PICKLED_WEIGHTS = ("*.bin", "*.pth", "*.pt", "*.ckpt")
SMALL_FILES = ("*.json", "*.txt", "*.model", "*.tiktoken", "merges.txt", "vocab.*")


class ModelSourceError(ValueError):
    """A checkpoint that cannot be used, with the fix."""


# --------------------------------------------------------------------------- sources


def looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~", ".\\")) or text.count("/") > 1


def fetch_config(spec: ModelSpec):
    """The checkpoint's config, fetched alone (a few KB) so every check runs before weights download."""
    local = Path(spec.id).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelSourceError(f"model.id: folder '{spec.id}' has no config.json; point to a transformers checkpoint folder")
        return AutoConfig.from_pretrained(local, trust_remote_code=spec.trust_remote_code)
    if looks_like_path(spec.id) or local.exists():
        raise ModelSourceError(f"model.id: local folder '{spec.id}' does not exist; check the path, or give a Hub id like org/name")
    try:
        validate_repo_id(spec.id)
        hf_hub_download(spec.id, "config.json", revision=spec.revision)
    except HFValidationError as e:
        raise ModelSourceError(f"model.id: '{spec.id}' is neither a folder nor a valid Hub id ({e})") from None
    except RepositoryNotFoundError:
        raise ModelSourceError(
            f"model.id: Hub model '{spec.id}' was not found (or is private). Check the id; for a private repo log in "
            "(`hf auth login`) or set HF_TOKEN"
        ) from None
    except RevisionNotFoundError:
        raise ModelSourceError(f"model.revision: '{spec.revision}' does not exist in '{spec.id}'; use a branch, tag or commit it has") from None
    except EntryNotFoundError:
        raise ModelSourceError(f"model.id: '{spec.id}' has no config.json; it is not a transformers checkpoint") from None
    return AutoConfig.from_pretrained(spec.id, revision=spec.revision, trust_remote_code=spec.trust_remote_code)


def sentence_pooling_of(spec: ModelSpec) -> str | None:
    """The pooling a sentence-embedding checkpoint was trained with ('mean' / 'cls'), read from its small
    sentence-transformers files (a local folder, or two JSON files from the Hub); None for other checkpoints."""
    from hubtransfer.choices import sentence_pooling

    local = Path(spec.id).expanduser()
    if local.is_dir():
        return sentence_pooling(local)
    files = {}
    for name in ("modules.json", "1_Pooling/config.json"):
        try:
            files[name] = Path(hf_hub_download(spec.id, name, revision=spec.revision)).read_text(encoding="utf-8")
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, HFValidationError, OSError):
            files[name] = None
    return sentence_pooling(None, files)


def resolve_model_dir(spec: ModelSpec) -> Path:
    """A local folder holding the checkpoint: the folder itself, or a Hub snapshot (safetensors only unless allowed)."""
    local = Path(spec.id).expanduser()
    if not local.is_dir():
        patterns = list(SMALL_FILES + SAFE_WEIGHTS)
        if spec.allow_pickle:
            patterns += PICKLED_WEIGHTS
        if spec.trust_remote_code:
            patterns.append("*.py")
        local = Path(snapshot_download(spec.id, revision=spec.revision, allow_patterns=patterns))
    _check_weights(local, spec)
    return local


def _check_weights(folder: Path, spec: ModelSpec) -> None:
    if any(folder.glob("*.safetensors")):
        return
    pickles = [p.name for pat in PICKLED_WEIGHTS for p in folder.glob(pat)]
    if pickles and not spec.allow_pickle:
        raise ModelSourceError(
            f"model.id: '{spec.id}' has only pickled weights ({', '.join(sorted(pickles))}); unpickling can run code. "
            "Convert them to safetensors, or set model.allow_pickle=true if you trust the source"
        )
    if not pickles:
        raise ModelSourceError(f"model.id: '{spec.id}' holds no weights (*.safetensors); point to a trained checkpoint")


def check_task_fits(config, task: TaskSpec, recipe: Recipe) -> None:
    """A checkpoint whose architecture has no class for the task fails here, before any weights load."""
    mapping = getattr(transformers, task.auto_class)._model_mapping
    custom = needs_custom_head(recipe)
    fits = type(config) in (AutoModel._model_mapping if custom else mapping)
    modality_ok = _modality(config) in (task.modality, None)
    if not (fits and modality_ok):
        raise ModelSourceError(
            f"model.id: '{recipe.model.id}' is a {config.model_type} ({_modality(config) or 'unknown'}) checkpoint, which has no "
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
                model_dir, num_labels=len(labels), id2label=id2label, label2id=label2id, ignore_mismatched_sizes=True, **common
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
    config = AutoConfig.from_pretrained(model_dir, num_labels=len(id2label), id2label=id2label, label2id=label2id, trust_remote_code=common["trust_remote_code"])
    backbone = AutoModel.from_pretrained(model_dir, config=config, **common)
    pooling = resolve_pooling(recipe, backbone)
    config.hubtransfer_head = {"pooling": pooling, "hidden_sizes": list(recipe.head.hidden_sizes), "dropout": recipe.head.dropout}
    cls = getattr(modeling_hubtransfer, task.custom_class)
    model = cls(config, backbone=backbone)
    logger.info("head: %s pooling -> %s", pooling, model.head.layers)
    return model


def resolve_pooling(recipe: Recipe, backbone: nn.Module) -> str:
    """The head's pooling for modeling_hubtransfer: 'native' is the backbone's pooler where it has one, else the first token."""
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


def save_model(model: nn.Module, processor, out_dir: Path, task: TaskSpec, *, is_main: bool = True, merge: bool = False) -> nn.Module:
    """save_pretrained (safetensors) + processor; custom heads ship their modeling file and auto_map; a peft
    model saves its adapter (or, with ``merge``, the merged stock model). Returns the model saved."""
    if adapters.is_peft(model):
        saved = adapters.save(model, out_dir, merge=merge, is_main=is_main)
        if is_main:
            processor.save_pretrained(out_dir)
        return saved
    custom = hasattr(model.config, "hubtransfer_head")
    if custom:
        model.config.auto_map = {task.auto_class: f"modeling_hubtransfer.{task.custom_class}"}
        model.config.architectures = [task.custom_class]
    model.save_pretrained(out_dir, is_main_process=is_main)
    if is_main:
        processor.save_pretrained(out_dir)
        if custom:
            shutil.copyfile(modeling_hubtransfer.__file__, out_dir / "modeling_hubtransfer.py")
    return model


def load_trained(folder: str | Path, task: TaskSpec):
    """A model saved by hubtransfer, without running code from the folder (custom heads use our own class)."""
    if adapters.is_adapter_folder(folder):
        return adapters.load(folder, task)
    config = AutoConfig.from_pretrained(folder)
    if hasattr(config, "hubtransfer_head"):
        # The head classes serve any backbone config, so they carry no config_class: pass the config.
        return getattr(modeling_hubtransfer, task.custom_class).from_pretrained(folder, config=config)
    return getattr(transformers, task.auto_class).from_pretrained(folder, use_safetensors=True)
