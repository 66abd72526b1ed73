"""text-classification: one label per text, through AutoModelForSequenceClassification."""

from __future__ import annotations

import torch
from transformers import AutoTokenizer, DataCollatorWithPadding

from hubtransfer.errors import ProcessorError
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
    try:
        tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=recipe.model.trust_remote_code)
    except (OSError, ValueError, TypeError) as e:
        raise _no_tokenizer(recipe, type(e).__name__) from None
    if len(tok) <= len(set(tok.all_special_tokens)) + 1:
        # Without tokenizer files transformers 5 builds an empty-vocabulary tokenizer: every word would be [UNK].
        raise _no_tokenizer(recipe, f"vocabulary of {len(tok)} tokens")
    if isinstance(recipe.data.max_length, int):  # 'auto' is chosen from the data with this tokenizer, then set
        # Saved with the model, so pipeline() truncates where training did.
        tok.model_max_length = recipe.data.max_length
    return tok


def _no_tokenizer(recipe, why: str) -> ProcessorError:
    return ProcessorError(
        f"model.id: '{recipe.model.id}' has no usable tokenizer ({why}); "
        "use a checkpoint that ships tokenizer files (tokenizer.json or vocab files) or copy them into the folder"
    )


def encode(prepared, tokenizer, recipe) -> dict:
    out = {}
    for split, ds in prepared.splits.items():
        texts = [t if isinstance(t, str) else "" for t in ds["text"]]
        enc = tokenizer(texts, truncation=True, max_length=recipe.data.max_length)
        out[split] = EncodedText({k: enc[k] for k in enc}, list(ds["label"]))
    return out


def collate(tokenizer, recipe):
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=recipe.data.pad_to_multiple_of, return_tensors="pt")


TASKS.register(
    "text-classification",
    TaskSpec(
        name="text-classification",
        input_classification=True,
        modality="text",
        auto_class="AutoModelForSequenceClassification",
        custom_class="HubtransferForSequenceClassification",
        load_processor=load_processor,
        encode=encode,
        collate=collate,
    ),
)
