"""Choices made from the data: the learning-rate search, budgets, pooling, lengths, image sizes, class weights,
and the checks a finished run makes on itself (below the classical baseline, still improving, ...)."""

import json
import shutil
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from conftest import text_recipe, write_sentiment_csv

from hubtransfer import choices
from hubtransfer.card.card import build_card
from hubtransfer.checks import diagnostics
from hubtransfer.errors import RecipeError
from hubtransfer.job import job_for, load_recipe
from hubtransfer.run import finetune
from hubtransfer.train.loop import class_weight_tensor
from hubtransfer.train.steps import _loss

CANDIDATES = [3e-3, 1e-2, 3e-2]


@pytest.mark.parametrize("schedule, extra_steps", [("run", 14), ("short", 21)])
def test_lr_auto_trains_exactly_like_a_run_at_the_rate_it_chose(tiny_bert, tmp_path, schedule, extra_steps):
    """Either search schedule: the candidates continuing on the run's schedule from the rung ('run'), or short runs
    of their own then the winner from the start ('short'), which trains one rung more."""
    data = write_sentiment_csv(tmp_path / "d.csv")
    common = dict(
        train__epochs=3, train__precision="bf16"
    )  # bf16: the winner must keep its mixed precision after the search
    lr_search = {"candidates": CANDIDATES, "schedule": schedule}
    auto = finetune(
        text_recipe(tiny_bert, data, tmp_path / "auto", train__lr="auto", train__lr_search=lr_search, **common)
    )
    search = auto.run["training"]["lr_search"]
    assert search["candidates"] == CANDIDATES and len(search["scores"]) == 3
    assert search["rung_step"] == 7 and search["steps"] == 36 and search["extra_steps"] == extra_steps
    assert search.get("schedule", "run") == schedule
    best = max(range(3), key=lambda i: (search["scores"][i], -CANDIDATES[i]))
    assert search["chosen"] == CANDIDATES[best] == auto.run["training"]["lr"]
    saved = load_recipe(tmp_path / "auto" / "recipe.yaml")
    assert saved.train.lr == search["chosen"]  # the saved recipe names the rate: it reproduces the run
    assert [c["key"] for c in auto.run["choices"]][-1] == "train.lr"
    assert not list((tmp_path / "auto").glob("best*.safetensors"))

    fixed = finetune(text_recipe(tiny_bert, data, tmp_path / "fixed", train__lr=search["chosen"], **common))
    assert (tmp_path / "auto" / "model.safetensors").read_bytes() == (
        tmp_path / "fixed" / "model.safetensors"
    ).read_bytes()
    assert [(h["step"], h["validation"]) for h in auto.history] == [(h["step"], h["validation"]) for h in fixed.history]


def _sentence_encoder(tiny_bert, folder):
    """The tiny BERT with a sentence-transformers layout saying it was trained with mean pooling."""
    shutil.copytree(tiny_bert, folder)
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    return folder


def _imbalanced_csv(path, n_pos=200, n_neg=40):
    rows = (
        ["sentence,sentiment"]
        + [f"good great fine {i},pos" for i in range(n_pos)]
        + [f"bad awful dull {i},neg" for i in range(n_neg)]
    )
    path.write_text("\n".join(rows) + "\n")
    return path


def test_choices_are_made_from_the_data_logged_saved_and_carded(tiny_bert, tmp_path, caplog):
    model = _sentence_encoder(tiny_bert, tmp_path / "encoder")
    data = _imbalanced_csv(tmp_path / "imb.csv")
    recipe = text_recipe(
        model,
        data,
        tmp_path / "out",
        train__lr=5e-3,
        train__epochs="auto",
        train__min_steps=40,
        data__max_length="auto",
        head__pooling="auto",
    )
    with caplog.at_level("INFO", logger="hubtransfer"):
        result = finetune(recipe)
    chosen = {c["key"]: c for c in result.run["choices"]}
    assert chosen["head.pooling"]["value"] == "mean"
    assert chosen["train.early_stopping.metric"]["value"] == "f1"  # 160 / 32 training examples: 5x >= 3x
    weights = chosen["train.class_weights"]["value"]
    assert weights["neg"] > 1 > weights["pos"]
    counts = chosen["train.class_weights"]["detail"]["counts"]
    n = sum(counts.values())
    assert weights["neg"] == pytest.approx((n / (2 * counts["neg"])) ** 0.5, abs=1e-4)
    assert chosen["train.epochs"]["value"] == 4  # ceil(min_steps 40 / 12 steps an epoch)
    assert chosen["train.early_stopping.patience"]["value"] is None  # 4 evaluations: too few to stop early
    assert chosen["data.max_length"]["value"] == 16  # short texts: the 16-token floor
    saved = load_recipe(tmp_path / "out" / "recipe.yaml")
    assert (saved.head.pooling, saved.train.epochs, saved.data.max_length, saved.train.early_stopping.metric) == (
        "mean",
        4,
        16,
        "f1",
    )
    assert "chosen from the data: head.pooling = mean" in caplog.text
    card = str(build_card(tmp_path / "out"))
    assert "Chosen from the data" in card and "| `train.class_weights` |" in card and "sentence-embedding model" in card


def test_max_length_auto_is_the_95th_percentile_within_its_bounds(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [" ".join(["good"] * (5 + i % 40)) for i in range(200)]  # 5..44 words, + [CLS] and [SEP]
    data = SimpleNamespace(splits={"train": {"text": texts}}, input_column="text")
    recipe = load_recipe({"task": "text-classification", "model": {"id": "x/y"}, "data": {"source": "a.csv"}})
    choice = choices.choose_max_length(recipe, data, tok, per_token=False)
    lengths = sorted(7 + i % 40 for i in range(200))
    assert choice.value == 8 * -(-lengths[189] // 8) == 48  # p95 = 46 tokens, rounded up to a multiple of 8
    assert choice.detail["cut_share"] == 0.0
    tok.model_max_length = 32
    assert choices.choose_max_length(recipe, data, tok, per_token=False).value == 32  # the checkpoint's limit


def _image_data(side: int) -> SimpleNamespace:
    from PIL import Image

    images = [Image.new("RGB", (side, side + 3)) for _ in range(5)]
    return SimpleNamespace(splits={"train": [{"image": im} for im in images]}, input_column="image")


@pytest.mark.parametrize("side,expected", [(8, 96), (28, 96), (64, 128), (100, 224), (224, 224), (300, 224)])
def test_image_size_auto_enlarges_small_images_and_keeps_the_whole_frame_of_large_ones(side, expected):
    from transformers import EfficientNetImageProcessor

    # The converted EfficientNet-Lite0's own settings: resize to 256, crop 224 (sizes come as transformers' SizeDict).
    processor = EfficientNetImageProcessor(
        size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True
    )
    recipe = load_recipe({"task": "image-classification", "model": {"id": "x/y"}, "data": {"source": "imgs"}})
    assert choices.choose_image_size(recipe, _image_data(side), processor).value == expected


@pytest.mark.parametrize("side,expected", [(64, 128), (224, None), (300, None)])
def test_image_size_auto_leaves_large_images_to_a_processor_that_does_not_crop(side, expected):
    from transformers import ViTImageProcessor

    processor = ViTImageProcessor(size={"height": 224, "width": 224})  # resizes the whole frame itself
    recipe = load_recipe({"task": "image-classification", "model": {"id": "x/y"}, "data": {"source": "imgs"}})
    assert choices.choose_image_size(recipe, _image_data(side), processor).value == expected


def test_image_size_auto_on_large_images_gives_the_whole_frame_to_the_model(tmp_path):
    """The chosen size reaches the processor as resize and crop alike, so nothing of the frame is cut: a 300 px
    image with a bright stripe at its edge keeps it (the processor's own 256 + center 224 crops it away)."""
    import numpy as np
    from PIL import Image
    from transformers import EfficientNetImageProcessor

    from hubtransfer.tasks.image_classification import load_processor

    frame = np.zeros((300, 300, 3), dtype=np.uint8)
    frame[:, :12] = 255  # a 12 px bright stripe at the left edge
    image = Image.fromarray(frame)
    processor = EfficientNetImageProcessor(
        size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True
    )
    processor.save_pretrained(tmp_path)
    cropped = processor(images=image, return_tensors="np")["pixel_values"][0]
    assert cropped[:, :, :5].max() == cropped.min()  # the crop lost the stripe

    def recipe(size):
        data = {"source": "imgs", "image_size": size}
        return load_recipe({"task": "image-classification", "model": {"id": "x/y"}, "data": data})

    size = choices.choose_image_size(recipe("auto"), _image_data(300), processor).value
    whole = load_processor(tmp_path, recipe(size))(images=image, return_tensors="np")["pixel_values"][0]
    assert whole.shape[-2:] == (224, 224)
    assert whole[:, :, :5].min() > whole[:, :, 50:].max()  # the stripe is there, at the left edge


def test_weighted_loss_is_the_weighted_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    weights = torch.tensor([0.5, 2.0])
    model = lambda **batch: SimpleNamespace(logits=logits, loss=None)
    got = _loss(model, {"x": None, "labels": labels}, weights)
    assert got.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels, weight=weights).item())
    assert got.item() != pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())


def test_balanced_labels_get_no_weights_and_keep_accuracy():
    data = SimpleNamespace(labels=["a", "b"])
    recipe = load_recipe({"task": "text-classification", "model": {"id": "x/y"}, "data": {"source": "a.csv"}})
    assert choices.choose_class_weights(recipe, data, Counter({0: 50, 1: 30})).value == "none"
    job = job_for(recipe)
    assert choices.choose_metric(job, Counter({0: 50, 1: 30})).value == "accuracy"
    assert choices.choose_metric(job, Counter({0: 90, 1: 30})).value == "f1"  # 3x: imbalanced
    pinned = load_recipe(recipe.to_dict() | {"train": recipe.to_dict()["train"] | {"class_weights": {"b": 3.0}}})
    assert class_weight_tensor(pinned, ["a", "b"]).tolist() == [1.0, 3.0]
    with pytest.raises(RecipeError, match="labels the data does not have: \\['b'\\]"):
        class_weight_tensor(pinned, ["a", "c"])


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("train.lr=-1", "train.lr must be 'auto' or a positive number"),
        ("train.lr=fast", "train.lr"),
        ("train.epochs=0", "train.epochs must be 'auto'"),
        ("data.max_length=0", "data.max_length must be 'auto'"),
        ("train.lr_search.candidates=[0.001]", "two or more positive learning rates"),
        ("train.class_weights={a: -1}", "train.class_weights must be positive"),
        ("train.early_stopping.patience=0", "patience must be 'auto', null or at least 1"),
    ],
)
def test_auto_keys_refuse_bad_values(override, fragment):
    with pytest.raises(RecipeError, match=fragment.replace("[", "\\[").replace("(", "\\(")):
        load_recipe({"task": "text-classification", "model": {"id": "x/y"}, "data": {"source": "a.csv"}}, [override])


def test_the_defaults_are_chosen_from_the_data():
    r = load_recipe({"task": "text-classification", "model": {"id": "x/y"}, "data": {"source": "a.csv"}})
    assert (
        r.train.lr,
        r.train.epochs,
        r.data.max_length,
        r.data.image_size,
        r.head.pooling,
        r.train.class_weights,
    ) == ("auto", "auto", "auto", "auto", "auto", "auto")
    assert r.train.early_stopping.metric is None and job_for(r).watched_metric == "accuracy" and r.train.baseline


# --------------------------------------------------------------------------- the run's checks on itself


def _history(values, n=200):
    return [{"step": 10 * (i + 1), "train_loss": 0.5, "validation": {"accuracy": v}} for i, v in enumerate(values)]


def test_still_improving_fires_on_a_rising_curve_and_not_on_a_converged_one():
    rising = _history([0.60, 0.70, 0.78, 0.85])
    found = diagnostics.still_improving(rising, "accuracy", best_step=40, n_validation=200)
    assert found["code"] == "still_improving" and "0.7000 -> 0.7800 -> 0.8500" in found["message"]
    assert (
        diagnostics.still_improving(_history([0.90, 0.95, 0.955]), "accuracy", 30, 200) is None
    )  # within a standard error
    assert (
        diagnostics.still_improving(_history([0.90, 0.96, 0.95]), "accuracy", 20, 200) is None
    )  # best was not the last
    # One late gain is what a decaying learning rate gives most runs at their end: not enough on its own.
    assert diagnostics.still_improving(_history([0.90, 0.90, 0.99]), "accuracy", 30, 200) is None
    assert (
        diagnostics.still_improving(_history([0.5, 0.9]), "accuracy", 20, 200) is None
    )  # two evaluations: cannot tell


def test_below_baseline_fires_only_when_the_model_is_below():
    base = {"name": "tf-idf + LR", "test": {"accuracy": 0.90, "f1": 0.80}}
    found = diagnostics.below_baseline({"accuracy": 0.85, "f1": 0.82}, base, "f1")
    assert (
        found["code"] == "below_baseline"
        and "accuracy 0.8500 vs 0.9000" in found["message"]
        and "f1 0.82" not in found["message"]
    )
    assert diagnostics.below_baseline({"accuracy": 0.91, "f1": 0.82}, base, "f1") is None
    assert diagnostics.below_baseline({"accuracy": 0.5}, None, "accuracy") is None


def test_never_predicted_and_small_validation():
    confusion = [[5, 0, 0], [3, 0, 0], [0, 0, 0]]  # class b occurs and is never answered; c never occurs
    assert diagnostics.never_predicted(confusion, ["a", "b", "c"])["detail"]["labels"] == ["b"]
    assert diagnostics.never_predicted([[5, 0], [0, 3]], ["a", "b"]) is None
    small = diagnostics.small_validation(126, "accuracy", 0.95, 0.1)
    assert "126 examples" in small["message"] and small["detail"]["standard_error"] == pytest.approx(
        (0.95 * 0.05 / 126) ** 0.5
    )
    assert diagnostics.small_validation(250, "accuracy", 0.95, 0.1) is None


def test_an_undertrained_run_says_so_and_a_converged_one_does_not(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "d.csv", n=600)
    under = finetune(text_recipe(tiny_bert, data, tmp_path / "under", train__lr=2e-4, train__epochs=2))
    codes = {f["code"] for f in under.run["diagnostics"]}
    assert "below_baseline" in codes  # tf-idf + LR reads the sentiment words perfectly; 2 slow epochs do not
    assert under.run["baseline"]["test"]["accuracy"] == 1.0
    metrics = json.loads((tmp_path / "under" / "metrics.json").read_text())
    assert metrics["baseline"]["test"]["accuracy"] == 1.0 and {f["code"] for f in metrics["diagnostics"]} == codes
    assert (
        set(metrics["test_per_class"]) == {"neg", "pos"}
        and sum(v["support"] for v in metrics["test_per_class"].values()) == 60
    )
    card = str(build_card(tmp_path / "under"))
    assert (
        "What this run found about itself" in card
        and "below the classical baseline" in card
        and "| class | precision |" in card
    )

    done = finetune(text_recipe(tiny_bert, data, tmp_path / "done", train__lr=1e-2, train__epochs=6))
    assert done.metrics["test"]["accuracy"] == 1.0
    assert [f["code"] for f in done.run["diagnostics"]] == [
        "small_validation"
    ]  # 60 validation texts; nothing else fires


@pytest.mark.parametrize("keep, kept_step", [("best", 54), ("last_within_se", 216)])
def test_last_within_se_keeps_the_latest_weights_as_good_as_the_best_within_the_noise(keep, kept_step):
    """bbc-news's validation (213 articles): 211 right at step 54, 210 at each evaluation after. One article apart is
    within the standard error (0.0066): 'last_within_se' keeps the most trained of them, 'best' the first. A score
    more than a standard error below is never kept, and early stopping counts from the best either way."""
    from accelerate import Accelerator

    from hubtransfer.train.checkpoints import BestWeights
    from hubtransfer.train.state import Best

    model = torch.nn.Linear(2, 2)
    best = Best("accuracy", 3, 0.0, {"weight", "bias"}, BestWeights(Accelerator(cpu=True), None), within=213)
    if keep == "best":
        best.within = None
    scores = {54: 211 / 213, 108: 210 / 213, 162: 210 / 213, 216: 210 / 213}
    for step, value in scores.items():
        with torch.no_grad():
            model.weight.fill_(step)  # the weights say which evaluation they are
        best.update(model, {"step": step, "validation": {"accuracy": value}})
    assert best.record["step"] == kept_step and best.value == scores[54] and best.should_stop
    assert best.weights._memory["weight"][0, 0].item() == kept_step
    best.update(model, {"step": 270, "validation": {"accuracy": 207 / 213}})  # 0.0188 below: out of the noise
    assert best.record["step"] == kept_step
    # A metric that is not a share has no binomial standard error: the best is kept, as without the setting.
    assert Best("loss", 3, 0.0, set(), BestWeights(Accelerator(cpu=True), None), within=213).within is None
