"""hubtransfer against the transformers Trainer on the same model, data, batch, learning rate, epochs and seed.

Run: python scripts/bench_trainer.py [--case minilm-full minilm-head effnet-full bert-base vit-b16] [--repeats 3]
[--precision auto|no] [--table-only] [--write-docs]

Every run is a fresh subprocess (so peak RSS is its own), and the sides alternate inside each
repeat so that machine noise falls on all of them. Repeat k runs every side with seed k, so the median
accuracy is over seeds (one seed's test accuracy moves by about a point between seeds). Sides:

* ``hubtransfer``: ``hubtransfer.finetune`` with the recipe's defaults (precision auto: bf16 where
  the CPU has avx512_bf16/AMX; length-grouped shuffled buckets; fused AdamW; per-epoch validation).
* ``trainer-a``: the Trainer as the transformers example scripts run it: fp32, padding to
  max_length, random order (its default optimizer, fused AdamW in transformers 5).
* ``trainer-b``: the Trainer tuned as far as it goes: dynamic padding to a multiple of 8,
  ``group_by_length`` sampling, fused AdamW, hubtransfer's precision, and the faster of the model's
  attention implementations (``sdpa`` / ``eager``), measured in the run itself on a few training steps
  before training (that probe's seconds are left out of the run's wall time; the choice is recorded).
* ``trainer-frozen`` (minilm-head): the same mean-pooled head model with a frozen backbone
  (``requires_grad``), tuned like trainer-b; the Trainer calls ``model.train()``, so the frozen
  backbone runs every epoch with its dropout on.
* ``trainer-frozen-eval`` (minilm-head): the same, with the frozen backbone kept in eval mode (no
  dropout), as a Trainer user who knows would; it still runs the backbone every epoch.
* ``trainer-onthefly`` (effnet-full): the image processor applied per batch by ``set_transform``,
  as the image-classification example does, hubtransfer's precision (bf16 autocast);
  ``trainer-onthefly-fp32`` the same in fp32, which is faster than bf16 for EfficientNet on CPU
  (its depthwise convolutions; hubtransfer keeps just those in fp32, see hubtransfer/cpu_kernels.py).

GPU cases (``bert-base``, ``vit-b16``; run by default only where CUDA is available): BERT-base and
ViT-B/16 built from their configurations with random weights (throughput does not depend on the
weights; both sides start from the same saved checkpoint), on the same data (rotten tomatoes at max
length 128, the animal shapes at 224 px), batch 64, against ``trainer-b`` (bf16 like hubtransfer), with
4 data-loader workers on both sides. Each run also reports the peak GPU memory allocated, and the table
the model's training FLOPs per second (6 x the matrix weights x tokens + 12 x layers x width x tokens^2
per example, the usual forward + backward count; padding not counted) and the MFU against the GPU's dense
bf16 peak (``--peak-tflops`` for a GPU not in :data:`PEAK_TFLOPS`).

Each run prints one JSON line: train samples/s (training loop only), wall seconds (the whole
process: imports, data, model, training, test), peak RSS, test accuracy, and the training
seconds until validation accuracy first reached the target (time to accuracy, where evaluated).
Results go to results/bench_trainer.json; the table prints medians and ratios hubtransfer / peer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from doc_markers import write_between  # noqa: E402  (scripts/, beside this file)

MINILM = ROOT / "assets" / "all-MiniLM-L6-v2"
EFFNET = ROOT / "assets" / "efficientnet-lite0"
SMOKE = bool(
    os.environ.get("HUBTRANSFER_BENCH_SMOKE")
)  # a seconds-long pass through every code path, numbers meaningless
FULL_TRAIN_N = {"minilm-full": 4000, "minilm-head": 4000, "effnet-full": 3000, "bert-base": 8000, "vit-b16": 3000}
FULL_EPOCHS = {"minilm-full": 2, "minilm-head": 10, "effnet-full": 2, "bert-base": 2, "vit-b16": 2}
# Each run records its own size; the full sizes name the runs recorded before it did (the table reads the run).
TRAIN_N = {k: 96 for k in FULL_TRAIN_N} if SMOKE else FULL_TRAIN_N
EPOCHS = {k: 1 for k in FULL_EPOCHS} if SMOKE else FULL_EPOCHS
TARGET = {"minilm-full": 0.78, "minilm-head": 0.74, "effnet-full": 0.95}  # GPU cases (random init): throughput only
GPU_CASES = ("bert-base", "vit-b16")
PRECISION_ENV = "HUBTRANSFER_BENCH_PRECISION"
TUNED = ("trainer-b", "trainer-frozen", "trainer-frozen-eval")  # peers given every speed-up the Trainer has
# Dense bf16 tensor-core peaks from the vendors' data sheets (SXM parts), TFLOP/s; matched against the device name.
PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10": 125.0}
EVAL_EVERY = {"minilm-full": 50}  # optimizer steps between validations (time to accuracy); the others: every epoch
SIDES = {
    "minilm-full": ["hubtransfer", "trainer-a", "trainer-b"],
    "minilm-head": ["hubtransfer", "trainer-frozen", "trainer-frozen-eval"],
    "effnet-full": ["hubtransfer", "trainer-onthefly", "trainer-onthefly-fp32"],
    "bert-base": ["hubtransfer", "trainer-b"],
    "vit-b16": ["hubtransfer", "trainer-b"],
}
GPU_TRAIN = ["train.batch_size=64", "train.num_workers=4"]
# The peer (Trainer) trains one fixed configuration, so the recipes' data-driven `auto` keys are pinned to what they
# were before those existed: no learning-rate search, the checkpoint's own head, no class weights, no early stop.
FIXED_TEXT = ["data.max_length=64", "head.pooling=native"]
# The linear probe is off: the peers train, and a probe pass (or a probe kept) would not be the loop being timed.
FIXED_COMMON = ["train.class_weights=none", "train.early_stopping.patience=null", "train.linear_probe=false"]
RECIPES = {
    "minilm-full": (
        "recipes/text/minilm_rotten_tomatoes.yaml",
        ["data.source=packaged:rotten-tomatoes", *FIXED_TEXT, "train.lr=5e-5"],
    ),
    "minilm-head": ("recipes/text/minilm_rotten_tomatoes_head.yaml", ["data.source=packaged:rotten-tomatoes"]),
    "effnet-full": (
        "recipes/vision/efficientnet_lite0_animal_shapes.yaml",
        ["data.source=packaged:animal-shapes", "data.image_size=96", "train.lr=1e-3"],
    ),
    "bert-base": (
        "recipes/text/minilm_rotten_tomatoes.yaml",
        [
            "data.source=packaged:rotten-tomatoes",
            "head.pooling=native",
            "train.lr=5e-5",
            "data.max_length=128",
            *GPU_TRAIN,
        ],
    ),
    "vit-b16": (
        "recipes/vision/efficientnet_lite0_animal_shapes.yaml",
        ["data.source=packaged:animal-shapes", "train.lr=1e-3", "data.image_size=224", *GPU_TRAIN],
    ),
}


# --------------------------------------------------------------------------- one run (in its own process)


def _recipe(case: str, work: Path, seed: int = 0):
    sys.path.insert(0, str(ROOT))
    from hubtransfer.job import load_recipe

    path, overrides = RECIPES[case]
    overrides = [f"model.id={_model_dir(case, work)}", *overrides]
    extra = ["data.max_eval_samples=64"] if SMOKE else []
    if os.environ.get(PRECISION_ENV):  # --precision no: fp32 on every side (the machine's bf16 unused)
        extra.append(f"train.precision={os.environ[PRECISION_ENV]}")
    if case in EVAL_EVERY:
        extra.append(f"train.eval_every={EVAL_EVERY[case]}")
    return load_recipe(
        ROOT / path,
        [
            *overrides,
            *FIXED_COMMON,
            *extra,
            f"data.max_train_samples={TRAIN_N[case]}",
            f"train.epochs={EPOCHS[case]}",
            "train.checkpoint_every=null",
            f"train.seed={seed}",
            f"output_dir={work}/out",
            "overwrite_output_dir=true",
        ],
    )


def _is_text(case: str) -> bool:
    return case.startswith("minilm") or case == "bert-base"


def _model_dir(case: str, work: Path) -> Path:
    """The checkpoint a case starts from: a packaged one, or (GPU cases) the random one :func:`worker` builds in
    ``work``."""
    if case.startswith("minilm"):
        return MINILM
    return EFFNET if case == "effnet-full" else work / case


def _config(case: str):
    """A GPU case's architecture: BERT-base or ViT-B/16 at 224 px (the configurations' defaults); tiny in smoke runs."""
    from transformers import BertConfig, ViTConfig

    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64) if SMOKE else {}
    return BertConfig(**tiny) if case == "bert-base" else ViTConfig(**tiny)


def _random_checkpoint(case: str, folder: Path) -> None:
    """:func:`_config`'s model with seeded random weights, with MiniLM's tokenizer (the same uncased 30,522-word
    vocabulary as BERT-base) or a 224 px ViT image processor."""
    import torch
    from transformers import AutoTokenizer, BertModel, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    if case == "bert-base":
        BertModel(_config(case)).save_pretrained(folder)
        AutoTokenizer.from_pretrained(MINILM).save_pretrained(folder)
    else:
        ViTModel(_config(case), add_pooling_layer=False).save_pretrained(folder)
        ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)


def train_flops_per_example(case: str, work: Path) -> float:
    """Forward + backward FLOPs of one training example of a GPU case: 6 x the weights of the matrix
    products applied to every token (the linear and convolution layers but the pooler's) x the
    example's tokens, plus 12 x layers x width x tokens^2 for the attention scores and their use (the count
    behind MFU; padding is not useful work, so text counts each example's own tokens; the pooler and the
    classifier act once per example and are left out). The model is built on the meta device: no memory.
    The same for every run of a case (the split does not depend on the seed), so counted once per case."""
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    from hubtransfer.data.prepare import prepare_data

    recipe = _recipe(case, work)
    data = prepare_data(recipe.data, "text" if _is_text(case) else "image")
    config = _config(case)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    per_token = [m for name, m in model.named_modules() if not name.startswith("pooler")]
    weights = sum(m.weight.numel() for m in per_token if isinstance(m, (nn.Linear, nn.Conv2d)))
    layers, width = config.num_hidden_layers, config.hidden_size
    if _is_text(case):
        tok = AutoTokenizer.from_pretrained(MINILM)
        lengths = [
            len(ids)
            for ids in tok(list(data.splits["train"]["text"]), truncation=True, max_length=recipe.data.max_length)[
                "input_ids"
            ]
        ]
    else:
        lengths = [(config.image_size // config.patch_size) ** 2 + 1] * len(data.splits["train"])  # patches + [CLS]
    return sum(6 * weights * t + 12 * layers * width * t * t for t in lengths) / len(lengths)


def peak_tflops(override: float | None = None) -> tuple[float | None, str]:
    """The accelerator's dense bf16 peak (TFLOP/s) and its name; None off CUDA or for an unknown GPU without
    ``override``."""
    import torch

    if not torch.cuda.is_available():
        return override, platform.machine()
    name = torch.cuda.get_device_name()
    return override or next((v for k, v in PEAK_TFLOPS.items() if k in name), None), name


def run_hubtransfer(case: str, work: Path, seed: int) -> dict:
    from hubtransfer.run import finetune
    from hubtransfer.train.evaluate import seconds_to_target

    os.environ["HUBTRANSFER_CACHE"] = str(work / "cache")  # cold: the feature pass counts
    result = finetune(_recipe(case, work, seed))
    t = result.run["training"]
    # Training needs the training split's features: that pass counts. (The validation / test passes are
    # evaluation, which the Trainer's training time leaves out too.)
    feature_pass = t["features"]["extract_seconds_by_split"]["train"] if t.get("features", {}).get("cached") else 0.0
    train_seconds = t["train_seconds"] + feature_pass
    to_target = seconds_to_target(result.history, "accuracy", TARGET[case]) if case in TARGET else None
    samples = result.run["data"]["sizes"]["train"] * EPOCHS[case]
    return {
        "samples_per_second": round(samples / train_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "precision": t["precision"],
        "accuracy": result.metrics["test"]["accuracy"],
        "seconds_to_target": None if to_target is None else round(to_target + feature_pass, 2),
    }


def run_trainer(case: str, side: str, work: Path, seed: int) -> dict:
    import numpy as np
    import torch
    from transformers import Trainer, TrainingArguments

    from hubtransfer.data.prepare import prepare_data
    from hubtransfer.train.precision import resolve_precision

    recipe = _recipe(case, work, seed)
    precision, _ = resolve_precision(recipe.train.precision)
    bf16 = side not in ("trainer-a", "trainer-onthefly-fp32") and precision == "bf16"
    text = _is_text(case)
    data = prepare_data(recipe.data, "text" if text else "image")
    model, train, val, test, collator, processing, attention = (_text_setup if text else _image_setup)(
        case, side, recipe, data
    )
    t = recipe.train
    args = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.lr,
        num_train_epochs=t.epochs,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        lr_scheduler_type=t.scheduler,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        data_seed=t.seed,
        bf16=bf16,
        train_sampling_strategy="group_by_length" if side in TUNED and text else "random",
        eval_strategy="steps" if case in EVAL_EVERY else "epoch",
        eval_steps=EVAL_EVERY.get(case),
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=t.num_workers,  # the recipe's: 0 on CPU, 4 in the GPU cases
        remove_unused_columns=text,  # images: set_transform needs the raw column
    )
    timeline = _Timeline()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=collator,
        processing_class=processing,
        compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())},
        callbacks=[timeline],
    )
    out = trainer.train()
    pred = trainer.predict(test)  # with grouped sampling predictions come back in another order: compare with label_ids
    accuracy = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
    train_seconds = out.metrics["train_runtime"] - timeline.eval_seconds
    return {
        "samples_per_second": round(len(train) * t.epochs / train_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "precision": "bf16" if bf16 else "no",
        "accuracy": accuracy,
        "seconds_to_target": timeline.to_target(TARGET[case]) if case in TARGET else None,
        "attention": attention,
    }


def _timeline_class():
    from transformers import TrainerCallback

    class Timeline(TrainerCallback):
        """Training seconds at each evaluation, evaluations excluded (the same clock as hubtransfer's history)."""

        def __init__(self):
            self.start = self.mark = None
            self.eval_seconds = 0.0
            self.points: list[tuple[float, float]] = []

        def on_train_begin(self, args, state, control, **kw):
            self.start = self.mark = time.perf_counter()

        # The Trainer evaluates right after these hooks: the time from the last of them to on_evaluate is evaluation.
        def on_step_end(self, args, state, control, **kw):
            self.mark = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kw):
            self.mark = time.perf_counter()

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            now = time.perf_counter()
            self.eval_seconds += now - self.mark
            self.points.append((now - self.start - self.eval_seconds, metrics.get("eval_accuracy", 0.0)))
            self.mark = now

        def to_target(self, target: float):
            return next((round(s, 2) for s, acc in self.points if acc >= target), None)

    return Timeline


def _Timeline():
    return _timeline_class()()


def _text_setup(case, side, recipe, data):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    tok = AutoTokenizer.from_pretrained(recipe.model.id)
    pad = "max_length" if side == "trainer-a" else False

    def tokenize(batch):
        enc = tok(batch["text"], truncation=True, max_length=recipe.data.max_length, padding=pad)
        enc["labels"] = batch["label"]
        if side != "trainer-a":
            enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    splits = {s: ds.map(tokenize, batched=True, remove_columns=ds.column_names) for s, ds in data.splits.items()}
    collator = DataCollatorWithPadding(tok, pad_to_multiple_of=8 if side in TUNED else None)
    for s in ("validation", "test"):
        splits[s] = splits[s].remove_columns([c for c in ("length",) if c in splits[s].column_names])

    def make(attention: str | None):
        if side.startswith("trainer-frozen"):
            sys.path.insert(0, str(ROOT))
            from hubtransfer.strategies import apply_strategy
            from hubtransfer.tasks import get_task
            from hubtransfer.tasks.model import build_model

            model = build_model(get_task("text-classification"), recipe.model.id, recipe, data.labels)
            apply_strategy(model, "head")  # the backbone frozen: the Trainer still runs it every step
            if attention:
                model.backbone.set_attn_implementation(attention)
            if side == "trainer-frozen-eval":
                _keep_backbone_in_eval(model)
            return model
        extra = {"attn_implementation": attention} if attention else {}
        return AutoModelForSequenceClassification.from_pretrained(recipe.model.id, num_labels=len(data.labels), **extra)

    attention = _faster_attention(make, splits["train"], collator, recipe) if side in TUNED else None
    model = make(attention["chosen"] if attention else None)
    return model, splits["train"], splits["validation"], splits["test"], collator, tok, attention


def _keep_backbone_in_eval(model) -> None:
    """``model.train()`` (which the Trainer calls every step) leaves the frozen backbone in eval mode: no dropout."""
    stock_train = model.train

    def train(mode: bool = True):
        stock_train(mode)
        model.backbone.eval()
        return model

    model.train = train


def _faster_attention(make, train, collator, recipe, steps: int = 6) -> dict:
    """Forward + backward seconds of ``steps`` training batches (after two warm-up steps) under each attention
    implementation the model has, at the run's precision; the faster one is the peer's."""
    import torch

    from hubtransfer.train.precision import autocast_dtype, resolve_precision

    probe_started = time.perf_counter()
    dtype = autocast_dtype(resolve_precision(recipe.train.precision)[0])
    rows = [
        {k: v for k, v in train[i].items() if k != "length"} for i in range(min(len(train), recipe.train.batch_size))
    ]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch = {k: v.to(device) for k, v in collator(rows).items()}
    seconds = {}
    for impl in ("sdpa", "eager"):
        torch.manual_seed(0)
        model = make(impl).to(device).train()
        for i in range(steps + 2):
            if i == 2:
                if device == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = model(**batch).loss
            loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds[impl] = round(time.perf_counter() - started, 3)
        del model
    chosen = min(seconds, key=seconds.get)
    return {"chosen": chosen, "seconds": seconds, "probe_seconds": round(time.perf_counter() - probe_started, 2)}


def _image_setup(case, side, recipe, data):
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    sys.path.insert(0, str(ROOT))
    from hubtransfer.tasks.image_classification import to_rgb

    proc = AutoImageProcessor.from_pretrained(recipe.model.id)
    s = recipe.data.image_size
    proc.size = {"height": s, "width": s}
    if getattr(proc, "do_center_crop", False):
        proc.crop_size = {"height": s, "width": s}

    def transform(batch):
        return {
            "pixel_values": proc(images=[to_rgb(im) for im in batch["image"]], return_tensors="pt")["pixel_values"],
            "labels": batch["label"],
        }

    splits = {}
    for name, ds in data.splits.items():
        ds = ds.with_format(None)
        ds.set_transform(transform)
        splits[name] = ds

    def collate(items):
        return {
            "pixel_values": torch.stack([x["pixel_values"] for x in items]),
            "labels": torch.tensor([x["labels"] for x in items]),
        }

    model = AutoModelForImageClassification.from_pretrained(
        recipe.model.id, num_labels=len(data.labels), ignore_mismatched_sizes=True
    )
    return model, splits["train"], splits["validation"], splits["test"], collate, proc, None


def worker(case: str, side: str, seed: int) -> int:
    import torch

    from hubtransfer.save.environment import describe_machine

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if case in GPU_CASES:
            _random_checkpoint(case, _model_dir(case, Path(tmp)))
        out = (
            run_hubtransfer(case, Path(tmp), seed)
            if side == "hubtransfer"
            else run_trainer(case, side, Path(tmp), seed)
        )
    probe = (out.get("attention") or {}).get("probe_seconds", 0.0)  # the peer's attention probe is not its run
    out.update(
        case=case,
        side=side,
        seed=seed,
        train_n=TRAIN_N[case],
        epochs=EPOCHS[case],
        wall_seconds=round(time.perf_counter() - started - probe, 2),
        machine=describe_machine(),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        device=torch.cuda.get_device_name() if torch.cuda.is_available() else platform.machine(),
        peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None,
    )
    print("BENCH " + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------- the side-by-side


def _spawn(case: str, side: str, seed: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", case, side, str(seed)], capture_output=True, text=True, cwd=ROOT
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{case}/{side} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(line[len("BENCH ") :])
    print(
        f"  {case:12s} {side:17s} {result['samples_per_second']:7.1f} samples/s  wall {result['wall_seconds']:6.1f} s  "
        f"rss {result['peak_rss_mb']:6.0f} MB  acc {result['accuracy']:.4f}  seed {seed}",
        flush=True,
    )
    return result


SPREAD = ("samples_per_second", "wall_seconds", "peak_rss_mb", "accuracy")  # shown with their min-max


def latest_alternation(runs: list[dict], case: str) -> list[dict]:
    """The runs of ``case`` from the last invocation that measured every one of its sides: they alternated on one
    machine. Runs from before invocations were recorded (no ``invocation``) count as one older invocation."""
    of_case = [r for r in runs if r["case"] == case]
    for inv in reversed(list(dict.fromkeys(r.get("invocation") for r in of_case))):
        rs = [r for r in of_case if r.get("invocation") == inv]
        if {r["side"] for r in rs} >= set(SIDES[case]):
            return rs
    return []


def summarise(runs: list[dict], peak: float | None = None, flops: dict | None = None) -> list[dict]:
    """Per case, from its latest complete alternation: medians (with n and min-max) per side, and hubtransfer's
    ratios to each peer; with ``flops`` (case -> training FLOPs per example) the model's TFLOP/s, and MFU where
    ``peak`` (TFLOP/s) is known."""
    rows = []
    for case in dict.fromkeys(r["case"] for r in runs):
        by_side, alternated = {}, latest_alternation(runs, case)
        for side in SIDES[case]:
            rs = [r for r in alternated if r["side"] == side]
            if not rs:
                continue
            values = lambda k, rs=rs: [r[k] for r in rs if r.get(k) is not None]
            med = lambda k, values=values: statistics.median(values(k)) if values(k) else None
            keys = ("samples_per_second", "wall_seconds", "peak_rss_mb", "accuracy", "seconds_to_target", "peak_gpu_mb")
            by_side[side] = {k: med(k) for k in keys}
            by_side[side].update(
                n=len(rs),
                precision=rs[0]["precision"],
                device=rs[0].get("device"),
                spread={k: [min(values(k)), max(values(k))] for k in SPREAD if values(k)},
                attention=sorted({r["attention"]["chosen"] for r in rs if r.get("attention")}) or None,
                machine=_machine_line(rs[0].get("machine")),
                invocation=rs[0].get("invocation"),
                train_n=rs[0].get("train_n", FULL_TRAIN_N[case]),
                epochs=rs[0].get("epochs", FULL_EPOCHS[case]),
            )
            if flops and case in flops:
                by_side[side]["train_tflops"] = round(flops[case] * by_side[side]["samples_per_second"] / 1e12, 6)
                if peak:
                    by_side[side]["mfu"] = round(by_side[side]["train_tflops"] / peak, 4)
        ours = by_side.get("hubtransfer")
        for side, peer in by_side.items():
            if side == "hubtransfer" or ours is None:
                continue
            rows.append(
                {
                    "case": case,
                    "peer": side,
                    "repeats": peer["n"],
                    "ours": ours,
                    "theirs": peer,
                    "throughput_ratio": round(ours["samples_per_second"] / peer["samples_per_second"], 2),
                    "wall_ratio": round(peer["wall_seconds"] / ours["wall_seconds"], 2),
                    "rss_ratio": round(ours["peak_rss_mb"] / peer["peak_rss_mb"], 2),
                    "accuracy_gap_points": round(100 * (ours["accuracy"] - peer["accuracy"]), 2),
                    "time_to_target_ratio": round(peer["seconds_to_target"] / ours["seconds_to_target"], 2)
                    if ours["seconds_to_target"] and peer["seconds_to_target"]
                    else None,
                }
            )
    return rows


def _machine_line(m: dict | str | None) -> str | None:
    """One line for a run's recorded machine (older runs recorded only a string)."""
    if not isinstance(m, dict):
        return m
    gpu = f"; {m['gpu']}" if m.get("gpu") else ""
    flags = "/".join(m.get("bf16_flags") or []) or "no bf16 flags"
    return f"{m['cpu']} ({flags}), {m['cores']} cores, {m['torch_threads']} torch threads{gpu}"


NOTES = {
    "trainer-a": "the Trainer as the example scripts run it: fp32, padding to max_length, random order",
    "trainer-b": "dynamic padding to a multiple of 8, group_by_length, fused AdamW, hubtransfer's precision, the "
    "faster attention implementation measured in each run",
    "trainer-frozen": "frozen backbone by requires_grad; the Trainer's model.train() keeps its dropout on",
    "trainer-frozen-eval": "frozen backbone kept in eval mode (no dropout); it still runs every epoch",
    "trainer-onthefly": "image processor per batch (set_transform), at hubtransfer's precision (bf16 autocast where "
    "the CPU has it; under --precision no the same as the fp32 peer)",
    "trainer-onthefly-fp32": "image processor per batch (set_transform), fp32",
}


def _with_spread(side: dict, key: str, fmt: str) -> str:
    value, spread = side.get(key), (side.get("spread") or {}).get(key)
    if value is None:
        return "-"
    return (
        f"{value:{fmt}} ({spread[0]:{fmt}}-{spread[1]:{fmt}})"
        if spread and spread[0] != spread[1]
        else f"{value:{fmt}}"
    )


def table(rows: list[dict], meta: dict) -> str:
    """The markdown table of ``rows``: medians with their min-max over the runs of one alternation per case."""
    gpu = any(r["ours"].get("train_tflops") is not None for r in rows)  # the FLOP and GPU-memory columns
    peak = f"; MFU against {meta['peak_tflops']} TFLOP/s dense bf16" if meta.get("peak_tflops") else ""
    machines = list(dict.fromkeys(m for r in rows for m in (r["ours"].get("machine"), r["theirs"].get("machine")) if m))
    where = (
        f"Machine: {machines[0] if machines else meta.get('machine')}"
        if len(machines) <= 1
        else "Machines: per row (column 'machine')"
    )
    lines = [
        f"{where}; torch {meta['torch']}, transformers {meta['transformers']}; medians (min-max) over the runs of one "
        f"invocation, the sides alternating (column 'runs'){peak}.",
        "",
        "| case | peer | runs | hubtransfer samples/s | peer samples/s | speed-up (samples/s) | speed-up (wall) | "
        "time to target (ours / peer) | peak RSS MB (ours / peer) | test acc (ours / peer) |"
        + (" model TFLOP/s (ours / peer) | MFU (ours / peer) | peak GPU MB (ours / peer) |" if gpu else "")
        + (" machine |" if len(machines) > 1 else ""),
        "|---|---|---|---|---|---|---|---|---|---|"
        + ("---|---|---|" if gpu else "")
        + ("---|" if len(machines) > 1 else ""),
    ]
    pair = lambda o, t, k, f: f"{o[k]:{f}} / {t[k]:{f}}" if o.get(k) is not None and t.get(k) is not None else "-"
    for r in rows:
        o, t = r["ours"], r["theirs"]
        tta = (
            f"{o['seconds_to_target']:.0f} s / {t['seconds_to_target']:.0f} s"
            if o["seconds_to_target"] and t["seconds_to_target"]
            else "-"
        )
        attention = f", {'/'.join(t['attention'])} attention" if t.get("attention") else ""
        lines.append(
            f"| {r['case']} ({o.get('train_n', FULL_TRAIN_N[r['case']]):,} train, "
            f"{o.get('epochs', FULL_EPOCHS[r['case']])} ep) | {r['peer']} ({t['precision']}"
            f"{attention}) | {r['repeats']} | "
            f"{_with_spread(o, 'samples_per_second', '.1f')} ({o['precision']}) | "
            f"{_with_spread(t, 'samples_per_second', '.1f')} | {r['throughput_ratio']:.2f}x | "
            f"{r['wall_ratio']:.2f}x | {tta} | {_with_spread(o, 'peak_rss_mb', '.0f')} / "
            f"{_with_spread(t, 'peak_rss_mb', '.0f')} | {o['accuracy']:.4f} / {t['accuracy']:.4f} |"
            + (
                f" {pair(o, t, 'train_tflops', '.3g')} | {pair(o, t, 'mfu', '.1%')} | "
                f"{pair(o, t, 'peak_gpu_mb', '.0f')} |"
                if gpu
                else ""
            )
            + (f" {o.get('machine') or '?'} |" if len(machines) > 1 else "")
        )
    peers = dict.fromkeys(r["peer"] for r in rows)
    lines += ["", "Peers: " + "; ".join(f"{p}: {NOTES[p]}" for p in peers if p in NOTES) + "."]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--case",
        nargs="+",
        choices=list(SIDES),
        help="default: the GPU cases where CUDA is available, else the CPU ones",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--out",
        type=Path,
        help="default: results/bench_trainer.json, results/bench_trainer_gpu.json where CUDA is available",
    )
    p.add_argument(
        "--peak-tflops",
        type=float,
        help=f"the GPU's dense bf16 peak for MFU, where its name matches none of {', '.join(PEAK_TFLOPS)}",
    )
    p.add_argument(
        "--precision",
        choices=["auto", "no"],
        default="auto",
        help="no: every side in fp32 (train.precision=no), the table of a CPU without bf16; results go to "
        "results/bench_trainer_fp32.json",
    )
    p.add_argument("--table-only", action="store_true", help="reprint the table of --out")
    p.add_argument(
        "--write-docs",
        action="store_true",
        help=f"also write the table between the markers of {DOCS.relative_to(ROOT)} (CPU results only)",
    )
    p.add_argument("--worker", nargs=3, metavar=("CASE", "SIDE", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker[0], args.worker[1], int(args.worker[2]))
    import torch
    import transformers

    from hubtransfer.save.environment import describe_machine

    cuda = torch.cuda.is_available()
    name = "bench_trainer_gpu" if cuda else "bench_trainer"
    args.out = args.out or ROOT / "results" / f"{name}{'_fp32' if args.precision == 'no' else ''}.json"
    if args.precision == "no":
        os.environ[PRECISION_ENV] = "no"  # the workers read it
    if args.table_only:
        saved = json.loads(args.out.read_text())
        print(table(saved["rows"], saved["meta"]))
        if args.write_docs:
            write_docs(table(saved["rows"], saved["meta"]), saved["meta"].get("precision", "auto"))
        return 0
    args.case = args.case or [c for c in SIDES if (c in GPU_CASES) == cuda]
    if not cuda and not SMOKE and set(args.case) & set(GPU_CASES):
        p.error(
            f"{', '.join(c for c in args.case if c in GPU_CASES)}: GPU cases (BERT-base / ViT-B/16), and this machine "
            "has no CUDA device; "
            "run them on a GPU machine (HUBTRANSFER_BENCH_SMOKE=1 runs tiny versions for a check of the code path)"
        )
    peak, _ = peak_tflops(args.peak_tflops)

    machine = describe_machine()
    invocation = time.strftime("%Y-%m-%dT%H:%M:%S")
    meta = {
        "machine": _machine_line(machine),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "repeats": args.repeats,
        "precision": args.precision,
    }
    if cuda:
        meta["peak_tflops"] = peak
    # Runs of earlier invocations are kept (each names its invocation and machine); a case's table row comes from
    # its latest invocation that ran all its sides, alternating on one machine.
    saved = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = saved.get("runs", [])
    invocations = {**saved.get("invocations", {}), invocation: {"machine": machine, "cases": args.case}}
    for rep in range(args.repeats):
        print(f"repeat {rep + 1}/{args.repeats}", flush=True)
        for case in args.case:
            for side in SIDES[case]:
                run = _spawn(case, side, seed=rep)  # every side of a repeat shares its seed
                runs.append({**run, "invocation": invocation})
    with tempfile.TemporaryDirectory() as tmp:
        flops = {
            c: train_flops_per_example(c, Path(tmp)) for c in dict.fromkeys(r["case"] for r in runs) if c in GPU_CASES
        }
    if flops:
        meta["train_flops_per_example"] = flops
    rows = summarise(runs, peak, flops)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "invocations": invocations, "runs": runs}, indent=2))
    print(table(rows, meta))
    if args.write_docs:
        write_docs(table(rows, meta), args.precision)
    return 0


DOCS = ROOT / "docs" / "benchmarks.md"


def markers(precision: str) -> tuple[str, str]:
    name = "bench-trainer-table" if precision == "auto" else "bench-trainer-fp32-table"
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_docs(text: str, precision: str, path: Path = DOCS) -> None:
    """Put ``text`` between the table markers of ``path`` (tests/unit/test_docs.py checks it equals the results)."""
    write_between(path, *markers(precision), text)


if __name__ == "__main__":
    sys.exit(main())
