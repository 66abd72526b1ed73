"""The ``hubtransfer`` command: train, launch, rank, compare, datasize, strategies, source, eval, predict, push, hub.

Each subcommand is a thin wrapper over the Python API.

User errors (a bad recipe, data or checkpoint) print one clear message and exit with 2;
no traceback, nothing written.
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

from hubtransfer.cli.parser import parser
from hubtransfer.files import RECIPE


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a user can fix: every hubtransfer error, and a missing file."""
    from hubtransfer.errors import HubtransferError

    return (HubtransferError, FileNotFoundError)


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
    tag = hub.tag if args.tag is None else (None if args.tag == "none" else args.tag)
    result = push_folder(
        folder,
        repo_id,
        private=hub.private and not args.public,
        revision=args.revision or hub.revision,
        commit_message=hub.commit_message,
        tag=tag,
    )
    out = result.__dict__
    if hub.verify and args.verify:
        from hubtransfer.run import verified_release

        out["verified"] = verified_release(result)
    print(json.dumps(out))
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


def _update(args) -> int:
    """`train` with the update keys set from the flags (the recipe's own overrides after them)."""
    repo, _, revision = args.parent.rpartition("@") if "@" in args.parent else (args.parent, "", "")
    flags = [f"update.from_model={repo}", *([f"update.from_revision={revision}"] if revision else [])]
    flags += [f"update.method={args.method}"] if args.method else []
    flags += ["update.force=true"] if args.force else []
    args.overrides, args.print_recipe = [*flags, *args.overrides], False
    return _train(args)


def _launch(args) -> int:
    from hubtransfer.cli.launch import launch

    return launch(args)


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
        from hubtransfer.evidence.datasize import DatasizeOptions, datasize

        report = datasize(
            recipe,
            DatasizeOptions(
                fractions=args.fractions,
                seeds=args.seeds,
                seeds_up_to=args.seeds_up_to,
                scratch=not args.no_scratch,
                scratch_fractions=args.scratch_fractions,
                scratch_lr=args.scratch_lr,
                target=args.target,
                min_steps=args.min_steps,
            ),
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
    p = parser()
    # Overrides may come after flags (`train r.yaml --print-recipe train.lr=1e-4`): collect them too.
    args, extra = p.parse_known_args(argv)
    if extra and not (
        args.command in ("train", "launch", "update", "rank", "compare", "datasize", "strategies", "source")
        and all("=" in x and not x.startswith("-") for x in extra)
    ):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    handler = {
        "train": _train,
        "launch": _launch,
        "update": _update,
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
