"""The best weights so far are kept in a file (not a second copy in RAM) and come back exactly."""

import torch
from accelerate import Accelerator
from conftest import text_recipe
from safetensors.torch import load_file
from torch import nn
from transformers import AutoModelForSequenceClassification

from hubtransfer.job import job_for, load_recipe
from hubtransfer.train import checkpoints as checkpoint
from hubtransfer.train import loop
from hubtransfer.train.batches import make_loaders


class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.out = nn.Linear(4, 10, bias=False)
        self.out.weight = self.emb.weight  # one storage, two names
        self.norm = nn.BatchNorm1d(4)  # buffers move too


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _scramble(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model.norm.running_mean.add_(3.0)


def _equal(model, snap):
    return all(torch.equal(v, snap[k]) for k, v in model.state_dict().items())


def test_file_store_round_trip_with_tied_weights(tmp_path):
    torch.manual_seed(0)
    model = _Tied()
    best = checkpoint.BestWeights(Accelerator(cpu=True), tmp_path)
    best.restore(model)  # nothing kept yet: a no-op
    best.keep(model.state_dict())
    kept = _snapshot(model)
    saved = load_file(str(tmp_path / checkpoint.BEST_WEIGHTS))
    assert "emb.weight" in saved and "out.weight" not in saved  # the tied tensor is written once
    assert not list(tmp_path.glob("*.tmp"))
    _scramble(model)
    assert not _equal(model, kept)
    best.restore(model)
    assert _equal(model, kept)
    assert model.out.weight is model.emb.weight  # still tied: restored in place
    best.discard()
    assert not (tmp_path / checkpoint.BEST_WEIGHTS).exists()


def test_checkpoint_copy_between_file_and_memory_stores(tmp_path):
    torch.manual_seed(0)
    model = _Tied()
    kept = _snapshot(model)
    acc = Accelerator(cpu=True)
    on_disk = checkpoint.BestWeights(acc, tmp_path / "run")
    (tmp_path / "run").mkdir()
    on_disk.keep(model.state_dict())
    on_disk.copy_to(tmp_path / "ckpt.safetensors")  # into a checkpoint
    in_ram = checkpoint.BestWeights(acc, None)
    in_ram.copy_from(tmp_path / "ckpt.safetensors")  # a resume
    _scramble(model)
    in_ram.restore(model)
    assert _equal(model, kept)
    fresh = checkpoint.BestWeights(acc, tmp_path / "run2")
    (tmp_path / "run2").mkdir()
    fresh.copy_from(tmp_path / "missing.safetensors")  # a checkpoint from before any evaluation
    assert not fresh.held
    _scramble(model)
    fresh.restore(model)  # keeps the current weights
    assert not _equal(model, kept)


def test_fit_restores_the_best_evaluation_not_the_last(tiny_bert, sentiment_csv, tmp_path):
    """A scorer whose validation accuracy peaks at the second of four evaluations: the model ends with the
    weights of that moment, read back from the file, and the file is gone afterwards."""
    from hubtransfer.data.prepare import prepare_data
    from hubtransfer.tasks import get_task

    recipe = load_recipe(text_recipe(tiny_bert, sentiment_csv, tmp_path / "out", train__epochs=4))
    task = get_task("text-classification")
    data = prepare_data(recipe.data, "text")
    tok = task.load_processor(tiny_bert, recipe)
    encoded = task.encode(data, tok, recipe)
    loaders = make_loaders(encoded, task.collate(tok, recipe), recipe)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    seen, files = [], []

    class PeaksAtTwo:
        accuracies = iter([0.5, 0.9, 0.6, 0.4])

        def reduce(self, logits, labels):
            return logits.argmax(-1), labels

        def score(self, preds, refs):
            seen.append(_snapshot(model))
            files.append(sorted(p.name for p in tmp_path.iterdir()))
            return {"metrics": {"accuracy": next(self.accuracies)}}

    result = loop.fit(
        model, loaders, job_for(recipe), Accelerator(cpu=True), PeaksAtTwo(), files=loop.RunFiles(best=tmp_path)
    )
    assert len(seen) == 4 and result.best["validation"]["accuracy"] == 0.9
    assert _equal(model, seen[1]) and not _equal(model, seen[3])
    assert checkpoint.BEST_WEIGHTS in files[2]  # kept on disk while training went on
    assert checkpoint.BEST_WEIGHTS not in [p.name for p in tmp_path.iterdir()]


def test_views_of_one_storage_are_written_apart(tmp_path):
    """Two halves of one tensor (not a tie): each is written and each comes back."""
    base = torch.arange(12.0)
    state = {"a": base[:6], "b": base[6:], "c": torch.ones(3)}
    best = checkpoint.BestWeights(Accelerator(cpu=True), tmp_path)
    best.keep(state)
    assert sorted(load_file(str(tmp_path / checkpoint.BEST_WEIGHTS))) == ["a", "b", "c"]
    kept = base.clone()
    base.zero_()

    class Holder(nn.Module):
        def state_dict(self):
            return state

    best.restore(Holder())
    assert torch.equal(base, kept)
