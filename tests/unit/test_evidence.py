"""Transfer evidence on tiny checkpoints: compare, data-size sweep, strategy sweep, LP-FT, the card section,
resuming."""

import json
import math

import numpy as np
import pytest
import torch
import yaml
from conftest import text_recipe, write_sentiment_csv

from hubtransfer.card.card import build_card
from hubtransfer.cli import main
from hubtransfer.evidence.curves import curve_stats, examples_for, measured_crossing, saturating_fit
from hubtransfer.job import job_for, load_recipe
from hubtransfer.run import finetune
from hubtransfer.variants import Variant, run_variants


def _hist(points):
    return [{"step": s, "validation": {"accuracy": v}} for s, v in points]


def test_curve_stats_reads_start_slope_and_asymptote():
    stats = curve_stats(_hist([(0, 0.5), (10, 0.7), (20, 0.8), (30, 0.9)]), "accuracy")
    assert stats["start"] == 0.5 and stats["first"] == 0.7 and stats["first_step"] == 10
    # trapezoid area: (0.6 + 0.75 + 0.85) * 10 / 30
    assert stats["auc"] == pytest.approx((0.6 + 0.75 + 0.85) / 3, abs=1e-5)
    assert stats["steps_to_90"] == 30  # 90% of the final 0.9 is 0.81: step 20's 0.8 falls short
    assert stats["best"] == 0.9 and stats["final"] == 0.9
    assert curve_stats(_hist([(0, 0.5), (10, 0.85), (20, 0.9)]), "accuracy")["steps_to_90"] == 10


def test_curve_stats_without_a_step_zero_and_without_the_metric():
    stats = curve_stats(_hist([(5, 0.6), (10, 0.6)]), "accuracy")
    assert stats["start"] is None and stats["first"] == 0.6 and stats["steps_to_90"] == 5
    with pytest.raises(ValueError, match="no validation 'f1'"):
        curve_stats(_hist([(5, 0.6)]), "f1")


def test_saturating_fit_recovers_a_known_curve_and_its_interval_covers_the_truth():
    a, b, c = 0.85, 2.0, 0.5
    n = np.array([100, 200, 400, 800, 1600, 3200] * 3, dtype=float)
    rng = np.random.default_rng(1)
    y = a - b * n**-c + rng.normal(0, 0.004, n.size)
    fit = saturating_fit(n, y, target=0.80, boots=200)
    truth = examples_for((a, b, c), 0.80)  # 1600
    assert fit["a"] == pytest.approx(a, abs=0.02)
    assert fit["examples_interval"][0] <= truth <= fit["examples_interval"][1]
    assert fit["examples_needed"] == pytest.approx(truth, rel=0.3)
    crossing = measured_crossing(n.tolist(), y.tolist(), 0.80)
    assert crossing == pytest.approx(truth, rel=0.3)


def test_saturating_fit_says_when_a_target_is_out_of_reach_and_needs_three_sizes():
    n = [100, 200, 400, 800]
    y = [0.60, 0.64, 0.66, 0.67]
    fit = saturating_fit(n, y, target=0.95, boots=50)
    assert math.isinf(fit["examples_needed"]) and fit["share_unreachable"] > 0.5
    assert measured_crossing(n, y, 0.95) is None
    with pytest.raises(ValueError, match="at least three data sizes"):
        saturating_fit([10, 10, 20], [0.5, 0.6, 0.7])


def test_baseline_grid_stops_after_validation_falls_twice(monkeypatch):
    import numpy as np

    import hubtransfer.checks.baselines as baselines

    scripted = iter([0.70, 0.80, 0.80, 0.78, 0.79, 0.75, 0.99])  # best at the 2nd C (a tie does not count as a fall)
    monkeypatch.setattr(
        baselines, "classification_metrics", lambda p, y: {"accuracy": next(scripted)}
    )  # validation per C, then test
    x = {s: np.array([[0.0], [1.0], [0.1], [0.9]]) for s in ("train", "validation", "test")}
    y = {s: np.array([0, 1, 0, 1]) for s in x}
    out = baselines.tuned_logreg("t", x, y, [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0], "accuracy", 0.0)
    assert [t["C"] for t in out["tried"]] == [
        0.1,
        0.3,
        1.0,
        3.0,
        10.0,
    ]  # 3.0 fell, 10.0 fell again: 30 and 100 are not fitted
    assert out["C"] == 0.3


def test_classical_baselines_tune_on_validation(tmp_path, image_folder):
    from hubtransfer.checks.baselines import classical_baseline
    from hubtransfer.data.prepare import prepare_data
    from hubtransfer.recipe.sections import DataSpec

    text = prepare_data(
        DataSpec(
            source=str(write_sentiment_csv(tmp_path / "r.csv", n=400)), text_column="sentence", label_column="sentiment"
        ),
        "text",
    )
    out = classical_baseline(text, "text")
    assert out["test"]["accuracy"] > 0.9  # the synthetic words give the label away
    assert out["C"] in [t["C"] for t in out["tried"]] and len(out["tried"]) == 7
    assert out["validation"]["accuracy"] == max(t["validation"] for t in out["tried"])
    images = prepare_data(DataSpec(source=str(image_folder)), "image")
    assert classical_baseline(images, "image")["test"]["accuracy"] == 1.0  # bright vs dark
    with pytest.raises(ValueError, match="Unknown baseline 'audio'"):
        classical_baseline(images, "audio")


@pytest.fixture
def small_recipe(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "reviews.csv", n=320)
    return text_recipe(
        tiny_bert, data, tmp_path / "run", train__epochs=2, train__batch_size=16, train__eval_batch_size=64
    )


def test_eval_at_start_records_step_zero(small_recipe):
    result = finetune(small_recipe, ["train.eval_at_start=true", "train.eval_every=4"])
    assert result.history[0]["step"] == 0 and result.history[0]["train_loss"] is None
    assert [r["step"] for r in result.history[1:4]] == [4, 8, 12]
    assert "validation_best" in result.run["metrics"]


def test_lp_ft_probes_the_head_first_then_trains_everything(small_recipe, tiny_bert, monkeypatch):
    from safetensors.torch import load_file

    import hubtransfer.run as run
    import hubtransfer.train.routes as routes

    phases = []
    real_fit = run.fit

    def spy(model, loaders, job, *args, **kwargs):
        phases.append(
            (str(job.strategy), job.recipe.train.lr, {n for n, p in model.named_parameters() if p.requires_grad})
        )
        return real_fit(model, loaders, job, *args, **kwargs)

    monkeypatch.setattr(run, "fit", spy)  # the fine-tuning phase
    monkeypatch.setattr(routes, "fit", spy)  # the probe phase
    result = finetune(small_recipe, ["strategy=lp-ft", "train.probe_epochs=2", "train.probe_lr=0.01", "train.epochs=3"])
    (s1, lr1, probe_params), (s2, lr2, ft_params) = phases
    assert (s1, lr1, s2, lr2) == ("head", 0.01, "lp-ft", 5e-3)
    # the probe trains pooler + output layer on cached first-token states (a head-only module sharing them)
    assert probe_params == {
        "head.pooler.dense.weight",
        "head.pooler.dense.bias",
        "head.rest.1.weight",
        "head.rest.1.bias",
    }
    assert ft_params == {n for n, _ in result.model.named_parameters()}
    probe = result.run["training"]["probe"]
    assert probe["steps"] == 2 * math.ceil(256 / 16) and probe["features_cached"] is True
    assert result.run["strategy"]["trainable_share"] == 1.0
    before = load_file(str(tiny_bert / "model.safetensors"))["bert.embeddings.word_embeddings.weight"]
    assert not torch.equal(before, result.model.bert.embeddings.word_embeddings.weight.detach())  # the backbone trained
    assert result.metrics["test"]["accuracy"] >= 0.9
    card = (result.output_dir / "README.md").read_text()
    assert "linear probing, then fine-tuning" in card


def test_run_variants_reuses_finished_runs(small_recipe, tmp_path):
    recipe = load_recipe(small_recipe, ["train.epochs=1"])
    variants = [Variant("a", {"train.lr": 0.005}), Variant("b", {"train.lr": 0.001})]
    first = run_variants(recipe, variants, tmp_path / "sweep")
    assert [r.reused for r in first] == [False, False]
    again = run_variants(recipe, variants, tmp_path / "sweep")
    assert [r.reused for r in again] == [True, True]
    assert again[0].run["metrics"] == first[0].run["metrics"]
    (tmp_path / "sweep").rename(tmp_path / "moved")  # where a run was written is not part of what it is
    assert [r.reused for r in run_variants(recipe, variants, tmp_path / "moved")] == [True, True]
    changed = run_variants(recipe, [Variant("a", {"train.lr": 0.002})], tmp_path / "moved")
    assert changed[0].reused is False  # same folder, another recipe: trained again
    with pytest.raises(ValueError, match="distinct folders"):
        run_variants(recipe, [Variant("x y", {}), Variant("x_y", {})], tmp_path / "sweep")


def test_compare_reports_gaps_baseline_and_plots(small_recipe, tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(small_recipe))
    out = tmp_path / "evidence"
    assert (
        main(
            [
                "compare",
                str(path),
                "train.epochs=2",
                "--scratch-lrs",
                "0.005",
                "0.02",
                "--eval-every",
                "8",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "compare.json").read_text())
    printed = capsys.readouterr().out
    assert "Start:" in printed and "Slope:" in printed and "Asymptote:" in printed and "classical baseline" in printed
    assert {s["lr"] for s in report["scratch_search"]} == {0.005, 0.02}
    assert report["scratch"]["validation_best"] == max(s["validation_best"] for s in report["scratch_search"])
    p = report["pretrained"]
    assert p["curve"][0][0] == 0 and [x for x, _ in p["curve"]] == [0, 8, 16, 24, 32]
    assert report["gaps"]["test"] == pytest.approx(p["test"] - report["scratch"]["test"], abs=1e-5)
    assert report["baseline"]["test"]["accuracy"] > 0.5 and (out / "compare.png").stat().st_size > 10_000
    assert (out / "runs" / "compare" / "scratch-lr0.02" / "hubtransfer_run.json").is_file()


def test_datasize_sweep_fits_and_checks_the_target(small_recipe, tmp_path):
    from hubtransfer.evidence.datasize import DatasizeOptions, datasize

    recipe = load_recipe(small_recipe, ["train.epochs=1"])
    options = DatasizeOptions(
        fractions=[0.25, 0.5, 1.0], seeds=2, seeds_up_to=0.25, scratch_fractions=[0.25, 1.0], target=0.7, min_steps=6
    )
    report = datasize(recipe, options, report_dir=tmp_path / "ev")
    pts = report["points"]
    assert report["sizes"] == [64, 128, 256]
    assert sorted((p["init"], p["n"], p["seed"]) for p in pts) == sorted(
        [
            ("pretrained", 64, 0),
            ("pretrained", 64, 1),
            ("pretrained", 128, 0),
            ("pretrained", 256, 0),
            ("random", 64, 0),
            ("random", 256, 0),
        ]
    )
    assert {p["steps"] for p in pts if p["n"] == 64} == {6}  # 4 steps by the recipe, raised to min_steps
    assert {p["steps"] for p in pts if p["n"] == 256} == {16}
    assert "pretrained" in report["fits"] and len(report["baseline"]["points"]) == 3
    assert report["agreement"] is not None and "examples needed" in " ".join(report["summary"]).lower()
    assert (tmp_path / "ev" / "datasize.png").is_file()


def test_strategy_sweep_recommends_the_best_validation_and_its_recipe_runs(small_recipe, tmp_path):
    from hubtransfer.evidence.strategy_sweep import default_strategies, sweep_strategies

    recipe = load_recipe(small_recipe, ["train.epochs=3", "train.probe_epochs=1"])
    assert default_strategies(job_for(recipe)) == ["head", "top:1", "full", "lp-ft"]  # the tiny BERT has two blocks
    report = sweep_strategies(
        recipe, strategies=["head", "top:1", "lp-ft"], report_dir=tmp_path / "ev", write_recipe=tmp_path / "best.yaml"
    )
    best = max(report["runs"], key=lambda r: (r["validation_best"], -r["trainable_share"]))
    assert report["recommended"] == best["strategy"] and best["validation_best"] > 0.9
    head = next(r for r in report["runs"] if r["strategy"] == "head")
    assert head["lr"] == recipe.train.probe_lr and head["trainable_share"] < 0.1
    written = load_recipe(tmp_path / "best.yaml", [f"output_dir={tmp_path / 'recommended-run'}"])
    assert str(written.strategy) == best["strategy"]
    assert (
        finetune(written).metrics["test"]["accuracy"] == best["test"]
    )  # the written recipe reproduces the sweep's run


def test_strategy_sweep_refuses_a_bad_strategy(small_recipe, tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(small_recipe))
    assert main(["strategies", str(path), "--strategies", "head", "top:0", "--out", str(tmp_path / "ev")]) == 2
    assert "top:0" in capsys.readouterr().err and not (tmp_path / "ev").exists()


def test_a_run_carries_the_evidence_into_its_card(small_recipe, tmp_path):
    from hubtransfer.evidence.compare import compare

    recipe = load_recipe(small_recipe, ["train.epochs=1"])
    compare(recipe, scratch_lrs=[0.01], eval_every=8)  # default folder: OUTPUT_DIR-evidence
    result = finetune(recipe)
    assert (result.output_dir / "evidence" / "compare.json").is_file()
    card = (result.output_dir / "README.md").read_text()
    assert "## Transfer evidence" in card and "![Pretrained vs from scratch](evidence/compare.png)" in card
    assert "classical baseline" in card
    evidence = card.split("## Transfer evidence")[1].split("\n## ")[0]
    assert str(tmp_path) not in evidence  # the reports name run folders, not local paths
    assert "Transfer evidence" in str(build_card(result.output_dir))  # rebuilt from the folder alone


@pytest.mark.parametrize(
    "args, message",
    [
        (["datasize", "--fractions", "0", "0.5"], "--fractions: shares of the training split must lie in (0, 1]"),
        (["compare", "--scratch-lrs", "-1"], "--scratch-lrs: learning rates must be positive"),
    ],
)
def test_evidence_commands_refuse_bad_arguments_before_any_work(small_recipe, tmp_path, capsys, args, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(small_recipe))
    command, *flags = args
    assert main([command, str(path), *flags, "--out", str(tmp_path / "ev")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "ev").exists()


def test_push_refuses_an_evidence_folder_without_reports(small_recipe, tmp_path, capsys):
    result = finetune(small_recipe, ["train.epochs=1", "hub.repo_id=me/model"])
    (tmp_path / "empty").mkdir()
    assert main(["push", str(result.output_dir), "--evidence", str(tmp_path / "empty")]) == 2
    assert "holds no compare.json" in capsys.readouterr().err
