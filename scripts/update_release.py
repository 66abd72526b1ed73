"""Releases on real data, through a local Hub: v1 pushed and tagged, v2 trained from v1's tag and pushed, then both
pulled back by their tags into fresh caches.

1. Start a local Hub (unless ``HF_ENDPOINT`` names one) and seed it with the packaged checkpoints.
2. v1: the MiniLM recipe on half A of rotten tomatoes (the snippets split by the sha256 of their text, as in
   ``scripts/update_bench.py``), pushed to ``local-user/minilm-rt-releases``: tag v1.
3. v2: ``update.from_model`` = that repo at ``v1``, method ``replay``, on half B; the forgetting gate decides the
   push (tag v2).
4. After v2 is pushed: each tag downloaded into a fresh cache, its test metrics recomputed from those weights
   (``hubtransfer eval`` in a fresh process) and compared with the run's record and the card's model-index; the
   stock client lists the tags and downloads a file by tag.

Run: python scripts/update_release.py   (results: results/update_release.json, with the machine)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from update_bench import rt_halves, save_json  # noqa: E402  (scripts/; imports nothing heavy at module level)

from hubtransfer.localhub.local import local_hub  # noqa: E402  (stdlib only)

REPO_ID = "local-user/minilm-rt-releases"
RECIPE = ROOT / "recipes" / "text" / "minilm_rotten_tomatoes.yaml"
OUT = ROOT / "results" / "update_release.json"  # beside results/update/, whose files are the benchmark's settings
SMOKE = bool(os.environ.get("HUBTRANSFER_BENCH_SMOKE"))


def _train(overrides: list[str], out: Path) -> dict:
    from hubtransfer.run import finetune

    sizes = ["data.max_train_samples=96", "data.max_eval_samples=48", "train.epochs=1"] if SMOKE else []
    started = time.perf_counter()
    result = finetune(
        RECIPE,
        [
            "model.id=sentence-transformers/all-MiniLM-L6-v2",
            "data.text_column=text",
            "data.label_column=label",
            *sizes,
            *overrides,
            f"hub.repo_id={REPO_ID}",
            "hub.push=true",
            f"output_dir={out}",
            "overwrite_output_dir=true",
        ],
    )
    pushed = result.run["pushed"]
    return {
        "test": result.metrics["test"],
        "tag": pushed["tag"],
        "commit": pushed["commit"],
        "verified_at_push": pushed.get("verified"),
        "update": result.run.get("update"),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _stock_client(tags: list[str], cache: Path) -> dict:
    """What a stock huggingface_hub client sees: the tags and their commits, and config.json by tag."""
    from huggingface_hub import HfApi, hf_hub_download

    listed = {t.name: t.target_commit for t in HfApi().list_repo_refs(REPO_ID).tags}
    downloads = {}
    for name in tags:
        path = hf_hub_download(REPO_ID, "config.json", revision=name, cache_dir=str(cache))
        downloads[name] = Path(path).parent.name  # the snapshot folder: the commit the tag resolved to
    return {"tags": listed, "config_snapshot_by_tag": downloads}


def run(work: Path) -> dict:
    from huggingface_hub import HfApi

    from hubtransfer.push.seed import seed
    from hubtransfer.push.verify import verify_release
    from hubtransfer.save.environment import describe_machine

    list(seed(HfApi(), ROOT / "assets"))
    half_a, half_b = rt_halves(work / "data")
    print("== v1: half A", flush=True)
    v1 = _train([f"data.source={half_a}"], work / "v1")
    print(f"== v1 pushed as {v1['tag']} ({v1['commit'][:8]}): test {json.dumps(v1['test'])}", flush=True)
    print("== v2: half B, updated from v1 by replay", flush=True)
    # Smoke runs (96 examples, one epoch) forget at random: their gate is opened so the code path still runs.
    gate = ["update.max_forgetting=100"] if SMOKE else []
    v2 = _train(
        [f"data.source={half_b}", f"update.from_model={REPO_ID}", f"update.from_revision={v1['tag']}", *gate],
        work / "v2",
    )
    print(f"== v2 pushed as {v2['tag']} ({v2['commit'][:8]}): test {json.dumps(v2['test'])}", flush=True)
    pulled = {}
    for name, release in (("v1", v1), ("v2", v2)):
        check = verify_release(REPO_ID, release["tag"], cache_dir=work / f"fresh-{name}")
        pulled[name] = {**check, "equal_to_run": check["recomputed"] == release["test"]}
        print(f"== {name} pulled back by its tag: recomputed = recorded = card: {check['equal']}", flush=True)
    pushed = {v1["tag"]: v1["commit"], v2["tag"]: v2["commit"]}
    client = _stock_client(list(pushed), work / "fresh-stock")
    return {
        "machine": describe_machine(),
        "smoke": SMOKE,
        "repo_id": REPO_ID,
        "v1": v1,
        "v2": v2,
        "pulled_after_v2": pulled,
        "stock_client": client,
        "tags_resolve_to_pushed_commits": client["tags"] == pushed == client["config_snapshot_by_tag"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "update-release")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    with local_hub(args.work):
        res = run(args.work)
    save_json(args.out, res)
    ok = all(x["equal"] and x["equal_to_run"] for x in res["pulled_after_v2"].values())
    ok = ok and res["tags_resolve_to_pushed_commits"]
    print(json.dumps({"all_equal": ok, "tags": res["stock_client"]["tags"]}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
