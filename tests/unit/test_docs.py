"""The docs that are generated or promised stay true: the recipe reference matches the schema, every key of the
schema is on it, the README stays short and links only to pages that exist."""

import json
import re
import sys
from pathlib import Path

from hubtransfer.recipe.reference import PAGE, reference_markdown
from hubtransfer.recipe.schema import Recipe

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from doc_markers import read_between  # noqa: E402  (scripts/)


def test_the_committed_recipe_reference_is_what_the_schema_generates():
    committed = (ROOT / PAGE).read_text(encoding="utf-8")
    assert committed == reference_markdown(), (
        f"{PAGE} is stale: run `python -m hubtransfer.recipe.reference --write` and commit it"
    )


def test_the_reference_lists_every_key_with_a_description():
    page = reference_markdown()
    rows = dict(re.findall(r"^\| `([^`]+)` \| .*? \| .*? \| (.*) \|$", page, flags=re.M))
    for key in ("task", "model.id", "data.max_length", "train.lr", "train.lr_search.fraction", "heads[].weight"):
        assert key in rows, key
    assert all(description.strip() for description in rows.values()), [k for k, d in rows.items() if not d.strip()]
    top = set(Recipe.model_fields)
    assert top <= set(rows)


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    missing = [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()]
    assert not missing, missing


def test_every_docs_page_links_resolve():
    broken = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not target.startswith("http") and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert not broken, broken


def _bench_trainer():
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    return importlib.import_module("bench_trainer")


def test_the_trainer_benchmark_tables_in_the_docs_are_the_results_files():
    bench = _bench_trainer()
    for precision, name in (("auto", "bench_trainer.json"), ("no", "bench_trainer_fp32.json")):
        shown = read_between(ROOT / "docs" / "benchmarks.md", *bench.markers(precision))
        results = ROOT / "results" / name
        if not results.is_file():
            assert shown == "Not measured yet under this protocol.", precision
            continue
        saved = json.loads(results.read_text(encoding="utf-8"))
        assert shown == bench.table(saved["rows"], saved["meta"]).strip(), (
            f"docs/benchmarks.md shows another table than {name}: python scripts/bench_trainer.py --table-only "
            f"--write-docs{' --precision no' if precision == 'no' else ''}"
        )


def test_the_table_reads_each_runs_size_not_the_importing_processes_settings(monkeypatch):
    """A smoke-mode import (the slow benchmark tests make one) once relabelled the committed table '96 train, 1 ep'."""
    import importlib

    bench = _bench_trainer()
    saved = json.loads((ROOT / "results" / "bench_trainer.json").read_text(encoding="utf-8"))
    plain = bench.table(saved["rows"], saved["meta"])
    monkeypatch.setenv("HUBTRANSFER_BENCH_SMOKE", "1")
    smoke = importlib.reload(bench)
    try:
        assert smoke.TRAIN_N["minilm-full"] == 96 and smoke.table(saved["rows"], saved["meta"]) == plain
        assert "| minilm-full (4,000 train, 2 ep)" in plain
    finally:
        monkeypatch.delenv("HUBTRANSFER_BENCH_SMOKE")
        importlib.reload(bench)


def test_the_benchmark_table_names_one_alternation_per_case():
    bench = _bench_trainer()
    runs = [
        {
            "case": "minilm-head",
            "side": s,
            "invocation": inv,
            "samples_per_second": v,
            "wall_seconds": 1.0,
            "peak_rss_mb": 100.0,
            "accuracy": 0.7,
            "precision": "bf16",
            "machine": {"cpu": "X", "bf16_flags": [], "cores": 2, "torch_threads": 2, "gpu": None},
        }
        for inv, v in (("old", 1.0), ("new", 2.0))
        for s in bench.SIDES["minilm-head"]
    ] + [
        {
            "case": "minilm-head",
            "side": "hubtransfer",
            "invocation": "newest",
            "samples_per_second": 9.0,
            "wall_seconds": 1.0,
            "peak_rss_mb": 100.0,
            "accuracy": 0.7,
            "precision": "bf16",
        }
    ]
    rows = bench.summarise(runs)
    # 'newest' ran one side only: the rows come from 'new', the last invocation with every side
    assert {r["ours"]["invocation"] for r in rows} == {"new"} and all(r["throughput_ratio"] == 1.0 for r in rows)
    assert all(r["ours"]["n"] == 1 and r["ours"]["machine"].startswith("X (no bf16 flags)") for r in rows)


def test_the_cpu_kernel_table_in_the_docs_is_the_results_file():
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    bench = importlib.import_module("bench_cpu_kernels")
    shown = read_between(ROOT / "docs" / "benchmarks.md", *bench.MARKERS)
    saved = json.loads((ROOT / "results" / "bench_cpu_kernels.json").read_text(encoding="utf-8"))
    assert saved["repeats"] >= 3 and saved["machine"]["cpu"]
    assert shown == bench.table(saved).strip(), "python scripts/bench_cpu_kernels.py --table-only --write-docs"


def test_the_update_table_in_the_docs_is_the_results_files():
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    bench = importlib.import_module("update_bench")
    shown = read_between(ROOT / "docs" / "updates.md", *bench.MARKERS)
    saved = bench.saved_results(ROOT / "results" / "update")
    if not saved:
        assert shown == "Not measured yet under this protocol."
        return
    for res in saved.values():
        assert not res["smoke"] and len({r["seed"] for r in res["runs"]}) >= 3, res["setting"]
    assert shown == bench.table(saved), "python scripts/update_bench.py --write-docs"


def test_the_user_data_tables_in_the_docs_are_the_results_files():
    import importlib

    user_data = importlib.import_module("user_data")
    shown = read_between(ROOT / "docs" / "user-data.md", user_data.START, user_data.END)
    assert shown == user_data.table().strip(), "python scripts/user_data.py table --write"
    seeds = read_between(ROOT / "docs" / "user-data.md", user_data.SEEDS_START, user_data.SEEDS_END)
    assert seeds == user_data.seed_table().strip(), "python scripts/user_data.py table --write"
    shipped = importlib.import_module("shipped_time")
    saved = json.loads(shipped.OUT.read_text(encoding="utf-8"))
    assert saved["repeats"] >= 3 and saved["machine"]["cpu"]
    runs = [c["runs"][side] for c in saved["cases"].values() for side in ("before", "after")]
    assert runs and all(len(r) == saved["repeats"] for r in runs)
    shown = read_between(ROOT / "docs" / "user-data.md", *shipped.MARKERS)
    assert shown == shipped.table(saved).strip(), "python scripts/shipped_time.py --table-only --write-docs"


def test_a_stopped_update_benchmark_resumes_only_on_the_machine_that_measured_it(tmp_path):
    import importlib

    import pytest

    bench = importlib.import_module("update_bench")
    machine = {"cpu": "AMD EPYC", "bf16_flags": ["avx512_bf16"], "cores": 2, "torch": "2.13.0+cpu"}
    partial = tmp_path / "partial" / "image-classes.json"
    runs = [{"method": "naive", "seed": 0}, {"method": "replay", "seed": 0}]
    bench.save_json(partial, {"setting": "image-classes", "machine": machine, "smoke": bench.SMOKE, "runs": runs})
    assert bench._done(partial, machine, resume=False) == []  # without --resume a run starts over
    assert bench._done(partial, machine, resume=True) == runs
    other = machine | {"cpu": "Intel Xeon", "bf16_flags": ["amx_bf16"]}
    with pytest.raises(SystemExit, match=r"measured on AMD EPYC \(avx512_bf16\), 2 cores .* this is Intel Xeon"):
        bench._done(partial, other, resume=True)
    # The docs table reads complete settings only: partial/ is not one of them.
    assert bench.saved_results(tmp_path) == {}


def test_user_data_experiments_refuse_unseen_held_out_sets():
    import importlib

    import pytest

    user_data = importlib.import_module("user_data")
    unseen = [s.name for s in user_data.SUITE if s.half == "held-out" and s.name not in user_data.SEEN]
    assert unseen and {s.name for s in user_data.SUITE if s.half == "held-out"} >= user_data.SEEN
    with pytest.raises(SystemExit, match="held out; tune on the tuning half only"):
        user_data.main(["experiment", "--name", "never-run", "--only", unseen[0]])
    assert not (user_data.RESULTS / "experiments" / "never-run").exists()


def test_the_seed_table_averages_the_default_and_the_reference_over_the_same_number_of_seeds(tmp_path, monkeypatch):
    import importlib

    user_data = importlib.import_module("user_data")
    monkeypatch.setattr(user_data, "RESULTS", tmp_path)
    name = user_data.SUITE[0].name

    def run(acc, f1):
        return {"test": {"accuracy": acc, "f1": f1}}

    results = {
        "summary": {"imbalance": 5.0},
        "references": {"classical": {"sizes": {"test": 98}}, "finetune_grid": {"0.001": run(0.80, 0.60)}},
        "default": run(0.70, 0.50),
    }
    user_data.save_results(name, results)
    assert user_data.seed_table().count("\n") == 1  # no seeds file: the header only
    seeds = {"set": name, "reference_lr": 0.001, "default": {"1": run(0.76, 0.56), "2": run(0.73, 0.53)}}
    seeds["reference"] = {"1": run(0.74, 0.54)}  # seed 2 of the reference not run yet: two seeds a side
    (tmp_path / "experiments" / "seeds").mkdir(parents=True)
    (tmp_path / "experiments" / "seeds" / f"{name}.json").write_text(json.dumps(seeds), encoding="utf-8")
    row = user_data.seed_table().splitlines()[-1]
    assert f"| {name} | {user_data.SUITE[0].half} | 98 | 2 |" in row
    assert "| 73.0 (70.0-76.0) / 53.0 (50.0-56.0) |" in row
    assert "| 77.0 (74.0-80.0) / 57.0 (54.0-60.0) (0.001) | -4.0 / -4.0 |" in row
