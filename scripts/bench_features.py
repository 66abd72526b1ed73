"""Head-only training from cached backbone features vs re-running the frozen backbone every epoch.

Run: python scripts/bench_features.py [--case text image] [--epochs 10] [--repeats 3]
Both sides run the same head recipe (real checkpoint, real data, the recipe's precision) through
``hubtransfer.finetune``; the only difference is ``train.cache_features``. The cached side starts
from an empty cache, so its feature passes over every split count in its time. Prints training
seconds (the loop without evaluations, plus the cached side's feature passes), whole-run wall
seconds (imports, data, tokenising / image decoding, model load, evaluation included), test
accuracy and the speed-ups (uncached / cached), as medians (min-max) over the repeats, the two sides
alternating inside each; the JSON names the machine. Training time counts,
on the cached side, the pass that makes the training features; a second column adds the
validation / test passes too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = {
    "text": (
        "recipes/text/minilm_rotten_tomatoes_head.yaml",
        ["model.id=assets/all-MiniLM-L6-v2", "data.source=packaged:rotten-tomatoes"],
    ),
    "image": (
        "recipes/vision/efficientnet_lite0_animal_shapes_head.yaml",
        ["model.id=assets/efficientnet-lite0", "data.source=packaged:animal-shapes"],
    ),
}


def one(case: str, cached: bool, epochs: int, work: Path) -> dict:
    from hubtransfer.run import finetune

    recipe, overrides = CASES[case]
    os.environ["HUBTRANSFER_CACHE"] = tempfile.mkdtemp(dir=work)  # cold cache every time
    smoke = (
        ["data.max_train_samples=96", "data.max_eval_samples=64"] if os.environ.get("HUBTRANSFER_BENCH_SMOKE") else []
    )
    started = time.perf_counter()
    result = finetune(
        ROOT / recipe,
        [
            *overrides,
            *smoke,
            f"train.epochs={epochs}",
            f"train.cache_features={str(cached).lower()}",
            "train.checkpoint_every=null",
            f"output_dir={work}/{case}-{cached}",
            "overwrite_output_dir=true",
        ],
    )
    t = result.run["training"]
    features = t.get("features") or {}
    # Training time: the loop's, evaluations excluded, plus on the cached side the pass that makes the training
    # features. The validation / test passes are evaluation, like the uncached side's per-epoch validations,
    # which its time leaves out; "all passes" adds them to the cached side anyway.
    cached = bool(features.get("cached"))
    training = t["train_seconds"] + (features["extract_seconds_by_split"]["train"] if cached else 0.0)
    all_passes = t["train_seconds"] + (features["extract_seconds"] if cached else 0.0)
    return {
        "seconds": time.perf_counter() - started,
        "training_seconds": training,
        "all_passes_seconds": all_passes,
        "accuracy": result.metrics["test"]["accuracy"],
        "features": features,
        "precision": t["precision"],
    }


def main(argv=None) -> int:
    from hubtransfer.save.environment import describe_machine

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", nargs="+", default=["text", "image"], choices=list(CASES))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="alternations of the two sides (at least 3)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench_features.json")
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error(f"--repeats: at least 3 alternations give a median and a spread, got {args.repeats}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.case:
            runs = {True: [], False: []}
            for _ in range(args.repeats):
                for cached in (False, True):  # alternate so that machine noise hits both sides
                    runs[cached].append(one(case, cached, args.epochs, Path(tmp)))
            med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
            trn = {k: statistics.median(r["training_seconds"] for r in v) for k, v in runs.items()}
            allp = {k: statistics.median(r["all_passes_seconds"] for r in v) for k, v in runs.items()}
            acc = {k: statistics.median(r["accuracy"] for r in v) for k, v in runs.items()}
            rows.append(
                {
                    "case": case,
                    "recipe": CASES[case][0],
                    "epochs": args.epochs,
                    "repeats": args.repeats,
                    "precision": runs[True][0]["precision"],
                    "uncached_s": round(med[False], 1),
                    "cached_s": round(med[True], 1),
                    "speedup": round(med[False] / med[True], 2),
                    "uncached_acc": round(acc[False], 4),
                    "cached_acc": round(acc[True], 4),
                    "uncached_training_s": round(trn[False], 1),
                    "cached_training_s": round(trn[True], 1),
                    "training_speedup": round(trn[False] / trn[True], 2),
                    "cached_all_passes_s": round(allp[True], 1),
                    "all_passes_speedup": round(allp[False] / allp[True], 2),
                    "accuracy_gap_points": round(100 * (acc[True] - acc[False]), 2),
                    "feature_pass_s": runs[True][0]["features"]["extract_seconds"],
                    "training_s_min_max": {
                        side: [
                            round(min(r["training_seconds"] for r in runs[c])),
                            round(max(r["training_seconds"] for r in runs[c])),
                        ]
                        for side, c in (("uncached", False), ("cached", True))
                    },
                }
            )
    machine = describe_machine()
    print(
        f"{machine['cpu']} ({'/'.join(machine['bf16_flags']) or 'no bf16 flags'}), {machine['torch_threads']} threads"
    )
    print(
        "| case | epochs | precision | training: backbone every epoch | training: cached (train pass + head) | "
        "speed-up | cached incl. val/test passes | speed-up | whole run: uncached / cached | speed-up | "
        "test acc (uncached / cached) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['epochs']} | {r['precision']} | {r['uncached_training_s']} s | "
            f"{r['cached_training_s']} s | {r['training_speedup']}x | "
            f"{r['cached_all_passes_s']} s | {r['all_passes_speedup']}x | {r['uncached_s']} s / {r['cached_s']} s | "
            f"{r['speedup']}x | "
            f"{r['uncached_acc']:.4f} / {r['cached_acc']:.4f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
