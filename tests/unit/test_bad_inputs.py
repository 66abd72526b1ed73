"""Bad input, table-driven, through the real CLI: each case exits 2 with a message that names the
problem and the fix, writes no output folder and leaves no staging folder behind."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import poison_loss_from, text_recipe, write_image_folder, write_sentiment_csv
from PIL import Image

from hubtransfer.cli import main


@dataclass
class Case:
    name: str
    make: Callable[[Path, dict], dict]  # (tmp_path, fixtures) -> recipe dict (may write files)
    expect: str  # a fragment of the error message
    raw_yaml: str | None = None  # write this text instead of the recipe


def _text(tmp, fx, **extra):
    return text_recipe(fx["bert"], write_sentiment_csv(tmp / "r.csv"), tmp / "out", **extra)


def _csv(tmp, fx, body: str, encoding="utf-8", **extra):
    path = tmp / "d.csv"
    path.write_bytes(body.encode(encoding))
    r = text_recipe(fx["bert"], path, tmp / "out", **extra)
    r["data"].update(text_column="text", label_column="label")
    return r


def _split_folder(tmp, fx, train: str, test: str):
    folder = tmp / "splits"
    folder.mkdir()
    (folder / "train.csv").write_text(train)
    (folder / "test.csv").write_text(test)
    r = text_recipe(fx["bert"], folder, tmp / "out")
    r["data"].update(text_column="text", label_column="label")
    return r


def _images(tmp, fx, damage: Callable[[Path], None] | None = None, model: str = "vit"):
    folder = write_image_folder(tmp / "imgs", per_class=6)
    if damage:
        damage(folder)
    return {
        "task": "image-classification",
        "model": {"id": str(fx[model])},
        "data": {"source": str(folder)},
        "train": {"epochs": 1, "precision": "no"},
        "output_dir": str(tmp / "out"),
    }


def _model_folder(tmp, fx, keep: Callable[[str], bool]):
    folder = tmp / "model"
    folder.mkdir()
    for f in Path(fx["bert"]).iterdir():
        if keep(f.name):
            shutil.copy(f, folder / f.name)
    return text_recipe(folder, write_sentiment_csv(tmp / "r.csv"), tmp / "out")


def _whisper_config(tmp, fx):
    from transformers import WhisperConfig

    WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1).save_pretrained(tmp / "whisper")
    return text_recipe(tmp / "whisper", write_sentiment_csv(tmp / "r.csv"), tmp / "out")


def _pickled(tmp, fx):
    import torch
    from transformers import AutoModelForSequenceClassification

    r = _model_folder(tmp, fx, lambda n: n != "model.safetensors")
    torch.save(
        AutoModelForSequenceClassification.from_pretrained(fx["bert"]).state_dict(),
        Path(r["model"]["id"]) / "pytorch_model.bin",
    )
    return r


def _truncate(folder: Path):
    png = folder / "dark" / "2.png"
    png.write_bytes(png.read_bytes()[:60])


def _other_run(tmp, fx):
    out = tmp / "out"
    out.mkdir()
    (out / "hubtransfer_run.json").write_text("{}")
    return _text(tmp, fx)


def _unrelated(tmp, fx):
    (tmp / "out").mkdir()
    (tmp / "out" / "notes.txt").write_text("mine")
    return _text(tmp, fx)


CASES = [
    Case(
        "malformed-yaml",
        lambda t, f: {},
        "is not valid YAML at line",
        raw_yaml="task: text-classification\nmodel: {id: x\n",
    ),
    Case("not-a-mapping", lambda t, f: {}, "must hold a mapping", raw_yaml="- just\n- a list\n"),
    Case("unknown-key", lambda t, f: {**_text(t, f), "ouptut_dir": "x"}, "Did you mean 'output_dir'?"),
    Case("misspelled-nested-key", lambda t, f: _text(t, f, train__epoch=3), "Did you mean 'train.epochs'?"),
    Case("wrong-type", lambda t, f: _text(t, f, train__batch_size="big"), "train.batch_size"),
    Case(
        "missing-required",
        lambda t, f: {k: v for k, v in _text(t, f).items() if k != "model"},
        "model: required but missing",
    ),
    Case(
        "unknown-task",
        lambda t, f: {**_text(t, f), "task": "text-clasification"},
        "Did you mean 'text-classification'?",
    ),
    Case(
        "unknown-metric", lambda t, f: _text(t, f, train__early_stopping={"metric": "acc"}), "Did you mean 'accuracy'?"
    ),
    Case("bad-strategy", lambda t, f: {**_text(t, f), "strategy": "top:x"}, "'head', 'top:K'"),
    Case("top-k-too-deep", lambda t, f: {**_text(t, f), "strategy": "top:9"}, "more blocks than the backbone has (2)"),
    Case(
        "missing-label-column",
        lambda t, f: _text(t, f, data__label_column="target"),
        "column 'target' is not in the train split",
    ),
    Case(
        "missing-text-column",
        lambda t, f: _text(t, f, data__text_column="sentense"),
        "Did you mean data.text_column=sentence?",
    ),
    Case(
        "label-only-in-test",
        lambda t, f: _split_folder(
            t,
            f,
            "text,label\n" + "".join(f"t{i},{'a' if i % 2 else 'b'}\n" for i in range(20)),
            "text,label\nx,a\ny,zebra\n",
        ),
        "appear in a split but not in train",
    ),
    Case("empty-dataset", lambda t, f: _csv(t, f, "text,label\n"), "holds no rows"),
    Case(
        "single-class",
        lambda t, f: _csv(t, f, "text,label\n" + "".join(f"t{i},pos\n" for i in range(30))),
        "needs at least 2",
    ),
    Case(
        "empty-texts",
        lambda t, f: _csv(
            t, f, "text,label\n" + "".join(f"{'' if i % 7 == 0 else f't{i}'},{i % 2}\n" for i in range(40))
        ),
        "empty or missing text(s)",
    ),
    Case(
        "non-utf8-text",
        lambda t, f: _csv(
            t, f, "text,label\n" + "".join(f"caf\u00e9 cr\u00e8me {i},{i % 2}\n" for i in range(40)), encoding="latin-1"
        ),
        "not UTF-8",
    ),
    Case(
        "corrupted-image",
        lambda t, f: _images(t, f, lambda d: (d / "bright" / "1.png").write_bytes(b"not an image at all")),
        "cannot be read",
    ),
    Case("truncated-image", lambda t, f: _images(t, f, _truncate), "cannot be read"),
    Case(
        "text-model-on-image-task",
        lambda t, f: _images(t, f, model="bert"),
        "is a bert (text) checkpoint, which has no image-classification model",
    ),
    Case(
        "image-model-on-text-task",
        lambda t, f: text_recipe(f["vit"], write_sentiment_csv(t / "r.csv"), t / "out"),
        "which has no text-classification model",
    ),
    Case("no-classifier-architecture", _whisper_config, "which has no text-classification model"),
    Case(
        "no-tokenizer",
        lambda t, f: _model_folder(t, f, lambda n: n in ("config.json", "model.safetensors")),
        "has no usable tokenizer",
    ),
    Case("no-weights", lambda t, f: _model_folder(t, f, lambda n: n != "model.safetensors"), "holds no weights"),
    Case("pickled-weights", _pickled, "allow_pickle=true"),
    Case(
        "checkpoint-path-missing",
        lambda t, f: text_recipe("/no/such/model", write_sentiment_csv(t / "r.csv"), t / "out"),
        "local folder '/no/such/model' does not exist",
    ),
    Case(
        "invalid-hub-id",
        lambda t, f: text_recipe("bad id!", write_sentiment_csv(t / "r.csv"), t / "out"),
        "neither a folder nor a valid Hub id",
    ),
    Case("output-holds-another-run", _other_run, "holds another finished run"),
    Case("output-holds-other-files", _unrelated, "not a hubtransfer run"),
    Case("nan-loss", lambda t, f: _text(t, f, train__lr=1e12, train__max_grad_norm=None), "training loss became nan"),
]


@pytest.fixture(scope="module")
def fx(tiny_bert, tiny_vit):
    return {"bert": tiny_bert, "vit": tiny_vit}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fails_cleanly(case: Case, fx, tmp_path, capsys):
    recipe = case.make(tmp_path, fx)
    path = tmp_path / "recipe.yaml"
    path.write_text(case.raw_yaml if case.raw_yaml is not None else yaml.safe_dump(recipe))
    existing = {p.name for p in (tmp_path / "out").iterdir()} if (tmp_path / "out").is_dir() else None
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    at = err.find("error: ")  # progress bars of the data loading may come before it
    assert at >= 0 and (at == 0 or err[at - 1] in "\r\n") and case.expect in err[at:], err
    assert "Traceback" not in err
    after = {p.name for p in (tmp_path / "out").iterdir()} if (tmp_path / "out").is_dir() else None
    assert after == existing  # nothing written into (or as) the output folder
    assert not list(tmp_path.glob(".out.incomplete"))  # no staging left (no checkpoint was reached)


def test_at_least_25_cases():
    assert len(CASES) >= 25


def test_full_disk_is_reported_and_nothing_half_written(fx, tmp_path, capsys, monkeypatch):
    import hubtransfer.run as api

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".out.incomplete" / "model.safetensors"))

    monkeypatch.setattr(api, "save_model", no_space)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(_text(tmp_path, fx, train__checkpoint_every=None)))
    assert main(["train", str(path)]) == 2
    assert "no space left on device" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.incomplete").exists()


def test_nan_after_a_checkpoint_keeps_it(fx, tmp_path, capsys, monkeypatch):
    """NaN loss stops with a clear message; the last good checkpoint stays for inspection or a resume."""
    poison_loss_from(monkeypatch, 12)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(_text(tmp_path, fx, train__checkpoint_every=4, train__eval_every=4)))
    assert main(["train", str(path)]) == 2
    assert "training loss became nan by step 12" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in (tmp_path / ".out.incomplete" / "checkpoints").iterdir()) == ["step-4", "step-8"]


def test_awkward_but_valid_inputs_train(fx, tmp_path):
    """CMYK, grayscale, RGBA and palette images are converted; a huge text is truncated."""
    from hubtransfer.run import finetune

    folder = write_image_folder(tmp_path / "imgs", per_class=8)
    rgb = np.asarray(Image.open(folder / "dark" / "0.png").convert("RGB"))
    Image.fromarray(rgb).convert("CMYK").save(folder / "dark" / "cmyk.jpg")
    Image.fromarray(rgb).convert("L").save(folder / "dark" / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "bright" / "rgba.png")
    Image.fromarray(rgb).convert("P").save(folder / "bright" / "palette.png")
    r = finetune(
        {
            "task": "image-classification",
            "model": {"id": str(fx["vit"])},
            "data": {"source": str(folder)},
            "train": {"epochs": 1, "precision": "no"},
            "output_dir": str(tmp_path / "img-out"),
        }
    )
    assert sum(r.run["data"]["sizes"].values()) == 20

    csv = write_sentiment_csv(tmp_path / "r.csv")
    with open(csv, "a") as f:
        f.write('"' + "good " * 200_000 + '",pos\n')  # ~1 MB of text in one row
    r = finetune(text_recipe(fx["bert"], csv, tmp_path / "txt-out", train__epochs=1))
    assert (
        r.run["data"]["sizes"]["train"] + r.run["data"]["sizes"]["validation"] + r.run["data"]["sizes"]["test"] == 241
    )
