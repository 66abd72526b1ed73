"""Transferability scores on features whose answer is known, and the rank command on tiny checkpoints."""

import json

import numpy as np
import pytest
from conftest import write_sentiment_csv

from hubtransfer.cli import main
from hubtransfer.job import load_recipe
from hubtransfer.select.rank import parse_candidate, rank
from hubtransfer.select.scores import SCORES, hscore, knn, logme


def _clusters(n=400, d=16, gap=3.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = rng.normal(0, 1, (3, d)) * gap
    return centres[y] + rng.normal(0, 1, (n, d)), y


def _evidence(f, t, alpha, beta):
    """LogME's evidence per example, written out with full matrices (the reference)."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    return (
        n / 2 * np.log(beta)
        + d / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * np.sum((f @ m - t) ** 2)
        - alpha / 2 * m @ m
        - np.linalg.slogdet(a)[1] / 2
    ) / n


@pytest.mark.parametrize("n,d", [(60, 8), (20, 40)])  # more examples than dimensions, and fewer
def test_logme_is_the_maximum_of_the_evidence(n, d):
    f, y = _clusters(n, d, gap=1.0)
    grid = np.logspace(-4, 4, 60)
    best = np.mean([max(_evidence(f, (y == c).astype(float), a, b) for a in grid for b in grid) for c in np.unique(y)])
    assert logme(f, y) >= best - 1e-6  # the fixed point is at least as good as any grid point
    assert logme(f, y) == pytest.approx(best, abs=0.05)  # and the grid comes close to it


@pytest.mark.parametrize("name", list(SCORES))
def test_informative_features_beat_noise_and_more_signal_scores_higher(name):
    score = SCORES.get(name)
    good, y = _clusters(gap=3.0)
    weak, _ = _clusters(gap=0.5)
    noise = np.random.default_rng(1).normal(0, 1, good.shape)
    assert score(good, y) > score(weak, y) > score(noise, y)


def test_knn_reads_as_an_accuracy():
    good, y = _clusters(gap=6.0)
    assert knn(good, y) == pytest.approx(1.0)
    noise = np.random.default_rng(2).normal(0, 1, (600, 8))
    assert abs(knn(noise, np.arange(600) % 2) - 0.5) < 0.08


def test_scores_refuse_what_they_cannot_score():
    f, y = _clusters()
    with pytest.raises(ValueError, match="two classes"):
        logme(f, np.zeros(len(f)))
    bad = f.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hscore(bad, y)
    with pytest.raises(ValueError, match="features must be"):
        knn(f[:10], y)


def test_parse_candidate():
    assert parse_candidate("random:org/name") == ("org/name", "random")
    assert parse_candidate("org/name") == ("org/name", "pretrained")


@pytest.fixture(scope="module")
def rank_recipe(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("rank")
    data = write_sentiment_csv(root / "reviews.csv")
    return load_recipe(
        {
            "task": "text-classification",
            "model": {"id": str(tiny_bert)},
            "data": {"source": str(data), "text_column": "sentence", "label_column": "sentiment", "max_length": 16},
            "strategy": "full",
            "train": {"epochs": 2, "lr": 1e-2, "batch_size": 16, "precision": "no"},
            "output_dir": str(root / "out"),
            "candidates": [str(tiny_bert), f"random:{tiny_bert}"],
        }
    ), root


def test_rank_scores_every_candidate_writes_reports_and_reuses_the_cache(rank_recipe):
    recipe, root = rank_recipe
    first = rank(recipe, max_samples=100, report_dir=root / "report")
    assert [c.init for c in first.candidates].count("random") == 1
    assert len(first.candidates) == 2
    logmes = [c.scores["logme"] for c in first.candidates]
    assert logmes == sorted(logmes, reverse=True)  # best first
    for c in first.candidates:
        assert c.n == 100 and c.dim == 32 and not c.cache_hit and c.feature_seconds > 0
        assert set(c.scores) == set(SCORES) and c.estimated_finetune_seconds > 0
    report = json.loads((root / "report" / "rank.json").read_text())
    assert report["winner"] == str(recipe.model.id) and len(report["candidates"]) == 2
    assert (root / "report" / "rank.png").stat().st_size > 5000 and "| rank |" in (
        root / "report" / "rank.md"
    ).read_text()
    again = rank(recipe, max_samples=100)
    assert all(c.cache_hit for c in again.candidates)
    assert [c.scores for c in again.candidates] == [c.scores for c in first.candidates]
    assert [c.feature_seconds for c in again.candidates] == [
        c.feature_seconds for c in first.candidates
    ]  # measured once, kept


def test_rank_validate_fine_tunes_each_candidate_and_reports_kendall_tau(rank_recipe, tmp_path, capsys):
    recipe, _root = rank_recipe
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe.to_yaml())
    winner = tmp_path / "winner.yaml"
    code = main(
        [
            "rank",
            str(path),
            "train.epochs=1",
            "--max-samples",
            "80",
            "--validate",
            "--out",
            str(tmp_path / "r"),
            "--write-recipe",
            str(winner),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "Kendall tau" in out and "ranking cost:" in out
    report = json.loads((tmp_path / "r" / "rank.json").read_text())
    v = report["validation"]
    assert v["metric"] == "accuracy" and set(v["kendall_tau"]) == set(SCORES) and v["finetune_seconds"] > 0
    assert all(0 <= c["finetuned"]["metric"] <= 1 for c in report["candidates"])
    assert report["rank_cost_share"] > 0
    written = load_recipe(winner)
    assert written.model.id == str(recipe.model.id) and written.model.init == "pretrained" and written.candidates == []
    # A second --validate reuses the finished runs instead of training again.
    main(["rank", str(path), "train.epochs=1", "--max-samples", "80", "--validate", "--out", str(tmp_path / "r")])
    again = json.loads((tmp_path / "r" / "rank.json").read_text())
    assert again["validation"]["finetune_seconds"] == v["finetune_seconds"]


def test_rank_needs_two_candidates(rank_recipe, tmp_path, capsys):
    recipe, _ = rank_recipe
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe.to_yaml())
    assert main(["rank", str(path), "--candidates", str(recipe.model.id)]) == 2
    assert "at least two candidates" in capsys.readouterr().err
