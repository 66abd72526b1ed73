"""The shipped recipes before and after the data-driven defaults: test accuracy and wall time, the two code versions
alternating inside one invocation on one machine.

Run: python scripts/shipped_time.py [--before 3458cd8] [--repeats 3] [--only minilm-full effnet-full] [--write-docs]
     python scripts/shipped_time.py --table-only [--write-docs]   # the table of the saved results, nothing run

The "before" side is a git worktree of the given commit (the last one before `auto` learning rates, epochs and
pooling; its recipes fixed lr, epochs and head). Each side runs ``scripts/results_table.py --only NAME`` of its own
tree in a subprocess (its local Hub, the real checkpoint and data), so each side's wall time is the whole run as a
user waits for it: the Hub pull, the learning-rate search where there is one, training, the test pass, the
classical baseline where there is one. The order of the two sides swaps every repeat. Results (every run, medians,
min-max, the after/before ratio of the medians, the machine): results/user_data/shipped_time.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
OUT = ROOT / "results" / "user_data" / "shipped_time.json"
CASES = ("minilm-full", "effnet-full")
BEFORE = "3458cd8"  # the parent of the first data-driven-defaults commit (36c40fe)
DOCS = ROOT / "docs" / "user-data.md"
MARKERS = ("<!-- shipped-time:start -->", "<!-- shipped-time:end -->")


def worktree(rev: str, parent: Path) -> Path:
    """A detached checkout of ``rev`` that sees this tree's assets (checkpoints and data are not in git)."""
    tree = parent / f"before-{rev}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True)
    (tree / "assets").symlink_to(ROOT / "assets")
    return tree


def run_side(tree: Path, name: str, scratch: Path) -> dict:
    out = scratch / f"{tree.name}-{name}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_ENDPOINT", None)  # each side starts and seeds its own local Hub
    subprocess.run(
        [sys.executable, "scripts/results_table.py", "--only", name, "--out", str(out)], cwd=tree, env=env, check=True
    )
    row = json.loads(out.read_text())[name]
    return {k: row.get(k) for k in ("seconds", "train_seconds", "steps", "lr", "precision")} | {
        "accuracy": row["test"]["accuracy"]
    }


def summarise(runs: list[dict]) -> dict:
    def stat(key: str) -> dict:
        xs = [r[key] for r in runs if r.get(key) is not None]
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)} if xs else {}

    return {"seconds": stat("seconds"), "accuracy": stat("accuracy")}


def table(saved: dict) -> str:
    """Markdown: per shipped recipe, test accuracy and wall time before and after, medians (min-max) of n runs."""

    def cell(stat: dict, fmt: str) -> str:
        return f"{stat['median']:{fmt}} ({stat['min']:{fmt}}-{stat['max']:{fmt}})"

    m = saved["machine"]
    lines = [
        f"{m['cpu']} ({', '.join(m['bf16_flags']) or 'no bf16 flags'}, {m['cores']} cores); "
        f"before = {saved['before']}, after = {saved['after']}; "
        f"the two sides alternating, n = {saved['repeats']} each, medians (min-max).",
        "",
        "| recipe | test accuracy before | after | wall before | after | after / before |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in saved["cases"].items():
        b, a = c["before"], c["after"]
        lines.append(
            f"| {name} | {cell(b['accuracy'], '.4f')} | {cell(a['accuracy'], '.4f')} | "
            f"{cell(b['seconds'], '.0f')} s | {cell(a['seconds'], '.0f')} s | {c['time_ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from hubtransfer.save.environment import describe_machine

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default=BEFORE, help="commit of the 'before' side (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="alternations (at least 3 for a median and a spread)")
    p.add_argument("--only", nargs="*", default=list(CASES), choices=CASES)
    p.add_argument("--table-only", action="store_true", help="print the table of the saved results; run nothing")
    p.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    if args.table_only:
        return _show(json.loads(OUT.read_text()), args.write_docs)
    if args.repeats < 3:
        p.error(f"--repeats: at least 3 alternations give a median and a spread, got {args.repeats}")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    with tempfile.TemporaryDirectory(prefix="shipped-time-") as tmp:
        scratch = Path(tmp)
        before = worktree(args.before, scratch)
        sides = {"before": before, "after": ROOT}
        runs: dict[str, dict[str, list]] = {n: {"before": [], "after": []} for n in args.only}
        try:
            for rep in range(args.repeats):
                for name in args.only:
                    order = ("before", "after") if rep % 2 == 0 else ("after", "before")
                    for side in order:
                        runs[name][side].append(run_side(sides[side], name, scratch))
                        print(json.dumps({"case": name, "side": side, "repeat": rep, **runs[name][side][-1]}))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    result = {
        "machine": describe_machine(),
        "before": args.before,
        "after": head.stdout.strip(),
        "repeats": args.repeats,
        "cases": {},
    }
    for name, by_side in runs.items():
        s = {side: summarise(r) for side, r in by_side.items()}
        ratio = s["after"]["seconds"]["median"] / s["before"]["seconds"]["median"]
        result["cases"][name] = {"runs": by_side, **s, "time_ratio": round(ratio, 3)}
        print(
            f"{name}: accuracy {s['before']['accuracy']['median']:.4f} -> {s['after']['accuracy']['median']:.4f}, "
            f"wall {s['before']['seconds']['median']:.0f} s -> {s['after']['seconds']['median']:.0f} s "
            f"(x{ratio:.2f}, n={args.repeats})"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    return _show(result, args.write_docs)


def _show(saved: dict, write: bool) -> int:
    text = table(saved)
    if write:
        from doc_markers import write_between

        write_between(DOCS, *MARKERS, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
