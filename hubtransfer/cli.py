"""The ``hubtransfer`` command: train, rank, compare, datasize, strategies, source, eval, predict, push, hub.

Each subcommand is a thin wrapper over the Python API.

User errors (a bad recipe, data or checkpoint) print one clear message and exit with 2;
no traceback, nothing written.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path

from hubtransfer.files import RECIPE

DEFAULT_HUB_ROOT = Path.home() / ".cache" / "hubtransfer" / "hub"


def _user_errors() -> tuple[type[BaseException], ...]:
    from hubtransfer.errors import (
        DataError,
        ImageDataError,
        ModelSourceError,
        OutputDirError,
        ProcessorError,
        PushError,
        RecipeError,
        StrategyError,
        TrainingError,
    )

    return (
        RecipeError,
        DataError,
        ModelSourceError,
        OutputDirError,
        ImageDataError,
        ProcessorError,
        StrategyError,
        TrainingError,
        PushError,
        FileNotFoundError,
    )


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubtransfer", description="Transfer learning from Hub checkpoints, by recipe.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="fine-tune by a recipe",
        description="Fine-tune by a YAML recipe; key.sub=value overrides follow it.",
    )
    t.add_argument("recipe", help="YAML recipe (see recipes/)")
    t.add_argument("overrides", nargs="*", help="key.sub=value, e.g. train.lr=1e-4 strategy=head")
    t.add_argument("--print-recipe", action="store_true", help="print the resolved recipe with every default and exit")

    e = sub.add_parser("eval", help="evaluate a saved run on a split of its data")
    e.add_argument("folder", help="output_dir of a run")
    e.add_argument("--split", default="test", choices=["train", "validation", "test"])

    r = sub.add_parser("predict", help="labels + scores for texts or image files")
    r.add_argument("folder", help="output_dir of a run (or any saved classifier folder)")
    r.add_argument("inputs", nargs="*", help="texts, or image paths for an image model")
    r.add_argument("--file", help="a text file with one input per line")
    r.add_argument("--top-k", type=int, default=1)
    k = sub.add_parser(
        "rank",
        help="rank candidate checkpoints on the recipe's data before fine-tuning",
        description=(
            "Score candidate checkpoints (LogME, H-score, kNN) on frozen features of the recipe's training data."
        ),
    )
    k.add_argument("recipe", help="YAML recipe: its task, data and budget")
    k.add_argument("overrides", nargs="*", help="key.sub=value applied to the recipe")
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

    c = sub.add_parser(
        "compare",
        help="transfer evidence: the recipe pretrained vs from scratch (+ a classical baseline)",
        description="Train the recipe from pretrained weights and from random init (a small learning-rate search "
        "for the latter) on one evaluation grid from step 0; report start, slope and asymptote.",
    )
    c.add_argument("recipe")
    c.add_argument("overrides", nargs="*", help="key.sub=value applied to the recipe")
    c.add_argument(
        "--scratch-lrs",
        nargs="+",
        type=float,
        help="learning rates tried from scratch (default: the recipe's x1, x3, x10)",
    )
    c.add_argument("--eval-every", type=_at_least(1), help="evaluation interval in steps (default: a tenth of the run)")
    c.add_argument("--out", type=Path, help="evidence folder (default: OUTPUT_DIR-evidence)")

    d = sub.add_parser(
        "datasize",
        help="transfer evidence: metric vs training-set size, with a saturating fit",
        description="Train the recipe on nested fractions of its training split, pretrained and from scratch.",
    )
    d.add_argument("recipe")
    d.add_argument("overrides", nargs="*", help="key.sub=value applied to the recipe")
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

    g = sub.add_parser(
        "strategies",
        help="transfer evidence: head / top:K / full / lp-ft compared, the best written as a recipe",
        description="Train the recipe under several strategies and recommend the best by validation.",
    )
    g.add_argument("recipe")
    g.add_argument("overrides", nargs="*", help="key.sub=value applied to the recipe")
    g.add_argument("--strategies", nargs="+", help="default: head, top:1, top:2, top:(blocks/2), full, lp-ft")
    g.add_argument("--write-recipe", type=Path, help="also write the recommended recipe here")
    g.add_argument("--out", type=Path, help="evidence folder (default: OUTPUT_DIR-evidence)")

    o = sub.add_parser(
        "source",
        help="transfer evidence: the recipe from a developed source model vs from the original checkpoint",
        description="Train the recipe (whose model.id is a source model, e.g. after masked-LM on in-domain text) "
        "and the same recipe from --original, at each size and seed; report whether the source step helped.",
    )
    o.add_argument("recipe")
    o.add_argument("overrides", nargs="*", help="key.sub=value applied to the recipe")
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

    u = sub.add_parser("push", help="push a finished run folder (resumes a failed push)")
    u.add_argument("folder")
    u.add_argument("--repo-id", help="default: hub.repo_id of the run's recipe")
    u.add_argument("--revision", help="branch (default: hub.revision of the recipe)")
    u.add_argument("--public", action="store_true", help="create the repo public (default: the recipe's hub.private)")
    u.add_argument(
        "--evidence",
        type=Path,
        help="evidence folder whose reports go into the card (default: OUTPUT_DIR-evidence if present)",
    )
    return p


def _hub(args) -> int:
    if args.hub_command == "serve":
        from hubtransfer.localhub.server import serve

        tokens = json.loads(args.tokens_file.read_text()) if args.tokens_file else None
        print(
            f"local Hub on http://{args.host}:{args.port} (root {args.root}); clients: "
            f"HF_ENDPOINT=http://{args.host}:{args.port} HF_HUB_DISABLE_XET=1",
            flush=True,
        )
        serve(args.root, args.host, args.port, tokens=tokens)
        return 0
    from huggingface_hub import HfApi

    from hubtransfer.push.seed import seed

    for repo in seed(HfApi(), args.assets, only=args.only):
        print(f"seeded {repo}")
    return 0


def _push(args) -> int:
    from hubtransfer.job import load_recipe
    from hubtransfer.push.push import push_folder

    folder = Path(args.folder)
    hub = load_recipe(folder / RECIPE).hub
    repo_id = args.repo_id or hub.repo_id
    if not repo_id:
        raise FileNotFoundError(f"no repo id: pass --repo-id or set hub.repo_id in {folder / 'recipe.yaml'}")
    attached = []
    if args.evidence:
        from hubtransfer.card.evidence import attach

        if not args.evidence.is_dir():
            raise FileNotFoundError(
                f"--evidence: '{args.evidence}' is not a folder; pass the folder `hubtransfer compare` wrote (--out)"
            )
        attached = attach(folder, args.evidence)
        if not attached:
            raise FileNotFoundError(
                f"--evidence: '{args.evidence}' holds no compare.json, datasize.json or strategies.json"
            )
    if repo_id != hub.repo_id or attached:  # the card names the repo and shows the evidence: rebuild it
        from hubtransfer.card.card import write_card
        from hubtransfer.files import RUN_MARKER

        facts = json.loads((folder / RUN_MARKER).read_text()).get("card", {})
        write_card(folder, repo_id=repo_id, **facts)
    result = push_folder(
        folder,
        repo_id,
        private=hub.private and not args.public,
        revision=args.revision or hub.revision,
        commit_message=hub.commit_message,
    )
    print(json.dumps(result.__dict__))
    return 0


def _train(args) -> int:
    from hubtransfer.job import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.print_recipe:
        print(recipe.to_yaml(), end="")
        return 0
    from hubtransfer.run import finetune

    result = finetune(recipe)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        PartialState().destroy_process_group()
        return 0
    PartialState().destroy_process_group()
    print(json.dumps({"test": result.metrics["test"], "output_dir": str(result.output_dir)}, indent=2))
    return 0


def _rank(args) -> int:
    from hubtransfer.job import load_recipe
    from hubtransfer.select.rank import candidate_recipe, rank

    recipe = load_recipe(args.recipe, args.overrides)
    out = args.out or Path(recipe.output_dir + "-rank")
    result = rank(
        recipe,
        args.candidates,
        max_samples=args.max_samples,
        report_dir=out,
        validate=args.validate,
        validate_overrides=args.validate_override,
    )
    print(result.table())
    print(
        f"\nranked {len(result.candidates)} candidates on {result.candidates[0].n} examples in "
        f"{result.rank_seconds:.1f} s; report: {out}"
    )
    if result.validation:
        v = result.validation
        print(
            f"validation: fine-tuning took {v['finetune_seconds']:.0f} s; Kendall tau (score vs test {v['metric']}): "
            f"{json.dumps(v['kendall_tau'])}"
        )
        print(
            f"ranking cost: {result.rank_seconds / v['finetune_seconds']:.1%} of fine-tuning the candidates by the "
            "recipe"
        )
    if args.write_recipe and result.winner:
        args.write_recipe.parent.mkdir(parents=True, exist_ok=True)
        args.write_recipe.write_text(
            "# Written by `hubtransfer rank`: best pretrained candidate by "
            f"LogME.\n{candidate_recipe(recipe, result.winner).to_yaml()}",
            encoding="utf-8",
        )
        print(f"recipe for {result.winner}: {args.write_recipe}")
    return 0


def _evidence(args) -> int:
    from hubtransfer.job import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.command == "compare":
        from hubtransfer.evidence.compare import compare

        report = compare(recipe, scratch_lrs=args.scratch_lrs, eval_every=args.eval_every, report_dir=args.out)
    elif args.command == "datasize":
        from hubtransfer.evidence.datasize import datasize

        report = datasize(
            recipe,
            fractions=args.fractions,
            seeds=args.seeds,
            seeds_up_to=args.seeds_up_to,
            scratch=not args.no_scratch,
            scratch_fractions=args.scratch_fractions,
            scratch_lr=args.scratch_lr,
            target=args.target,
            min_steps=args.min_steps,
            report_dir=args.out,
        )
    elif args.command == "source":
        from hubtransfer.evidence.source_effect import source_effect

        report = source_effect(
            recipe,
            args.original,
            sizes=args.sizes,
            seeds=args.seeds,
            seeds_up_to=args.seeds_up_to,
            min_steps=args.min_steps,
            report_dir=args.out,
            source_run=args.source_run,
        )
    else:
        from hubtransfer.evidence.strategy_sweep import sweep_strategies

        report = sweep_strategies(
            recipe, strategies=args.strategies, report_dir=args.out, write_recipe=args.write_recipe
        )
    from hubtransfer.evidence import default_dir

    print(report["table"])
    print()
    for line in report["summary"]:
        print(f"- {line}")
    print(f"\nreport: {(args.out or default_dir(recipe)) / args.command}.md (+ .json, .png)")
    return 0


def _eval(args) -> int:
    from hubtransfer.inference import evaluate_saved

    out = evaluate_saved(args.folder, args.split)
    print(json.dumps({args.split: out["metrics"], "n": out["n"]}, indent=2))
    return 0


def _predict(args) -> int:
    from hubtransfer.inference import predict

    inputs = list(args.inputs)
    if args.file:
        inputs += [
            line.rstrip("\n") for line in Path(args.file).read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    if not inputs:
        raise FileNotFoundError("predict needs inputs: texts / image paths as arguments, or --file")
    for item, pred in zip(inputs, predict(args.folder, inputs, top_k=args.top_k)):
        print(json.dumps({"input": item, "prediction": pred}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come after flags (`train r.yaml --print-recipe train.lr=1e-4`): collect them too.
    args, extra = parser.parse_known_args(argv)
    if extra and not (
        args.command in ("train", "rank", "compare", "datasize", "strategies", "source")
        and all("=" in x and not x.startswith("-") for x in extra)
    ):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    handler = {
        "train": _train,
        "rank": _rank,
        "compare": _evidence,
        "datasize": _evidence,
        "strategies": _evidence,
        "source": _evidence,
        "eval": _eval,
        "predict": _predict,
        "hub": _hub,
        "push": _push,
    }[args.command]
    try:
        return handler(args)
    except _user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        print(
            f"error: no space left on device while writing ({e.filename or 'output'}); free some space or set "
            "output_dir on another disk. Checkpoints already written are kept and the same command resumes",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
