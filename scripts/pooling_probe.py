"""Which frozen MiniLM features suit a new head? Linear probes on CLS, pooler and mean-pooled tokens.

Run: python scripts/pooling_probe.py  (needs scripts/prepare_assets.py; ~2-4 min on 2 cores)
The frozen encoder runs once over 6,000 rotten-tomatoes snippets (the fixed split's train part,
max length 64); each probe (AdamW, lr 1e-3, 30 epochs, batch 32, seed 0) trains on 4,000 and is
scored on the other 2,000. This is the measurement behind ``head.pooling: mean`` in
recipes/text/minilm_rotten_tomatoes_head.yaml.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hubtransfer.data.prepare import prepare_data  # noqa: E402
from hubtransfer.recipe.sections import DataSpec  # noqa: E402


@torch.no_grad()
def features(model, tok, texts: list[str]) -> dict[str, torch.Tensor]:
    out = {"cls": [], "pooler": [], "mean": []}
    for i in range(0, len(texts), 128):
        batch = tok(texts[i : i + 128], padding=True, truncation=True, max_length=64, return_tensors="pt")
        o = model(**batch)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        out["cls"].append(o.last_hidden_state[:, 0])
        out["pooler"].append(o.pooler_output)
        out["mean"].append((o.last_hidden_state * mask).sum(1) / mask.sum(1))
    return {k: torch.cat(v) for k, v in out.items()}


def probe(x: torch.Tensor, y: torch.Tensor, n_train: int = 4000) -> float:
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(x.shape[1], 2))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(30):
        head.train()
        for idx in torch.randperm(n_train).split(32):
            loss = torch.nn.functional.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    head.eval()
    return (head(x[n_train:]).argmax(-1) == y[n_train:]).float().mean().item()


def main() -> int:
    torch.set_num_threads(2)
    folder = ROOT / "assets" / "all-MiniLM-L6-v2"
    train = prepare_data(DataSpec(source="packaged:rotten-tomatoes"), "text").splits["train"].select(range(6000))
    model, tok = AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    feats, y = features(model, tok, train["text"]), torch.tensor(train["label"])
    result = {name: round(probe(x, y), 4) for name, x in feats.items()}
    print(json.dumps({"linear_probe_accuracy": result, "train": 4000, "test": 2000}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
