"""text-classification: one label per text, through AutoModelForSequenceClassification."""

from __future__ import annotations

import torch
from transformers import AutoTokenizer, DataCollatorWithPadding

from hubtransfer.tasks import TASKS, TaskSpec


class EncodedText(torch.utils.data.Dataset):
    """Token ids kept as Python lists (padding happens per batch); ``lengths`` feeds length grouping."""

    def __init__(self, columns: dict[str, list], labels: list[int]):
        self.columns = columns
        self.labels = labels
        self.lengths = [len(x) for x in columns["input_ids"]]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        item = {k: v[i] for k, v in self.columns.items()}
        item["labels"] = self.labels[i]
        return item


def load_processor(model_dir, recipe):
    tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=recipe.model.trust_remote_code)
    # Saved with the model, so pipeline() truncates where training did.
    tok.model_max_length = recipe.data.max_length
    return tok


def encode(prepared, tokenizer, recipe) -> dict:
    out = {}
    for split, ds in prepared.splits.items():
        texts = [t if isinstance(t, str) else "" for t in ds["text"]]
        enc = tokenizer(texts, truncation=True, max_length=recipe.data.max_length)
        out[split] = EncodedText({k: enc[k] for k in enc.keys()}, list(ds["label"]))
    return out


def collate(tokenizer, recipe):
    return DataCollatorWithPadding(tokenizer, return_tensors="pt")


TASKS.register(
    "text-classification",
    TaskSpec(
        name="text-classification",
        modality="text",
        auto_class="AutoModelForSequenceClassification",
        custom_class="HubtransferForSequenceClassification",
        load_processor=load_processor,
        encode=encode,
        collate=collate,
    ),
)
