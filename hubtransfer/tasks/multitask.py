"""multi-task: one text encoder, several heads trained together (``heads:`` in the recipe).

Each head reads the same pooled features and answers its own question: a classification head
(cross-entropy over its label column's values) or a regression head (mean squared error on a
number). The training loss is the weighted sum of the heads' losses. The model is
:class:`hubtransfer.modeling_hubtransfer.HubtransferMultiTask`, saved with its modeling file and
``auto_map`` (``AutoModel`` + ``trust_remote_code``), and loaded by hubtransfer's own loader without
running code from the folder.

Evaluation reports every head's metrics as ``<head>/<metric>`` and, for early stopping and the
card's headline, ``accuracy`` / ``f1`` / ``precision`` / ``recall`` as unweighted means over the
classification heads (regression heads are not in them; watch ``<head>/r2`` for those).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, DataCollatorWithPadding

from hubtransfer.data.multitask import COLUMN, HeadLabels, prepare_multitask
from hubtransfer.recipe.schema import MULTI_TASK
from hubtransfer.tasks import TASKS, TaskSpec, modeling_hubtransfer
from hubtransfer.tasks.metrics import DEFAULT_METRICS, classification_metrics
from hubtransfer.tasks.modeling_hubtransfer import head_outputs
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
        out[split] = EncodedText({k: enc[k] for k in enc.keys()}, labels)
    return out


def collate(tokenizer, recipe):
    """Padded inputs and a float (batch, heads) ``labels`` tensor, so the loop's ``batch.pop("labels")`` takes all heads at once."""
    pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=recipe.data.pad_to_multiple_of, return_tensors="pt")

    def collate_fn(items: list[dict]) -> dict:
        batch = pad([{k: v for k, v in item.items() if k != "labels"} for item in items])
        batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.float32)
        return batch

    return collate_fn


# --------------------------------------------------------------------------- model


def build_model(model_dir, recipe, labels: HeadLabels, common: dict):
    """The pretrained encoder (AutoModel) with one new head per task on its pooled features."""
    from hubtransfer.tasks.model import resolve_pooling  # late: model imports the task registry

    id2label = dict(enumerate(labels))  # every output column: head/label, or head for a regression head
    config = AutoConfig.from_pretrained(model_dir, id2label=id2label, label2id={v: k for k, v in id2label.items()},
                                        trust_remote_code=common["trust_remote_code"])
    backbone = AutoModel.from_pretrained(model_dir, config=config, **common)
    config.hubtransfer_head = {"pooling": resolve_pooling(recipe, backbone), "hidden_sizes": list(recipe.head.hidden_sizes),
                               "dropout": recipe.head.dropout}
    config.hubtransfer_heads = [{k: h[k] for k in ("name", "type", "weight", "labels", "label_column")} for h in labels.heads]
    return modeling_hubtransfer.HubtransferMultiTask(config, backbone=backbone)


# --------------------------------------------------------------------------- evaluation


class MultiTaskScorer:
    """Per head: argmax class ids (classification) or the predicted number (regression), taken on the device
    as one (batch, heads) tensor; scored as ``<head>/accuracy, f1, precision, recall`` or ``<head>/rmse, mae, r2``,
    plus the means over classification heads under the plain names (what early stopping watches by default)."""

    def __init__(self, labels: HeadLabels):
        self.heads = labels.heads
        self.sizes = [head_outputs(h) for h in self.heads]

    def reduce(self, logits, labels):
        parts = logits.float().split(self.sizes, dim=-1)
        preds = [p.squeeze(-1) if h["type"] == "regression" else p.argmax(-1).float() for h, p in zip(self.heads, parts)]
        return torch.stack(preds, dim=-1), labels.float()

    def score(self, predictions: list, references: list) -> dict:
        preds, refs = np.concatenate(predictions), np.concatenate(references)
        per_head = {}
        for i, head in enumerate(self.heads):
            if head["type"] == "regression":
                scores = regression_metrics(preds[:, i], refs[:, i])
            else:
                scores = classification_metrics(preds[:, i].astype(np.int64), refs[:, i].astype(np.int64))
            per_head.update({f"{head['name']}/{k}": v for k, v in scores.items()})
        classify = [h["name"] for h in self.heads if h["type"] == "classification"]
        means = {m: float(np.mean([per_head[f"{n}/{m}"] for n in classify])) for m in DEFAULT_METRICS} if classify else {}
        return {"metrics": {**means, **per_head}, "predictions": preds, "references": refs}


def regression_metrics(predictions, references) -> dict[str, float]:
    """RMSE and MAE in the label's units, and R² (1 - residual / total sum of squares; 0 for constant references)."""
    p, r = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
    err = p - r
    total = float(((r - r.mean()) ** 2).sum())
    return {"rmse": float(np.sqrt((err ** 2).mean())), "mae": float(np.abs(err).mean()),
            "r2": 1.0 - float((err ** 2).sum()) / total if total > 0 else 0.0}


# --------------------------------------------------------------------------- inference


@torch.no_grad()
def predict(model, tokenizer, inputs: list[str], top_k: int = 1) -> list[dict]:
    """For each text, ``{head: [{"label", "score"}, ...top_k]}`` (softmax scores) or ``{head: {"value": x}}`` for regression."""
    model.eval()
    out: list[dict] = []
    for start in range(0, len(inputs), PREDICT_BATCH):
        batch = tokenizer(list(inputs[start:start + PREDICT_BATCH]), return_tensors="pt", padding=True, truncation=True)
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


# --------------------------------------------------------------------------- card


def card_metrics(run: dict) -> tuple:
    """The card's metric rows for this run's heads: the means over classification heads first (the headline), then each head's."""
    heads = run["data"]["heads"]
    n = sum(h["type"] == "classification" for h in heads)
    rows = []
    if n:
        rows += [("accuracy", f"Accuracy (mean of {n} heads)", None), ("f1", f"F1 (macro, mean of {n} heads)", {"average": "macro"})]
    for h in heads:
        name = h["name"]
        if h["type"] == "regression":
            rows += [(f"{name}/rmse", f"{name}: RMSE", None), (f"{name}/mae", f"{name}: MAE", None), (f"{name}/r2", f"{name}: R²", None)]
        else:
            rows += [(f"{name}/accuracy", f"{name}: accuracy", None), (f"{name}/f1", f"{name}: F1 (macro)", {"average": "macro"})]
    return tuple(rows)


def card_context(run, context: dict) -> dict:
    """Labels per head, the heads in the summary line, and the AutoModel snippet (no pipeline serves several heads)."""
    heads = run.run["data"]["heads"]
    return {
        "labels_md": _labels_md(heads),
        "head_md": f"{len(heads)} task heads ({', '.join(_head_kind(h) for h in heads)}), each {context['head_md']}",
        "usage_md": _usage_md(context["model_ref"], context["revision"]),
    }


def _head_kind(h: dict) -> str:
    kind = "regression" if h["type"] == "regression" else f"{len(h['labels'])}-way classification"
    return f"`{h['name']}`: {kind} of `{h['label_column']}`, loss weight {h['weight']:g}"


def _labels_md(heads: list[dict]) -> str:
    rows = ["| head | column | type | loss weight | labels (id: name) |", "|:--|:--|:--|--:|:--|"]
    for h in heads:
        labels = ", ".join(f"{i}: {_cell(str(x))}" for i, x in enumerate(h["labels"])) or "a number (one output)"
        rows.append(f"| {h['name']} | {_cell(h['label_column'])} | {h['type']} | {h['weight']:g} | {labels} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _usage_md(ref: str, revision: str | None) -> str:
    rev = f', revision="{revision}"' if revision else ""
    return f"""No transformers pipeline serves a model with several heads: load it with `AutoModel` and read each head's slice of the logits.

```python
import torch
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{ref}"{rev}, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained("{ref}"{rev})
batch = tokenizer(["This is the text to classify."], return_tensors="pt", padding=True, truncation=True)
with torch.no_grad():
    logits = model(**batch).logits
heads = {{h["name"]: h for h in model.config.hubtransfer_heads}}
for name, out in model.split_logits(logits).items():  # head name -> (batch, outputs)
    if heads[name]["type"] == "regression":
        print(name, out[:, 0].tolist())
    else:
        probs = out.softmax(-1)
        print(name, [heads[name]["labels"][i] for i in probs.argmax(-1).tolist()], probs.max(-1).values.tolist())
```

`hubtransfer predict FOLDER "some text"` gives the same per head (label and score), loading the weights with hubtransfer's own class."""


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
        card_metrics=card_metrics,
        card_metrics_note=("Each head is scored on its own label column; F1 is the macro average over that head's labels. The mean rows "
                           "average the classification heads with equal weight (not the loss weights); early stopping and the headline "
                           "use them. RMSE and MAE of a regression head are in its label's units."),
        prepare=prepare_multitask,
        build_model=build_model,
        predict=predict,
        card_context=card_context,
        index_task="text-classification",
        evidence=False,  # baselines, ranking scores and curves read one label column
        card_use=("Multi-task classification of {input_kind}: one shared encoder with several heads (see Labels), each answering its own "
                  'question; a classification head gives exactly one of its labels for any input, in scope or not (no "none of these").'),
    ),
)
