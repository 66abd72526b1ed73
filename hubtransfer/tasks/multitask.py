"""multi-task: one text encoder, several heads trained together (``heads:`` in the recipe).

Each head reads the same pooled features and answers its own question: a classification head
(cross-entropy over its label column's values) or a regression head (mean squared error on a
number). The training loss is the weighted sum of the heads' losses. The model is
:class:`hubtransfer.modeling_hubtransfer.HubtransferMultiTask`, saved with its modeling file and
``auto_map`` (``AutoModel`` + ``trust_remote_code``), and loaded by hubtransfer's own loader without
running code from the folder.

Evaluation reports every head's metrics as ``<head>/<metric>`` and, for early stopping and the
card's headline, ``accuracy`` / ``f1`` / ``precision`` / ``recall`` as unweighted means over the
classification heads (regression heads are not in them; watch ``<head>/r_squared`` for those).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, DataCollatorWithPadding

from hubtransfer.data.multitask import COLUMN, HeadLabels, prepare_multitask
from hubtransfer.tasks import TASKS, TaskSpec, modeling_hubtransfer
from hubtransfer.tasks.metrics import DEFAULT_METRICS, classification_metrics
from hubtransfer.tasks.model import resolve_pooling
from hubtransfer.tasks.modeling_hubtransfer import head_outputs
from hubtransfer.tasks.problem_metrics import error_metrics
from hubtransfer.tasks.text_classification import EncodedText, load_processor

PREDICT_BATCH = 64


# --------------------------------------------------------------------------- inputs


def encode(prepared, tokenizer, recipe) -> dict:
    """Token ids per split; each example's labels are one float per head (class id or number), in head order."""
    columns = [COLUMN.format(h.name) for h in recipe.heads]
    out = {}
    for split, ds in prepared.splits.items():
        enc = tokenizer(list(ds["text"]), truncation=True, max_length=recipe.data.max_length)
        labels = [list(row) for row in zip(*(map(float, ds[c]) for c in columns))]
        out[split] = EncodedText({k: enc[k] for k in enc}, labels)
    return out


def collate(tokenizer, recipe):
    """Padded inputs and a float (batch, heads) ``labels`` tensor, so the loop's ``batch.pop("labels")`` takes all heads
    at once."""
    pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=recipe.data.pad_to_multiple_of, return_tensors="pt")

    def collate_fn(items: list[dict]) -> dict:
        batch = pad([{k: v for k, v in item.items() if k != "labels"} for item in items])
        batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.float32)
        return batch

    return collate_fn


# --------------------------------------------------------------------------- model


def build_model(model_dir, recipe, labels: HeadLabels, common: dict):
    """The pretrained encoder (AutoModel) with one new head per task on its pooled features."""

    id2label = dict(enumerate(labels))  # every output column: head/label, or head for a regression head
    config = AutoConfig.from_pretrained(
        model_dir,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        trust_remote_code=common["trust_remote_code"],
    )
    backbone = AutoModel.from_pretrained(model_dir, config=config, **common)
    config.hubtransfer_head = {
        "pooling": resolve_pooling(recipe, backbone),
        "hidden_sizes": list(recipe.head.hidden_sizes),
        "dropout": recipe.head.dropout,
    }
    config.hubtransfer_heads = [
        {k: h[k] for k in ("name", "type", "weight", "labels", "label_column")} for h in labels.heads
    ]
    return modeling_hubtransfer.HubtransferMultiTask(config, backbone=backbone)


# --------------------------------------------------------------------------- evaluation


class MultiTaskScorer:
    """Per head: argmax class ids (classification) or the predicted number (regression), taken on the device
    as one (batch, heads) tensor; scored as ``<head>/accuracy, f1, precision, recall`` or ``<head>/rmse, mae,
    r_squared``,
    plus the means over classification heads under the plain names (what early stopping watches by default)."""

    def __init__(self, labels: HeadLabels):
        self.heads = labels.heads
        self.sizes = [head_outputs(h) for h in self.heads]

    def reduce(self, logits, labels):
        parts = logits.float().split(self.sizes, dim=-1)
        preds = [
            p.squeeze(-1) if h["type"] == "regression" else p.argmax(-1).float() for h, p in zip(self.heads, parts)
        ]
        return torch.stack(preds, dim=-1), labels.float()

    def score(self, predictions: list, references: list) -> dict:
        preds, refs = np.concatenate(predictions), np.concatenate(references)
        per_head = {}
        for i, head in enumerate(self.heads):
            if head["type"] == "regression":
                scores = error_metrics(refs[:, i], preds[:, i])
            else:
                scores = classification_metrics(preds[:, i].astype(np.int64), refs[:, i].astype(np.int64))
            per_head.update({f"{head['name']}/{k}": v for k, v in scores.items()})
        classify = [h["name"] for h in self.heads if h["type"] == "classification"]
        means = (
            {m: float(np.mean([per_head[f"{n}/{m}"] for n in classify])) for m in DEFAULT_METRICS} if classify else {}
        )
        return {"metrics": {**means, **per_head}, "predictions": preds, "references": refs}


# --------------------------------------------------------------------------- inference


@torch.no_grad()
def predict(model, tokenizer, inputs: list[str], top_k: int = 1) -> list[dict]:
    """For each text, ``{head: [{"label", "score"}, ...top_k]}`` (softmax scores) or ``{head: {"value": x}}`` for
    regression."""
    model.eval()
    out: list[dict] = []
    for start in range(0, len(inputs), PREDICT_BATCH):
        batch = tokenizer(
            list(inputs[start : start + PREDICT_BATCH]), return_tensors="pt", padding=True, truncation=True
        )
        logits = model(**batch.to(model.device)).logits.float()
        parts = model.split_logits(logits)
        rows = [{} for _ in range(logits.shape[0])]
        for head in model.config.hubtransfer_heads:
            part = parts[head["name"]]
            for row, values in zip(rows, part):
                row[head["name"]] = _head_prediction(head, values, top_k)
        out += rows
    return out


def _head_prediction(head: dict, values: torch.Tensor, top_k: int):
    if head["type"] == "regression":
        return {"value": float(values[0])}
    probs = values.softmax(-1)
    top = probs.topk(min(top_k, len(head["labels"])))
    return [{"label": head["labels"][i], "score": float(s)} for s, i in zip(top.values.tolist(), top.indices.tolist())]


MULTI_TASK = "multi-task"


def check_recipe(recipe, metric: str) -> list[str]:
    """The ``heads:`` list (two or more, distinctly named, on distinct columns) and the watched metric: a head's
    (``head/metric``) or a mean over the classification heads."""
    heads = recipe.heads
    if len(heads) < 2:
        return [
            f"heads: task '{MULTI_TASK}' needs at least 2 heads, got {len(heads)}; list them as "
            "heads: [{name: a, label_column: col_a}, {name: b, label_column: col_b}] (one head is task "
            "text-classification)"
        ]
    problems = []
    for what, values in (("name", [h.name for h in heads]), ("label_column", [h.label_column for h in heads])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            problems.append(
                f"heads: {what} {twice} appears more than once (got {values}); give each head its own {what}"
            )
    classify = [h.name for h in heads if h.type == "classification"]
    if (
        "/" in metric
    ):  # the loop maximises the watched metric: a regression head offers R² (RMSE / MAE fall as it improves)
        head, _, name = metric.partition("/")
        known = {h.name: (DEFAULT_METRICS if h.type == "classification" else ("r_squared",)) for h in heads}
        if name not in known.get(head, ()):
            options = [f"{h}/{m}" for h, ms in known.items() for m in ms]
            problems.append(
                f"train.early_stopping.metric '{metric}' is not computed for these heads; pick one of {options}"
                + (" or accuracy / f1 (means over the classification heads)" if classify else "")
            )
    elif not classify:
        problems.append(
            f"train.early_stopping.metric '{metric}' is a mean over classification heads, and every head is a "
            f"regression; watch a head's metric instead, e.g. {heads[0].name}/r_squared"
        )
    return problems


TASKS.register(
    MULTI_TASK,
    TaskSpec(
        name=MULTI_TASK,
        modality="text",
        auto_class="AutoModel",
        custom_class="HubtransferMultiTask",
        load_processor=load_processor,
        encode=encode,
        collate=collate,
        scorer=MultiTaskScorer,
        prepare=prepare_multitask,
        build_model=build_model,
        predict=predict,
        evidence=False,  # baselines, ranking scores and curves read one label column
        multi_head=True,
        check_recipe=check_recipe,
    ),
)
