"""Recipe loading: every problem named with its key, value and fix, before any work."""

import pytest

from hubtransfer.cli import main
from hubtransfer.errors import RecipeError
from hubtransfer.job import load_recipe

BASE = {"task": "text-classification", "model": {"id": "org/model"}, "data": {"source": "packaged:rotten-tomatoes"}}


def test_defaults_are_filled_and_overrides_apply():
    r = load_recipe(
        BASE, ["train.lr=1e-4", "strategy=top:2", "train.eval_every=50", "head.hidden_sizes=[64]", "head.type=mlp"]
    )
    assert r.train.lr == 1e-4 and str(r.strategy) == "top:2" and r.train.eval_every == 50
    assert r.head.hidden_sizes == [64] and r.train.batch_size == 32 and r.model.revision == "main"


def test_misspelled_key_gets_did_you_mean():
    with pytest.raises(RecipeError) as e:
        load_recipe(BASE, ["train.learning_rte=1e-4", "trian.lr=1"])
    msg = str(e.value)
    assert "train.learning_rte: unknown key" in msg
    assert "Did you mean 'trian'" not in msg and "Did you mean 'train'?" in msg
    assert "2 problem(s)" in msg  # all problems collected at once


def test_typo_in_nested_key_suggests_the_sibling():
    with pytest.raises(RecipeError, match=r"Did you mean 'data.label_column'\?"):
        load_recipe(BASE, ["data.label_colum=y"])


def test_wrong_type_names_key_value_and_fix():
    with pytest.raises(RecipeError) as e:
        load_recipe(BASE, ["train.batch_size=big"])
    assert "train.batch_size" in str(e.value) and "'big'" in str(e.value)


def test_missing_required_value():
    with pytest.raises(RecipeError, match=r"model: required but missing"):
        load_recipe({"task": "text-classification", "data": {"source": "x"}})


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("task=text-clasification", "Did you mean 'text-classification'?"),
        ("strategy=top:0", "strategy 'top:0' is not one of"),
        ("strategy=everything", "'head', 'top:K'"),
        ("train.precision=fp8", "train.precision"),
        ("head.type=mlp", "needs head.hidden_sizes"),
        ("hub.push=true", "hub.repo_id is empty"),
        ("data.test_fraction=0.85", "leaves almost no training data"),
        ("train.eval_every=0", "positive step count"),
        ("nonsense", "is not of the form key.sub=value"),
    ],
)
def test_impossible_values_are_refused(override, fragment):
    with pytest.raises(RecipeError) as e:
        load_recipe(BASE, [override])
    assert fragment in str(e.value)


def test_malformed_yaml_names_the_line(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("task: text-classification\nmodel: {id: x\n")
    with pytest.raises(RecipeError, match=r"not valid YAML at line \d+"):
        load_recipe(bad)


def test_recipe_must_be_a_mapping(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="must hold a mapping"):
        load_recipe(bad)


def test_print_recipe_shows_every_default(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("task: image-classification\nmodel: {id: org/m}\ndata: {source: ./imgs}\n")
    assert main(["train", str(path), "--print-recipe", "train.epochs=5"]) == 0
    out = capsys.readouterr().out
    for key in ("epochs: 5", "precision: auto", "warmup_ratio: 0.06", "trust_remote_code: false", "private: true"):
        assert key in out


def test_cli_bad_recipe_exits_2_with_message(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("task: text-classification\nmodel: {id: org/m}\ndata: {source: x}\nouptut_dir: runs/x\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'output_dir'?" in err
    assert not (tmp_path / "runs").exists()


def test_a_bare_yaml_no_for_precision_means_no(tmp_path):
    """YAML 1.1 reads `precision: no` (and the override `train.precision=no`) as false."""
    path = tmp_path / "r.yaml"
    path.write_text("task: text-classification\nmodel: {id: m}\ndata: {source: d.csv}\ntrain: {precision: no}\n")
    assert load_recipe(path).train.precision == "no"
    assert load_recipe(path, ["train.precision=no"]).train.precision == "no"
