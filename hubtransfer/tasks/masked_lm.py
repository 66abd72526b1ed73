"""fill-mask: continued masked-LM pretraining on unlabeled text (domain-adaptive pretraining).

The result is a *source model*: the same architecture with its masked-LM head, further trained on
in-domain text, to be used as ``model.id`` of a later fine-tuning recipe. Nothing is replaced: the
output layer here is the pretraining head itself (a checkpoint saved without it, such as a
sentence-transformers encoder, gets a fresh one from transformers, tied to the word embeddings).

Long texts are cut into consecutive chunks of ``data.max_length`` tokens instead of truncated, so
every sentence of a review is seen. Training masks 15% of the tokens anew in every batch (BERT's
80/10/10 rule, transformers' collator); validation and test are masked once, with a fixed seed, so
every evaluation scores the same positions and curves are comparable.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling, DataCollatorForTokenClassification

from hubtransfer.tasks import TASKS, TaskSpec
from hubtransfer.tasks.text_classification import load_processor

MASK_PROBABILITY = 0.15
EVAL_MASK_SEED = 1234
MIN_CHUNK = 4


class TokenChunks(torch.utils.data.Dataset):
    """Token-id chunks (lists), optionally with fixed masked-LM labels (validation / test)."""

    def __init__(self, chunks: list[list[int]], labels: list[list[int]] | None = None):
        self.chunks, self.labels = chunks, labels
        self.lengths = [len(c) for c in chunks]

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> dict:
        item = {"input_ids": self.chunks[i], "attention_mask": [1] * len(self.chunks[i])}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


def chunk_texts(texts: list[str], tokenizer, max_length: int) -> list[list[int]]:
    """Each text's tokens in consecutive pieces of ``max_length - 2``, each wrapped in [CLS] ... [SEP]."""
    # BERT-style wrapping; RoBERTa-style tokenizers name the same tokens bos / eos.
    start_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    body = max_length - 2
    ids = tokenizer([t if isinstance(t, str) else "" for t in texts], add_special_tokens=False)["input_ids"]
    chunks = []
    for seq in ids:
        for start in range(0, len(seq), body):
            piece = seq[start : start + body]
            if len(piece) >= MIN_CHUNK:  # a tail of a token or two gives almost nothing to predict
                chunks.append([start_id, *piece, end_id])
    return chunks


def fixed_masks(
    chunks: list[list[int]], tokenizer, seed: int = EVAL_MASK_SEED
) -> tuple[list[list[int]], list[list[int]]]:
    """(inputs, labels) with 15% of the non-special tokens masked by BERT's rule, drawn once from ``seed``."""
    rng = np.random.default_rng(seed)
    special = set(tokenizer.all_special_ids)
    inputs, labels = [], []
    for seq in chunks:
        x, y = list(seq), [-100] * len(seq)
        for i, tok in enumerate(seq):
            if tok in special or rng.random() >= MASK_PROBABILITY:
                continue
            y[i] = tok
            r = rng.random()
            x[i] = tokenizer.mask_token_id if r < 0.8 else (int(rng.integers(len(tokenizer))) if r < 0.9 else tok)
        if all(v == -100 for v in y):  # a chunk with no masked token scores nothing: mask its first word
            y[1], x[1] = seq[1], tokenizer.mask_token_id
        inputs.append(x)
        labels.append(y)
    return inputs, labels


def encode(prepared, tokenizer, recipe) -> dict:
    if tokenizer.mask_token_id is None:
        raise ValueError(
            f"model.id: the tokenizer of '{recipe.model.id}' has no mask token; masked-LM needs a BERT-style checkpoint"
        )
    out = {}
    for split, ds in prepared.splits.items():
        chunks = chunk_texts(list(ds["text"]), tokenizer, recipe.data.max_length)
        if not chunks:
            raise ValueError(
                f"data: the {split} split has no text of {MIN_CHUNK} tokens or more; masked-LM has nothing to learn "
                "from"
            )
        out[split] = TokenChunks(chunks) if split == "train" else TokenChunks(*fixed_masks(chunks, tokenizer))
    return out


def collate(tokenizer, recipe):
    """Training batches are masked on the fly; evaluation batches carry their fixed labels (padded with -100)."""
    dynamic = DataCollatorForLanguageModeling(
        tokenizer,
        mlm_probability=MASK_PROBABILITY,
        pad_to_multiple_of=recipe.data.pad_to_multiple_of,
        return_tensors="pt",
    )
    fixed = DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=recipe.data.pad_to_multiple_of, return_tensors="pt"
    )
    return lambda items: fixed(items) if "labels" in items[0] else dynamic(items)


class MaskedLMScorer:
    """Top-1 accuracy on the masked tokens (``accuracy``, watched by default) and the masked-token
    loss and perplexity. The per-token loss is computed on the device and gathered with the argmax."""

    def __init__(self, labels: list[str]):
        del labels  # no classes: the targets are the vocabulary

    def reduce(self, logits, labels):
        nll = torch.nn.functional.cross_entropy(
            logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none"
        )
        return torch.stack([logits.argmax(-1).float(), nll], dim=-1), labels

    def score(self, predictions: list, references: list) -> dict:
        hits, losses = [], []
        for p, r in zip(predictions, references):
            mask = r != -100
            hits.append(p[..., 0][mask] == r[mask])
            losses.append(p[..., 1][mask])
        hit, loss = np.concatenate(hits), np.concatenate(losses)
        mean = float(loss.mean()) if len(loss) else float("nan")
        metrics = {
            "accuracy": float(hit.mean()) if len(hit) else 0.0,
            "loss": mean,
            "perplexity": math.exp(min(mean, 50.0)),
            "masked_tokens": len(hit),
        }
        return {"metrics": metrics, "predictions": hit, "references": loss}


TASKS.register(
    "fill-mask",
    TaskSpec(
        name="fill-mask",
        modality="text",
        auto_class="AutoModelForMaskedLM",
        custom_class=None,  # the pretraining head is kept: pooled / MLP heads do not apply
        load_processor=load_processor,
        encode=encode,
        collate=collate,
        scorer=MaskedLMScorer,
        labeled=False,
        evidence=False,  # no labels: nothing for classical baselines or transferability scores to predict
        metric_keys=("accuracy",),  # masked-token accuracy; perplexity and loss fall as the model improves
        peft_class="AutoPeftModel",  # peft has no masked-LM task type: the config's auto mapping picks the class
    ),
)
