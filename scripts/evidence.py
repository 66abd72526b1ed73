"""Transfer evidence on the real assets: the figures and plots of the README's "Transfer evidence" section.

Run: python scripts/evidence.py [--only compare-text datasize-text ... card-text] [--work runs/evidence]
Each case calls the same function as its CLI command (``hubtransfer compare | datasize | strategies``)
on a shipped recipe, with the packaged checkpoint folders and data (no Hub needed). The runs go to
``--work`` (large: every run keeps its model), and the reports (json, md, png) are copied to
``results/evidence/<case>/``. Re-running reuses every finished run, so an interrupted call resumes.
``card-text`` trains the recipe the text strategy sweep recommended (its evidence folder holds the text
reports), pushes it to a local Hub started for the purpose and saves the model card read back from it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT = (
    "recipes/text/minilm_rotten_tomatoes.yaml",
    ["model.id=assets/all-MiniLM-L6-v2", "data.source=packaged:rotten-tomatoes"],
)
IMAGE = (
    "recipes/vision/efficientnet_lite0_animal_shapes.yaml",
    ["model.id=assets/efficientnet-lite0", "data.source=packaged:animal-shapes"],
)

# case -> (recipe, overrides, command, keyword arguments, evidence folder under --work)
CASES = {
    "compare-text": (TEXT, ["data.max_train_samples=4000"], "compare", {"eval_every": 10}, "text-4000"),
    "compare-image": (IMAGE, ["data.max_train_samples=3000"], "compare", {"eval_every": 20}, "image-3000"),
    "strategies-text": (TEXT, ["data.max_train_samples=4000"], "strategies", {}, "text-4000"),
    "datasize-text": (TEXT, [], "datasize", {"target": 0.78}, "text-full"),
}


def run_case(name: str, work: Path) -> dict:
    from hubtransfer.job import load_recipe

    (path, base), extra, command, kwargs, folder = CASES[name]
    # Relative paths (run from the repository root): the recommended recipe written beside the report is committed.
    recipe = load_recipe(path, [*base, *extra, f"output_dir={work / folder}/model"])
    report_dir = (
        work / folder / "model-evidence"
    )  # the recipe's default evidence folder: a run of it carries the reports

    won = work / "text-4000" / "model-evidence" / "compare.json"
    if command == "datasize" and won.is_file() and "scratch_lr" not in kwargs:
        import json

        kwargs = {
            **kwargs,
            "scratch_lr": json.loads(won.read_text())["scratch"]["lr"],
        }  # the rate that won the text comparison
    if command == "compare":
        from hubtransfer.evidence.compare import compare as fn
    elif command == "datasize":
        from hubtransfer.evidence.datasize import datasize as fn
    else:
        from hubtransfer.evidence.strategy_sweep import sweep_strategies as fn
    started = time.perf_counter()
    report = fn(recipe, report_dir=report_dir, **kwargs)
    report_name = command
    out = ROOT / "results" / "evidence" / name
    out.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".md", ".png"):
        shutil.copyfile(report_dir / f"{report_name}{suffix}", out / f"{report_name}{suffix}")
    if command == "strategies":
        shutil.copyfile(report_dir / "recommended.yaml", out / "recommended.yaml")
    print(f"{name}: {time.perf_counter() - started:.0f} s -> {out}", flush=True)
    return report


def card_case(work: Path) -> None:
    """Train the recipe the strategy sweep recommended, push it to the local Hub, and read its card back from there."""
    import json

    from huggingface_hub import hf_hub_download

    from hubtransfer.job import load_recipe
    from hubtransfer.run import finetune

    folder = ROOT / "results" / "evidence" / "strategies-text"
    repo_id = "local-user/minilm-rotten-tomatoes-evidence"
    recipe = load_recipe(
        folder / "recommended.yaml", ["overwrite_output_dir=true", "hub.push=true", f"hub.repo_id={repo_id}"]
    )
    result = finetune(recipe)
    sweep = json.loads((folder / "strategies.json").read_text())
    row = next(r for r in sweep["runs"] if r["strategy"] == sweep["recommended"])
    card = Path(hf_hub_download(repo_id, "README.md")).read_text(encoding="utf-8")
    out = ROOT / "results" / "evidence" / "card-text"
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(card, encoding="utf-8")
    test = result.metrics["test"][sweep["metric"]]
    print(
        f"card-text: recommended '{sweep['recommended']}' trained again: test {sweep['metric']} {test:.4f} (sweep's "
        f"run {row['test']:.4f}); "
        f"pushed to {result.run['pushed']['url']}; card from the Hub has 'Transfer evidence': "
        f"{'## Transfer evidence' in card} -> {out}"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", choices=[*CASES, "card-text"], default=[*CASES, "card-text"])
    p.add_argument("--work", type=Path, default=Path("runs") / "evidence", help="relative to the repository root")
    args = p.parse_args(argv)
    os.chdir(ROOT)
    server = None
    if "card-text" in args.only:  # before huggingface_hub is imported: it reads the endpoint once
        import tempfile

        from hubtransfer.localhub.local import configure_clients, start_hub

        args.work.mkdir(parents=True, exist_ok=True)
        server, endpoint = start_hub(Path(tempfile.mkdtemp(prefix="hub-", dir=args.work)))
        configure_clients(endpoint, Path(tempfile.mkdtemp(prefix="hf-home-", dir=args.work)))
    try:
        for name in args.only:
            if name == "card-text":
                card_case(args.work)
                continue
            report = run_case(name, args.work)
            for line in report["summary"]:
                print(f"  - {line}")
    finally:
        if server is not None:
            from hubtransfer.localhub.local import stop_hub

            stop_hub(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
