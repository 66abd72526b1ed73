"""Develop a source model, push it, transfer it, and measure whether the source step helped (README figures).

Run: python scripts/source_models.py [--only text vision] [--work runs/source]

- text: MiniLM further pretrained with masked-LM on 1,500 unlabeled movie reviews
  (recipes/text/minilm_movie_reviews_mlm.yaml), pushed to a local Hub as
  ``hubtransfer-local/all-MiniLM-L6-v2-movie-reviews``; then recipes/text/minilm_dapt_rotten_tomatoes.yaml
  from that source model and from the original all-MiniLM-L6-v2, same recipe and budget
  (``hubtransfer.evidence.source_effect``), at 1,000 training examples (3 seeds) and all of them.
- vision: EfficientNet-Lite0 (ImageNet) fine-tuned on animal shapes (the shipped recipe), pushed as
  ``hubtransfer-local/efficientnet-lite0-animal-shapes``; then recipes/vision/efficientnet_animal_shapes_to_mnist.yaml
  from it and from the ImageNet checkpoint, at 400 digits (3 seeds) and all of them.

A local Hub is started for the run (its repos persist under ``--work``), seeded with the real
checkpoints and data; the target recipes pull the source models back from it by repo id. Finished
runs are reused, so an interrupted call resumes. Reports go to ``results/source/<case>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hubtransfer.localhub.local import configure_clients, start_hub, stop_hub  # noqa: E402  (stdlib only)

os.environ.setdefault(
    "HUBTRANSFER_ASSETS", str(ROOT / "assets")
)  # packaged:movie-reviews reads the extracted reviews there

# case -> (source recipe, its overrides, target recipe, original checkpoint, sizes, seeds, seeds_up_to)
CASES = {
    "text": (
        "recipes/text/minilm_movie_reviews_mlm.yaml",
        [],
        "recipes/text/minilm_dapt_rotten_tomatoes.yaml",
        "sentence-transformers/all-MiniLM-L6-v2",
        [1000, 10**9],
        3,
        1000,
    ),
    "vision": (
        "recipes/vision/efficientnet_lite0_animal_shapes.yaml",
        ["hub.repo_id=hubtransfer-local/efficientnet-lite0-animal-shapes", "hub.private=false"],
        "recipes/vision/efficientnet_animal_shapes_to_mnist.yaml",
        "hubtransfer-local/efficientnet-lite0",
        [400, 10**9],
        3,
        400,
    ),
}


def develop_source(path: str, overrides: list[str], out: Path) -> tuple[Path, dict]:
    """Train the source recipe into ``out`` (reusing a finished run of it) and push it to its repo."""
    from hubtransfer.job import load_recipe
    from hubtransfer.push.push import push_folder
    from hubtransfer.run import finetune
    from hubtransfer.variants import finished, read_run

    recipe = load_recipe(ROOT / path, [*overrides, f"output_dir={out}", "overwrite_output_dir=true"])
    if not finished(out, recipe):
        finetune(recipe)
    pushed = push_folder(out, recipe.hub.repo_id, private=recipe.hub.private)
    run, _ = read_run(out)
    return out, {
        "repo_id": recipe.hub.repo_id,
        "url": pushed.url,
        "test": run["metrics"]["test"],
        "train_seconds": run["training"]["train_seconds"],
        "sizes": run["data"]["sizes"],
    }


def run_case(name: str, work: Path) -> dict:
    from hubtransfer.evidence.source_effect import source_effect
    from hubtransfer.job import load_recipe

    source_path, overrides, target, original, sizes, seeds, seeds_up_to = CASES[name]
    started = time.perf_counter()
    source_dir, source = develop_source(source_path, overrides, work / name / "source-model")
    recipe = load_recipe(ROOT / target, [f"output_dir={work / name / 'target'}"])
    report_dir = work / name / "evidence"
    report = source_effect(
        recipe,
        original,
        sizes=sizes,
        seeds=seeds,
        seeds_up_to=seeds_up_to,
        report_dir=report_dir,
        source_run=source_dir,
    )
    out = ROOT / "results" / "source" / name
    out.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".md", ".png"):
        shutil.copyfile(report_dir / f"source{suffix}", out / f"source{suffix}")
    (out / "source_model.json").write_text(json.dumps(source, indent=2), encoding="utf-8")
    return {
        "case": name,
        "source": source,
        "summary": report["summary"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", choices=sorted(CASES))
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "source")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    server, endpoint = start_hub(args.work / "hub")
    try:
        configure_clients(endpoint, Path(tempfile.mkdtemp(prefix="hf-home-", dir=args.work)))
        from huggingface_hub import HfApi

        from hubtransfer.push.seed import seed

        seed(HfApi(), ROOT / "assets")
        for name in args.only or CASES:
            print(json.dumps(run_case(name, args.work), indent=2), flush=True)
    finally:
        stop_hub(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
