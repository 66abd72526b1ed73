"""The card of a multi-task model: a metric row set per head, the labels of every head, and the AutoModel snippet (no
transformers pipeline serves several heads)."""

from __future__ import annotations


def card_metrics(record) -> tuple:
    """The card's metric rows for this run's heads: the means over classification heads first (the headline), then each
    head's."""
    heads = record.data["heads"]
    n = sum(h["type"] == "classification" for h in heads)
    rows = []
    if n:
        rows += [
            ("accuracy", f"Accuracy (mean of {n} heads)", None),
            ("f1", f"F1 (macro, mean of {n} heads)", {"average": "macro"}),
        ]
    for h in heads:
        name = h["name"]
        if h["type"] == "regression":
            rows += [
                (f"{name}/rmse", f"{name}: RMSE", None),
                (f"{name}/mae", f"{name}: MAE", None),
                (f"{name}/r_squared", f"{name}: R²", None),
            ]
        else:
            rows += [
                (f"{name}/accuracy", f"{name}: accuracy", None),
                (f"{name}/f1", f"{name}: F1 (macro)", {"average": "macro"}),
            ]
    return tuple(rows)


def card_context(run, context: dict) -> dict:
    """Labels per head, the heads in the summary line, and the AutoModel snippet (no pipeline serves several heads)."""
    heads = run.record.data["heads"]
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
        labels = ", ".join(f"{i}: {cell(str(x))}" for i, x in enumerate(h["labels"])) or "a number (one output)"
        rows.append(f"| {h['name']} | {cell(h['label_column'])} | {h['type']} | {h['weight']:g} | {labels} |")
    return "\n".join(rows)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _usage_md(ref: str, revision: str | None) -> str:
    rev = f', revision="{revision}"' if revision else ""
    return f"""No transformers pipeline serves a model with several heads: load it with `AutoModel` \
and read each head's slice of the logits.

```python
import torch
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{ref}"{rev}, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained("{ref}"{rev}, trust_remote_code=True)
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

`hubtransfer predict FOLDER "some text"` gives the same per head (label and score), \
loading the weights with hubtransfer's own class."""
