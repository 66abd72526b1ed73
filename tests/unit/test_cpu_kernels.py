"""The faster CPU training kernels compute what the stock dropout and SDPA attention compute."""

import json

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from hubtransfer.train.cpu_kernels import ATTENTION, FastDropout, cpu_training_kernels, fast_dropout, keep_mask


def test_keep_rate_and_independence():
    torch.manual_seed(0)
    for p in (0.1, 0.25, 0.5):
        keep = keep_mask((1000, 1000), p)
        assert keep.dtype == torch.bool
        assert abs(keep.float().mean().item() - (1 - p)) < 0.002  # s.e. at 1e6 draws: 0.0005
        # neighbours (the four int16 draws of one 64-bit word) are independent: P(both kept) = (1-p)^2
        pairs = (keep[:, :-1] & keep[:, 1:]).float().mean().item()
        assert abs(pairs - (1 - p) ** 2) < 0.003
    assert keep_mask((7, 3), 0.0).all()  # odd sizes, nothing dropped


def test_dropout_is_unbiased_and_its_gradient_is_the_mask():
    torch.manual_seed(1)
    x = torch.full((500, 400), 2.0, requires_grad=True)
    y = fast_dropout(x, 0.1)
    kept = y != 0
    assert torch.allclose(y[kept], torch.tensor(2.0 / (1 - 6554 / 65536)))  # scaled by 1 / keep-probability
    assert abs(y.mean().item() - 2.0) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() / (1 - 6554 / 65536))
    assert torch.equal(fast_dropout(x, 0.0), x)
    assert not fast_dropout(x, 1.0).any()


def test_seeded_draws_repeat():
    torch.manual_seed(3)
    a = fast_dropout(torch.ones(64, 64), 0.3)
    torch.manual_seed(3)
    b = fast_dropout(torch.ones(64, 64), 0.3)
    assert torch.equal(a, b)


def test_fast_dropout_module_is_stock_outside_cpu_training():
    m = FastDropout(0.5)
    x = torch.ones(10, 10)
    assert torch.equal(m.eval()(x), x)
    assert isinstance(m, nn.Dropout) and m.p == 0.5


def _batch():
    torch.manual_seed(0)
    ids = torch.randint(5, 60, (4, 12))
    mask = torch.ones(4, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[3, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_attention_matches_sdpa_without_dropout(tiny_bert):
    """Training mode with every dropout at 0: the plain-math attention gives SDPA's outputs and gradients."""
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    model.train()
    batch, labels = _batch(), torch.tensor([0, 1, 1, 0])

    def run():
        model.zero_grad()
        out = model(**batch, labels=labels)
        out.loss.backward()
        return out.logits.detach(), [p.grad.clone() for p in model.parameters()]

    stock_logits, stock_grads = run()
    with cpu_training_kernels(model):
        assert model.config._attn_implementation == ATTENTION
        logits, grads = run()
    assert torch.allclose(logits, stock_logits, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, stock_grads))


def _attention_inputs(dtype):
    torch.manual_seed(5)
    q, k, v = (torch.randn(8, 4, 24, 16).to(dtype) for _ in range(3))
    mask = torch.ones(8, 1, 24, 24, dtype=torch.bool)
    mask[2, :, :, 17:] = False  # a padded sequence
    return q, k, v, mask


class _Attn(nn.Module):
    training = True


def test_attention_under_bf16_matches_stock_sdpa_in_distribution():
    """bf16 inputs under autocast, attention dropout 0.1: over 300 dropout draws the mean output of ours and of stock
    SDPA (its math path) agree within 0.01, each within 0.01 of the no-dropout output; the per-element spread agrees
    within 10%. Without dropout ours is the float32 result rounded once to bf16."""
    from hubtransfer.train.cpu_kernels import attention_forward

    q, k, v, mask = _attention_inputs(torch.bfloat16)
    ref = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours0 = attention_forward(_Attn(), q, k, v, mask, dropout=0.0)[0].transpose(1, 2)
        stock0 = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert ours0.dtype == torch.bfloat16
        # one rounding to bf16 (8 significant bits): within 2**-8 of the value, relative
        assert ((ours0.float() - ref).abs() <= ref.abs() * 2**-8 + 1e-5).all()
        assert (ours0.float() - stock0.float()).abs().max() <= 0.016
        torch.manual_seed(0)
        ours = torch.stack([attention_forward(_Attn(), q, k, v, mask, dropout=0.1)[0].float() for _ in range(300)])
        stock = torch.stack(
            [
                torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.1).float()
                for _ in range(300)
            ]
        )
    ours = ours.transpose(2, 3)
    assert (ours.mean(0) - stock.mean(0)).abs().mean() < 0.01
    assert (ours.mean(0) - ref).abs().mean() < 0.01 and (stock.mean(0) - ref).abs().mean() < 0.01
    ratio = ours.std(0).mean() / stock.std(0).mean()
    assert 0.9 < ratio < 1.1


def test_training_with_dropout_and_restoring(tiny_bert, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=2, attention_probs_dropout_prob=0.5
    )
    stock_dropouts = sum(type(m) is nn.Dropout for m in model.modules())
    model.eval()
    with torch.no_grad():
        reference = model(**_batch()).logits
    with cpu_training_kernels(model):
        assert sum(isinstance(m, FastDropout) for m in model.modules()) == stock_dropouts > 0
        with torch.no_grad():  # evaluation inside training: stock paths, the same numbers
            assert torch.equal(model(**_batch()).logits, reference)
        model.train()
        torch.manual_seed(0)
        a = model(**_batch()).logits
        torch.manual_seed(0)
        b = model(**_batch()).logits
        a.sum().backward()
        assert torch.equal(a, b) and not torch.allclose(a, reference)  # dropout acts, and is seeded
        grads = {n: p.grad for n, p in model.named_parameters()}
        assert (
            grads["bert.encoder.layer.0.attention.self.query.weight"].abs().sum() > 0
            and grads["classifier.weight"].abs().sum() > 0
        )
    # Everything back: stock modules and attention, nothing of the kernels in a saved config.
    assert sum(type(m) is nn.Dropout for m in model.modules()) == stock_dropouts
    assert not any(isinstance(m, FastDropout) for m in model.modules())
    assert model.config._attn_implementation == "sdpa"
    model.save_pretrained(tmp_path)
    assert ATTENTION not in (tmp_path / "config.json").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["attention_probs_dropout_prob"] == 0.5


def test_disabled_or_failing_leaves_the_model_alone(tiny_bert):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    with cpu_training_kernels(model, enabled=False):
        assert not any(isinstance(m, FastDropout) for m in model.modules())
    with pytest.raises(RuntimeError), cpu_training_kernels(model):
        raise RuntimeError("boom")
    assert not any(isinstance(m, FastDropout) for m in model.modules()) and model.config._attn_implementation == "sdpa"


def test_channels_last_activations_keep_their_layout():
    x = torch.randn(4, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    y = fast_dropout(x, 0.2)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y != 0, (y != 0) & (x != 0)) and abs((y != 0).float().mean().item() - 0.8) < 0.1


def test_grouped_convolutions_run_in_fp32_under_bf16(tiny_efficientnet):
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tiny_efficientnet)
    keys = list(model.state_dict())
    depthwise = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1)
    x = torch.randn(2, depthwise.in_channels, 9, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock = depthwise(x)
    exact = torch.nn.functional.conv2d(
        x, depthwise.weight, depthwise.bias, depthwise.stride, depthwise.padding, depthwise.dilation, depthwise.groups
    )
    with cpu_training_kernels(model):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            evaluating = depthwise(x)  # from_pretrained gives an eval-mode model: the stock kernel
            model.train()
            fast = depthwise(x)
            loss = model(pixel_values=torch.randn(2, 3, 32, 32), labels=torch.tensor([0, 1])).loss
        loss.backward()
        assert list(model.state_dict()) == keys  # same modules and keys: checkpoints saved inside are unchanged
    assert fast.dtype == torch.bfloat16 and torch.equal(fast, exact.to(torch.bfloat16))  # fp32 math, rounded once
    assert not torch.equal(stock, fast)  # the stock bf16 path rounds its inputs first
    # Evaluation inside training (validation) keeps the stock bf16 forward: no fp32 copies, the saved model's outputs.
    assert torch.equal(evaluating, stock)
    assert "forward" not in vars(depthwise) and depthwise.weight.grad is not None
