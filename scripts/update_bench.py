"""Updating a model as data grows, measured: v1 on old data, then v2 on new data by each update method, on real data.

Settings (each v1 -> v2, the shipped recipes with only their data fields changed):
- text-growth: MiniLM on rotten tomatoes, the snippets split in two halves by the sha256 of their text: v1 learns
  half A, v2 gets half B (more of the same).
- text-shift: v1 on rotten tomatoes (film-review snippets, fresh / rotten); v2 on women's clothing reviews
  (recommended / not recommended), a packaged set of another domain with the same two-way label space, mapped by
  update.label_map (a documented constructed shift: no packaged second film-review set with labels exists).
- image-classes: EfficientNet-Lite0 on animal shapes, v1 on bear..dog (5 classes), v2 adds elephant..zebra (the
  other 5; class-incremental, the head grows).

For each setting and seed: v1 once, then v2 by naive, replay, distill, interpolate and joint. Each v2 is measured on
the old test split (v1's) and the new one, with v1 beside it; forgetting = v1's old-test accuracy minus v2's, in
points. The forgetting gate (update.max_forgetting, default 1 point) is what a push would meet.

Run: python scripts/update_bench.py [--settings ...] [--seeds 0 1 2] [--resume] [--write-docs]
Results: results/update/SETTING.json (every run, with the machine); table: docs/updates.md. Until a setting is
complete its runs are saved after each one in results/update/partial/SETTING.json, which --resume continues.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from doc_markers import write_between  # noqa: E402

RESULTS = ROOT / "results" / "update"
DOCS = ROOT / "docs" / "updates.md"
MARKERS = ("<!-- update-table:start -->", "<!-- update-table:end -->")
METHODS = ("naive", "replay", "distill", "interpolate", "joint")
SMOKE = bool(os.environ.get("HUBTRANSFER_BENCH_SMOKE"))
TEXT_RECIPE = ROOT / "recipes" / "text" / "minilm_rotten_tomatoes.yaml"
IMAGE_RECIPE = ROOT / "recipes" / "vision" / "efficientnet_lite0_animal_shapes.yaml"
MINILM = ROOT / "assets" / "all-MiniLM-L6-v2"
EFFNET = ROOT / "assets" / "efficientnet-lite0"


# --------------------------------------------------------------------------- the data of each setting


def _half(text: str) -> str:
    return "A" if hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 0 else "B"


def _csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(rows)
    return path


def rt_halves(work: Path) -> tuple[Path, Path]:
    from hubtransfer.sources.packaged import PACKAGED

    ds = PACKAGED.get("rotten-tomatoes")()
    names = ds.features["label"].names
    rows = [{"text": t, "label": names[y]} for t, y in zip(ds["text"], ds["label"])]
    return tuple(_csv(work / f"rt-{h}.csv", [r for r in rows if _half(r["text"]) == h]) for h in "AB")


def animal_folders(work: Path) -> tuple[Path, Path]:
    """Two image folders (one sub-folder per class): the first five classes, the other five."""
    from hubtransfer.sources.packaged import ANIMAL_NAMES, PACKAGED

    ds = PACKAGED.get("animal-shapes")()
    folders = (work / "animals-v1", work / "animals-v2")
    if not (folders[1] / ANIMAL_NAMES[-1]).is_dir():
        for i, (image, label) in enumerate(zip(ds["image"], ds["label"])):
            target = folders[0 if label < 5 else 1] / ANIMAL_NAMES[label]
            target.mkdir(parents=True, exist_ok=True)
            image.save(target / f"{i:05d}.png")
    return folders


def setting(name: str, work: Path) -> dict:
    """The v1 and v2 recipes (path + overrides) of a setting."""
    sizes = ["data.max_train_samples=96", "data.max_eval_samples=48", "train.epochs=1"] if SMOKE else []
    text = [f"model.id={MINILM}", "data.text_column=text", "data.label_column=label", *sizes]
    if name == "text-growth":
        a, b = rt_halves(work)
        return {"recipe": TEXT_RECIPE, "v1": [*text, f"data.source={a}"], "v2": [*text, f"data.source={b}"]}
    if name == "text-shift":
        return {
            "recipe": TEXT_RECIPE,
            "v1": [f"model.id={MINILM}", "data.source=packaged:rotten-tomatoes", *sizes],
            "v2": [
                f"model.id={MINILM}",
                "data.source=packaged:clothing-reviews-multitask",
                "data.label_column=recommended",
                "data.max_train_samples=4000" if not SMOKE else "data.max_train_samples=96",
                *sizes,
                "update.label_map={'recommended': fresh, 'not recommended': rotten}",
            ],
        }
    if name == "image-classes":
        v1, v2 = animal_folders(work)
        image = [f"model.id={EFFNET}", *sizes]
        return {"recipe": IMAGE_RECIPE, "v1": [*image, f"data.source={v1}"], "v2": [*image, f"data.source={v2}"]}
    raise SystemExit(f"unknown setting {name}; known: text-growth, text-shift, image-classes")


# --------------------------------------------------------------------------- runs


def run_v1(spec: dict, seed: int, out: Path) -> dict:
    from hubtransfer.run import finetune

    started = time.perf_counter()
    result = finetune(
        spec["recipe"], [*spec["v1"], f"train.seed={seed}", f"output_dir={out}", "overwrite_output_dir=true"]
    )
    return {
        "test": result.metrics["test"]["accuracy"],
        "train_seconds": result.run["training"]["train_seconds"],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def run_v2(spec: dict, method: str, seed: int, v1: Path, out: Path) -> dict:
    from hubtransfer.run import finetune
    from hubtransfer.update.versions import Versions, gate

    name, _, fraction = method.partition(":")  # replay:0.25 - method replay, a quarter of v1's examples
    overrides = [*spec["v2"], f"update.from_model={v1}", f"update.method={name}", f"train.seed={seed}"]
    overrides += [f"update.replay_fraction={fraction}"] if fraction else []
    started = time.perf_counter()
    result = finetune(spec["recipe"], [*overrides, f"output_dir={out}", "overwrite_output_dir=true"])
    u = result.run["update"]
    versions = Versions(
        **{k: u[k] for k in ("parent", "parent_sha", "method", "old_test", "new_test", "data", "alpha")}
    )
    return {
        "method": method,
        "seed": seed,
        "old_test": u["old_test"],
        "new_test": u["new_test"],
        "forgetting_points": u["forgetting_points"],
        "average_accuracy": u["average_accuracy"],
        "train_seconds": result.run["training"]["train_seconds"],
        # The learning-rate search trains too (joint searches; an update takes v1's rate): its seconds are a cost of
        # the method, kept apart from the loop's.
        "search_seconds": search_seconds(result.run["training"]),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "alpha": (u.get("alpha") or {}).get("alpha"),
        "gate": gate(versions, 1.0, force=False),
    }


def search_seconds(training: dict) -> float:
    """Seconds the run's learning-rate search trained (0 where it took a rate without one)."""
    return (training.get("lr_search") or {}).get("seconds", 0.0)


def cost(run: dict) -> float:
    """A method's training seconds: the loop's and its learning-rate search's."""
    return run["train_seconds"] + run["search_seconds"]


def summarise(runs: list[dict]) -> list[dict]:
    """Per method: medians over seeds, with min-max, and the time as a share of joint's (training with its search,
    and the loop alone)."""
    rows = []
    joint = [r for r in runs if r["method"] == "joint"]
    joint_time = statistics.median(cost(r) for r in joint) if joint else None
    joint_loop = statistics.median(r["train_seconds"] for r in joint) if joint else None
    for method in dict.fromkeys(r["method"] for r in runs):  # in the order they ran
        rs = [r for r in runs if r["method"] == method]
        med = lambda f, rs=rs: statistics.median(f(r) for r in rs)
        span = lambda f, rs=rs: [min(f(r) for r in rs), max(f(r) for r in rs)]
        rows.append(
            {
                "method": method,
                "seeds": len(rs),
                "old_test_previous": med(lambda r: r["old_test"]["previous"]),
                "old_test": med(lambda r: r["old_test"]["new"]),
                "new_test": med(lambda r: r["new_test"]["new"]),
                "forgetting_points": med(lambda r: r["forgetting_points"]),
                "forgetting_span": span(lambda r: r["forgetting_points"]),
                "average_accuracy": med(lambda r: r["average_accuracy"]),
                "train_seconds": med(lambda r: r["train_seconds"]),
                "search_seconds": med(lambda r: r["search_seconds"]),
                "time_share_of_joint": med(cost) / joint_time if joint_time else None,
                "loop_share_of_joint": med(lambda r: r["train_seconds"]) / joint_loop if joint_loop else None,
                "gate_refused": sum(r["gate"] is not None for r in rs),
            }
        )
    return rows


def table(results: dict) -> str:
    lines = []
    for name, res in results.items():
        lines += [
            f"**{name}** ({res['machine']}; {res['rows'][0]['seeds'] if res['rows'] else 0} seeds, medians; forgetting "
            "min-max):",
            "",
            "| method | old test (v1 -> v2) | new test | forgetting (points) | mean of old and new | train s (loop + "
            "lr search) | share of joint's time (loop alone) | gate refused |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in res["rows"]:
            share = (
                f"{r['time_share_of_joint']:.1%} ({r['loop_share_of_joint']:.1%})"
                if r["time_share_of_joint"] is not None
                else "-"
            )
            lines.append(
                f"| {r['method']} | {r['old_test_previous']:.4f} -> {r['old_test']:.4f} | {r['new_test']:.4f} | "
                f"{r['forgetting_points']:+.2f} ({r['forgetting_span'][0]:+.2f} to {r['forgetting_span'][1]:+.2f}) | "
                f"{r['average_accuracy']:.4f} | {r['train_seconds']:.0f} + {r['search_seconds']:.0f} | {share} | "
                f"{r['gate_refused']}/{r['seeds']} |"
            )
        lines.append("")
    return "\n".join(lines).strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", nargs="*", default=["text-growth", "text-shift", "image-classes"])
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument(
        "--methods",
        nargs="*",
        default=[_method(m) for m in METHODS],
        type=_method,
        help=f"of {', '.join(METHODS)}; replay:F for replay with update.replay_fraction=F",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "update-bench")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs a stopped invocation saved under OUT/partial/ (same machine only) and run the rest",
    )
    p.add_argument("--write-docs", action="store_true", help=f"also write the table into {DOCS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hubtransfer.save.environment import describe_machine

    machine = describe_machine()
    code = _head()  # each run names the commit it measured: the update rules change between invocations
    for name in args.settings:
        spec = setting(name, args.work / "data")
        partial = args.out / "partial" / f"{name}.json"
        runs = _done(partial, machine, args.resume)
        for seed in args.seeds:
            todo = [m for m in args.methods if not any(r["method"] == m and r["seed"] == seed for r in runs)]
            if not todo:
                continue
            v1_dir = args.work / name / f"v1-seed{seed}"
            v1 = run_v1(spec, seed, v1_dir)
            for method in todo:
                out = args.work / name / f"v2-{method.replace(':', '-')}-seed{seed}"
                run = run_v2(spec, method, seed, v1_dir, out)
                runs.append({**run, "v1": v1, "code": code})
                # Saved after every run: a stopped benchmark resumes (--resume) where it stopped.
                save_json(partial, {"setting": name, "machine": machine, "smoke": SMOKE, "runs": runs})
                print(
                    json.dumps({name: {k: run[k] for k in ("method", "seed", "forgetting_points", "average_accuracy")}})
                )
        res = {"setting": name, "machine": machine, "smoke": SMOKE, "runs": runs, "rows": summarise(runs)}
        save_json(args.out / f"{name}.json", res)
        partial.unlink(missing_ok=True)
    text = table(saved_results(args.out))
    if args.write_docs:
        write_between(DOCS, *MARKERS, text)
    print(text)
    return 0


def saved_results(folder: Path) -> dict:
    """Every complete setting saved in ``folder`` (the table shows them all, whichever invocation measured them)."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        res = json.loads(path.read_text(encoding="utf-8"))
        # Rows from the runs, as the table's rules are now (the runs are the measurement; rows are its summary).
        out[res["setting"]] = res | {"machine": _machine_line(res["machine"]), "rows": summarise(res["runs"])}
    return out


def _done(partial: Path, machine: dict, resume: bool) -> list[dict]:
    """The runs a stopped invocation saved, where --resume asks for them; figures of two machines never mix."""
    if not resume or not partial.exists():
        return []
    saved = json.loads(partial.read_text(encoding="utf-8"))
    if saved["machine"] != machine or saved["smoke"] != SMOKE:
        raise SystemExit(
            f"--resume: {partial} was measured on {_machine_line(saved['machine'])} (smoke {saved['smoke']}), this is "
            f"{_machine_line(machine)} (smoke {SMOKE}); figures of two machines are not mixed. Delete it to start over"
        )
    print(f"resuming: {len(saved['runs'])} runs from {partial}")
    return saved["runs"]


def save_json(path: Path, res: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


def _method(text: str) -> str:
    """A method as the runs record it: plain 'replay' names its fraction (the default changes with measurements, and
    a row's label must say what it ran)."""
    if text == "replay":
        from hubtransfer.recipe.sections import UpdateSpec

        return f"replay:{UpdateSpec.model_fields['replay_fraction'].default}"
    name, colon, fraction = text.partition(":")
    try:
        ok = name in METHODS and (not colon or (name == "replay" and 0 < float(fraction) <= 1))
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(METHODS)}, or replay:F with 0 < F <= 1")
    return text


def _head() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "hubtransfer"]).returncode
    return out.stdout.strip() + ("+changes" if dirty else "") if out.returncode == 0 else "unknown"


def _machine_line(m: dict) -> str:
    flags = "/".join(m.get("bf16_flags") or []) or "no bf16 flags"
    return f"{m['cpu']} ({flags}), {m['cores']} cores"


if __name__ == "__main__":
    raise SystemExit(main())
