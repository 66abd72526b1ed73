"""token-classification (named-entity recognition): one IOB2 tag per word, through AutoModelForTokenClassification.

The text column holds a list of words per example and the label column one tag per word (see
:func:`hubtransfer.data.prepare_data` with ``per_token``). Words are tokenized as given
(``is_split_into_words``); each word's tag goes to its first sub-token only.
"""

from __future__ import annotations

from transformers import AutoTokenizer, DataCollatorForTokenClassification

from hubtransfer.errors import ProcessorError
from hubtransfer.tasks import TASKS, TaskSpec
from hubtransfer.tasks.metrics import TokenScorer
from hubtransfer.tasks.text_classification import EncodedText, _no_tokenizer

IGNORE = -100  # the label cross-entropy and the scorer skip

CARD_METRICS = (
    ("f1", "Entity F1", None),
    ("precision", "Entity precision", None),
    ("recall", "Entity recall", None),
    ("accuracy", "Token accuracy", None),
)


def load_processor(model_dir, recipe):
    """A fast tokenizer (``word_ids`` needs one); byte-level BPE tokenizers get ``add_prefix_space``."""
    trust = recipe.model.trust_remote_code
    try:
        tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust)
        if getattr(tok, "add_prefix_space", None) is False:
            # Byte-level BPE (RoBERTa, GPT-2) encodes a word differently at a sentence start and after a space;
            # pre-split
            # words are encoded as mid-sentence words, which transformers allows only with add_prefix_space=True.
            tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust, add_prefix_space=True)
    except (OSError, ValueError, TypeError) as e:
        raise _no_tokenizer(recipe, type(e).__name__) from None
    if len(tok) <= len(set(tok.all_special_tokens)) + 1:
        raise _no_tokenizer(recipe, f"vocabulary of {len(tok)} tokens")
    if not tok.is_fast:
        raise ProcessorError(
            f"model.id: '{recipe.model.id}' has only a slow (Python) tokenizer ({type(tok).__name__}); token "
            "classification "
            "maps words to sub-tokens with a fast tokenizer's word_ids(). Use a checkpoint that ships tokenizer.json"
        )
    if isinstance(recipe.data.max_length, int):  # 'auto' is chosen from the data with this tokenizer, then set
        tok.model_max_length = recipe.data.max_length  # saved with the model: pipeline() truncates where training did
    return tok


def align_labels(word_ids: list[int | None], word_tags: list[int]) -> list[int]:
    """One label per sub-token: the word's tag on its first sub-token, IGNORE on special tokens and later sub-tokens.

    Why only the first: a word is one decision in the data and in the metrics (one tag per word), so
    each word is counted once in the loss and predicted once, from the sub-token that begins it,
    which is also where the pipeline's "first"/"simple" grouping reads a word's tag. Giving later
    sub-tokens the tag would weigh long words more and turn a B- word into several B- pieces.
    """
    labels, previous = [], None
    for wid in word_ids:
        labels.append(word_tags[wid] if wid is not None and wid != previous else IGNORE)
        previous = wid
    return labels


def encode(prepared, tokenizer, recipe) -> dict:
    out = {}
    for split, ds in prepared.splits.items():
        enc = tokenizer(list(ds["text"]), is_split_into_words=True, truncation=True, max_length=recipe.data.max_length)
        # Words cut off by truncation get no label: they are neither trained on nor scored.
        labels = [align_labels(enc.word_ids(i), tags) for i, tags in enumerate(ds["label"])]
        out[split] = EncodedText({k: enc[k] for k in enc}, labels)
    return out


def collate(tokenizer, recipe):
    # Pads the label lists with IGNORE to the batch's token length.
    return DataCollatorForTokenClassification(
        tokenizer, label_pad_token_id=IGNORE, pad_to_multiple_of=recipe.data.pad_to_multiple_of, return_tensors="pt"
    )


TASKS.register(
    "token-classification",
    TaskSpec(
        name="token-classification",
        modality="text",
        auto_class="AutoModelForTokenClassification",
        custom_class=None,  # pooled / MLP heads read one vector per input; a tagger needs one per token
        load_processor=load_processor,
        encode=encode,
        collate=collate,
        scorer=TokenScorer,
        metric_keys=("f1", "precision", "recall", "accuracy"),
        default_metric="f1",
        per_token=True,
        evidence=False,
        pipeline_kwargs={"aggregation_strategy": "simple"},
        peft_class="AutoPeftModelForTokenClassification",
    ),
)
