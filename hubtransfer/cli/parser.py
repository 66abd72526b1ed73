"""The ``hubtransfer`` command line's arguments, one function per subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_HUB_ROOT = Path.home() / ".cache" / "hubtransfer" / "hub"


def _at_least(low: int):
    """An argparse type: an integer no smaller than ``low``, with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _recipe_args(p, recipe: str | None = None, overrides: str = "key.sub=value applied to the recipe") -> None:
    """The positional recipe and its key.sub=value overrides, as every recipe-driven subcommand takes them."""
    p.add_argument("recipe", help=recipe)
    p.add_argument("overrides", nargs="*", help=overrides)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubtransfer", description="Transfer learning from Hub checkpoints, by recipe.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _train_args,
        _launch_args,
        _update_args,
        _eval_args,
        _predict_args,
        _rank_args,
        _compare_args,
        _datasize_args,
        _strategies_args,
        _source_args,
        _hub_args,
        _push_args,
    ):
        add(sub)
    return p


def _train_args(sub) -> None:

    t = sub.add_parser(
        "train",
        help="fine-tune by a recipe",
        description="Fine-tune by a YAML recipe; key.sub=value overrides follow it.",
    )
    _recipe_args(t, recipe="YAML recipe (see recipes/)", overrides="key.sub=value, e.g. train.lr=1e-4 strategy=head")
    t.add_argument("--print-recipe", action="store_true", help="print the resolved recipe with every default and exit")


def _launch_args(sub) -> None:
    t = sub.add_parser(
        "launch",
        help="train by a recipe on several processes or machines (accelerate launch)",
        description=(
            "`accelerate launch` of `hubtransfer train` with a launch config (recipes/launch/); the flags override "
            "the config's keys. Every machine runs the same command with its own --machine-rank. The rendezvous "
            "gives up after --rendezvous-timeout seconds with one line saying what to fix."
        ),
    )
    t.add_argument("config", help="launch config: an Accelerate config file, e.g. recipes/launch/cpu_2proc.yaml")
    _recipe_args(t, recipe="YAML recipe (see recipes/)", overrides="key.sub=value, e.g. train.lr=1e-4")
    t.add_argument("--machine-rank", dest="machine_rank", type=_at_least(0), help="this machine's rank (0: main)")
    t.add_argument("--main-process-ip", dest="main_process_ip", help="address of machine rank 0")
    t.add_argument("--main-process-port", dest="main_process_port", type=_at_least(1), help="its port")
    t.add_argument("--num-processes", dest="num_processes", type=_at_least(1), help="processes on all machines")
    t.add_argument("--num-machines", dest="num_machines", type=_at_least(1), help="machines in the launch")
    t.add_argument(
        "--rendezvous-timeout",
        dest="rendezvous_timeout",
        type=_at_least(1),
        default=120,
        help="seconds every machine waits for the others to join before giving up (default 120)",
    )


def _update_args(sub) -> None:
    u = sub.add_parser(
        "update",
        help="train the next version of a pushed model on new data (continue from REPO@REV)",
        description=(
            "Continue a pushed hubtransfer model on the recipe's data: `hubtransfer update RECIPE --from REPO@v1` is "
            "`hubtransfer train RECIPE update.from_model=REPO update.from_revision=v1`; the push is refused when the "
            "new version forgets more than update.max_forgetting points of the old test accuracy."
        ),
    )
    _recipe_args(
        u,
        recipe="YAML recipe: the new data, the base checkpoint, the hub target",
        overrides="key.sub=value, e.g. update.method=distill",
    )
    u.add_argument("--from", dest="parent", required=True, help="the previous version: REPO@REVISION (or a run folder)")
    u.add_argument("--method", choices=["naive", "replay", "distill", "interpolate", "joint"], help="default: replay")
    u.add_argument("--force", action="store_true", help="push even when forgetting exceeds update.max_forgetting")


def _eval_args(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a saved run on a split of its data")
    e.add_argument("folder", help="output_dir of a run")
    e.add_argument("--split", default="test", choices=["train", "validation", "test"])


def _predict_args(sub) -> None:
    r = sub.add_parser("predict", help="labels + scores for texts or image files")
    r.add_argument("folder", help="output_dir of a run (or any saved classifier folder)")
    r.add_argument("inputs", nargs="*", help="texts, or image paths for an image model")
    r.add_argument("--file", help="a text file with one input per line")
    r.add_argument("--top-k", type=int, default=1)


def _rank_args(sub) -> None:
    k = sub.add_parser(
        "rank",
        help="rank candidate checkpoints on the recipe's data before fine-tuning",
        description=(
            "Score candidate checkpoints (LogME, H-score, kNN) on frozen features of the recipe's training data."
        ),
    )
    _recipe_args(k, recipe="YAML recipe: its task, data and budget")
    k.add_argument("--candidates", nargs="+", help="Hub ids, folders or random:ID (default: the recipe's candidates)")
    k.add_argument("--max-samples", type=_at_least(10), default=1000, help="training examples scored (default 1000)")
    k.add_argument(
        "--validate", action="store_true", help="also fine-tune every candidate by the recipe and report Kendall tau"
    )
    k.add_argument(
        "--validate-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe change for the validation runs only",
    )
    k.add_argument("--out", type=Path, help="report folder (default: OUTPUT_DIR-rank)")
    k.add_argument("--write-recipe", type=Path, help="write the recipe with the best pretrained candidate here")


def _compare_args(sub) -> None:
    c = sub.add_parser(
        "compare",
        help="transfer evidence: the recipe pretrained vs from scratch (+ a classical baseline)",
        description="Train the recipe from pretrained weights and from random init (a small learning-rate search "
        "for the latter) on one evaluation grid from step 0; report start, slope and asymptote.",
    )
    _recipe_args(c)
    c.add_argument(
        "--scratch-lrs",
        nargs="+",
        type=float,
        help="learning rates tried from scratch (default: the recipe's x1, x3, x10)",
    )
    c.add_argument("--eval-every", type=_at_least(1), help="evaluation interval in steps (default: a tenth of the run)")
    c.add_argument("--out", type=Path, help="evidence folder (default: OUTPUT_DIR-evidence)")


def _datasize_args(sub) -> None:
    d = sub.add_parser(
        "datasize",
        help="transfer evidence: metric vs training-set size, with a saturating fit",
        description="Train the recipe on nested fractions of its training split, pretrained and from scratch.",
    )
    _recipe_args(d)
    d.add_argument(
        "--fractions", nargs="+", type=float, help="shares of the training split (default 1/16 1/8 1/4 1/2 1)"
    )
    d.add_argument("--seeds", type=_at_least(1), default=3, help="runs per size for the smallest sizes (default 3)")
    d.add_argument(
        "--seeds-up-to", type=float, default=1 / 16, help="sizes up to this share get --seeds runs (default 1/16)"
    )
    d.add_argument("--no-scratch", action="store_true", help="skip the from-scratch runs")
    d.add_argument(
        "--scratch-fractions", nargs="+", type=float, help="sizes trained from scratch (default: every other size)"
    )
    d.add_argument(
        "--scratch-lr",
        type=float,
        help="from-scratch learning rate (default: compare.json's winner, else the recipe's)",
    )
    d.add_argument("--target", type=float, help="metric value to estimate the examples needed for, e.g. 0.78")
    d.add_argument(
        "--min-steps", type=_at_least(1), default=100, help="fewest optimizer steps any size trains (default 100)"
    )
    d.add_argument("--out", type=Path, help="evidence folder (default: OUTPUT_DIR-evidence)")


def _strategies_args(sub) -> None:
    g = sub.add_parser(
        "strategies",
        help="transfer evidence: head / top:K / full / lp-ft compared, the best written as a recipe",
        description="Train the recipe under several strategies and recommend the best by validation.",
    )
    _recipe_args(g)
    g.add_argument("--strategies", nargs="+", help="default: head, top:1, top:2, top:(blocks/2), full, lp-ft")
    g.add_argument("--write-recipe", type=Path, help="also write the recommended recipe here")
    g.add_argument("--out", type=Path, help="evidence folder (default: OUTPUT_DIR-evidence)")


def _source_args(sub) -> None:
    o = sub.add_parser(
        "source",
        help="transfer evidence: the recipe from a developed source model vs from the original checkpoint",
        description="Train the recipe (whose model.id is a source model, e.g. after masked-LM on in-domain text) "
        "and the same recipe from --original, at each size and seed; report whether the source step helped.",
    )
    _recipe_args(o)
    o.add_argument(
        "--original", required=True, help="the checkpoint the source model was developed from (Hub id or folder)"
    )
    o.add_argument(
        "--sizes", nargs="+", type=_at_least(1), help="training-set sizes (default: the whole training split)"
    )
    o.add_argument("--seeds", type=_at_least(1), default=1, help="runs per size (default 1)")
    o.add_argument("--seeds-up-to", type=_at_least(1), help="only sizes up to this many examples get --seeds runs")
    o.add_argument(
        "--min-steps", type=_at_least(1), default=100, help="fewest optimizer steps any size trains (default 100)"
    )
    o.add_argument("--source-run", type=Path, help="run folder of the source model, to report what developing it cost")
    o.add_argument("--out", type=Path, help="evidence folder (default: OUTPUT_DIR-evidence)")


def _hub_args(sub) -> None:
    h = sub.add_parser("hub", help="the local Hub-compatible endpoint")
    hsub = h.add_subparsers(dest="hub_command", required=True)
    hs = hsub.add_parser("serve", help="serve a local Hub from a folder (127.0.0.1 by default)")
    hs.add_argument("--root", type=Path, default=DEFAULT_HUB_ROOT)
    hs.add_argument("--host", default="127.0.0.1")
    hs.add_argument("--port", type=int, default=8765)
    hs.add_argument("--tokens-file", type=Path, help="JSON {token: user}; default: the development token table")
    hd = hsub.add_parser("seed", help="fill the Hub at HF_ENDPOINT with the packaged checkpoints and datasets")
    hd.add_argument("--assets", type=Path, default=Path("assets"), help="folder made by scripts/prepare_assets.py")
    hd.add_argument("--only", nargs="*", help="repo ids to seed (default: all)")


def _push_args(sub) -> None:
    u = sub.add_parser("push", help="push a finished run folder (resumes a failed push)")
    u.add_argument("folder")
    u.add_argument("--repo-id", help="default: hub.repo_id of the run's recipe")
    u.add_argument("--revision", help="branch (default: hub.revision of the recipe)")
    u.add_argument("--public", action="store_true", help="create the repo public (default: the recipe's hub.private)")
    u.add_argument("--tag", help="release tag: a name, 'auto' (the next vN) or 'none' (default: the recipe's hub.tag)")
    u.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip recomputing the test metrics from the downloaded release (default: the recipe's hub.verify)",
    )
    u.add_argument(
        "--evidence",
        type=Path,
        help="evidence folder whose reports go into the card (default: OUTPUT_DIR-evidence if present)",
    )
