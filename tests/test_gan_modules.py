"""Tests for labcln.py, generator.py and discriminator.py (CPU, a few seconds)."""

import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from discriminator import Discriminator, discriminator_targets  # noqa: E402
from generator import (IMAGENET_MEAN, IMAGENET_STD, Generator, apply_generator, generator_budget,  # noqa: E402
                       normalize_for_generator, psnr_project)
from labcln import (LabCLN, confusing_code, labcln_loss, make_views, nt_xent,  # noqa: E402
                    smooth_labels, train_labcln)


def n_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------------
# parameter counts of the official configuration (224 px, 100 classes, 64 bits)
# ------------------------------------------------------------------------------------------------

def test_parameter_counts_official_size():
    with torch.device('meta'):
        g = Generator(image_size=224)
        d = Discriminator(num_classes=100, image_size=224)
        lab = LabCLN(num_classes=100, bits=64)
    assert n_trainable(g) == 21_454_121
    assert n_trainable(d) == 16_213_952
    assert n_trainable(lab) == 2_595_492
    assert d.head_kernel == 7
    # spectral-norm vectors are buffers, not parameters
    assert any(name.endswith('_u') for name, _ in d.named_buffers())
    assert not any(name.endswith('_u') or name.endswith('_v') for name, _ in d.named_parameters())


# ------------------------------------------------------------------------------------------------
# shapes and input checks
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('size', [32, 64])
def test_generator_shapes(size):
    torch.manual_seed(0)
    g = Generator(image_size=size, feat_dim=32, ngf=16)
    x = normalize_for_generator(torch.rand(2, 3, size, size))
    out = g(x, torch.randn(2, 32))
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1.0
    out.mean().backward()  # differentiable end to end
    assert g.label_encoder.fc[0].weight.grad is not None


def test_generator_default_widths_small_image():
    g = Generator(image_size=32)  # default widths, official label-encoder channels 128..8
    assert [m.out_channels for m in g.label_encoder.up if isinstance(m, torch.nn.ConvTranspose2d)] == [64, 32, 16, 8]
    assert g(torch.randn(1, 3, 32, 32), torch.randn(1, 512)).shape == (1, 3, 32, 32)


def test_generator_rejects_wrong_size():
    g = Generator(image_size=32, feat_dim=32, ngf=16)
    with pytest.raises(ValueError):
        g(torch.randn(1, 3, 64, 64), torch.randn(1, 32))
    with pytest.raises(ValueError):
        g(torch.randn(1, 3, 32, 32), torch.randn(1, 16))
    with pytest.raises(ValueError):
        Generator(image_size=40)


@pytest.mark.parametrize('size,batch', [(32, 1), (32, 3), (64, 1), (64, 2)])
def test_discriminator_shapes(size, batch):
    d = Discriminator(num_classes=10, image_size=size, ndf=8)
    out = d(torch.rand(batch, 3, size, size))
    assert out.shape == (batch, 11)


def test_discriminator_rejects_wrong_size():
    d = Discriminator(num_classes=10, image_size=32, ndf=8)
    with pytest.raises(ValueError):
        d(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError):
        Discriminator(num_classes=10, image_size=16)


def test_discriminator_targets():
    labels = torch.tensor([[0, 1, 0], [1, 0, 1]])
    real = discriminator_targets(labels, fake=False)
    fake = discriminator_targets(labels, fake=True)
    assert torch.equal(real, torch.tensor([[0., 1., 0., 0.], [1., 0., 1., 0.]]))
    assert torch.equal(fake, torch.tensor([[0., 1., 0., 1.], [1., 0., 1., 1.]]))


def test_normalize_for_generator():
    x = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert torch.allclose(normalize_for_generator(x), torch.zeros(1, 3, 2, 2), atol=1e-7)
    y = normalize_for_generator(torch.ones(1, 3, 1, 1)).flatten()
    expected = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    assert torch.allclose(y, expected)


# ------------------------------------------------------------------------------------------------
# label smoothing (D4)
# ------------------------------------------------------------------------------------------------

def test_psnr_project_is_an_energy_budget():
    """psnr_project (g_psnr, our option): a residual over the budget ends exactly at it, one under it is
    untouched, the budget is per image, and sparse residuals may exceed any L-inf bound at the same PSNR."""
    torch.manual_seed(0)
    d = torch.randn(3, 3, 16, 16) * 0.2
    d[1] *= 1e-3  # far under 30 dB's energy
    d[2] = 0
    d[2, :, :4, :4] = 0.5  # sparse and large: 48 of 768 values
    p = psnr_project(d, 30.0)
    psnr = [-10 * math.log10(float((x ** 2).mean())) for x in p[:2]]
    assert psnr[0] == pytest.approx(30.0, abs=1e-4)
    assert torch.equal(p[1], d[1])
    assert -10 * math.log10(float((p[2] ** 2).mean())) == pytest.approx(30.0, abs=1e-4)
    assert float(p[2].abs().max()) > 3 * 8 / 255  # the same PSNR as 8/255 everywhere, three times as high
    assert torch.allclose(p[0] / p[0].norm(), d[0] / d[0].norm(), atol=1e-6)  # direction kept
    # through apply_generator: a residual G's image keeps the bound after the [0, 1] clamp, scale magnifies
    G = Generator(image_size=32, feat_dim=8, ngf=8)
    x, r = torch.rand(2, 3, 32, 32) * 0.5 + 0.25, torch.randn(2, 8)
    budget = generator_budget({'g_output': 'residual', 'g_eps': 0.5, 'g_psnr': 35.0})
    with torch.no_grad():
        xb = apply_generator(G, x, r, **budget)
        x2 = apply_generator(G, x, r, **budget, scale=2.0)
    for a, b in zip(xb, x):
        assert -10 * math.log10(float(((a - b) ** 2).mean())) >= 35.0 - 1e-3
    assert torch.allclose(x2 - x, 2 * (xb - x), atol=1e-6)  # no pixel clips: x in [0.25, 0.75]
    assert generator_budget({}) == {'g_output': 'image', 'g_eps': 0.0, 'g_psnr': 0.0}  # a G from before the keys


def test_smoothing_one_hot():
    one_hot = torch.tensor([[0., 0., 1., 0., 0.]])
    # C = 5, eps = 0.2: true 0.8, others 0.2 / 4 = 0.05 (both modes agree on one-hots)
    expected = torch.tensor([[0.05, 0.05, 0.8, 0.05, 0.05]])
    for mode in ('paper', 'code'):
        out = smooth_labels(one_hot, 0.2, mode)
        assert torch.allclose(out, expected)
        assert torch.allclose(out.sum(), torch.tensor(1.0))
    assert torch.equal(smooth_labels(one_hot, 0), one_hot)
    assert torch.equal(smooth_labels(one_hot, None, 'code'), one_hot)


def test_smoothing_multi_hot():
    multi = torch.tensor([[0, 1, 0, 1, 0]])
    # paper: element-wise, positives 1 - 0.3 = 0.7, negatives 0.3 / 4 = 0.075
    assert torch.allclose(smooth_labels(multi, 0.3, 'paper'),
                          torch.tensor([[0.075, 0.7, 0.075, 0.7, 0.075]]))
    # code: collapse to the first positive class (index 1)
    assert torch.allclose(smooth_labels(multi, 0.3, 'code'),
                          torch.tensor([[0.075, 0.7, 0.075, 0.075, 0.075]]))
    with pytest.raises(ValueError):
        smooth_labels(multi, 0.3, 'bogus')


def test_make_views_interleaved():
    labels = torch.eye(4)[[2, 0]]
    views = make_views(labels, (0.2, None), 'paper')
    assert views.shape == (4, 4)
    assert torch.allclose(views[0], smooth_labels(labels[0], 0.2))
    assert torch.equal(views[1], labels[0])
    assert torch.allclose(views[2], smooth_labels(labels[1], 0.2))
    assert torch.equal(views[3], labels[1])


# ------------------------------------------------------------------------------------------------
# NT-Xent and the LabCLN loss
# ------------------------------------------------------------------------------------------------

def _nt_xent_loop(feats, tau):
    n = feats.shape[0]
    z = [f / f.norm() for f in feats.double()]
    total = 0.0
    for a in range(n):
        p = a + 1 if a % 2 == 0 else a - 1
        denom = sum(math.exp(float(z[a] @ z[k]) / tau) for k in range(n) if k != a)
        total += -math.log(math.exp(float(z[a] @ z[p]) / tau) / denom)
    return total / n


@pytest.mark.parametrize('tau', [0.5, 0.1])
def test_nt_xent_matches_loop(tau):
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(12, 7, generator=g)
    expected = _nt_xent_loop(feats, tau)
    assert abs(nt_xent(feats, tau).item() - expected) < 1e-6 * max(1.0, expected)


def test_nt_xent_extremes():
    # identical positives, orthogonal negatives: loss = -log(e^2 / (e^2 + 2 e^0)) for 4 views at tau 0.5
    feats = torch.tensor([[1., 0.], [2., 0.], [0., 1.], [0., 3.]])
    assert nt_xent(feats, 0.5).item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 2)), rel=1e-6)
    # large 1/tau stays finite (logsumexp)
    assert math.isfinite(nt_xent(torch.randn(6, 3), 1e-3).item())
    with pytest.raises(ValueError):
        nt_xent(torch.randn(5, 3))


def test_labcln_loss_parts():
    feat = torch.tensor([[1., 0.], [1., 0.2], [0., 1.], [0.3, 1.]])
    h = torch.tensor([[0.5, -0.2], [0.9, -0.9], [-0.1, 0.3], [0.0, 0.7]])
    c = torch.tensor([[0.9, 0.2], [0.6, 0.1], [0.3, 0.8], [0.1, 0.5]])
    raw = torch.tensor([[1., 0.], [0., 1.]])
    total, parts = labcln_loss((feat, h, c), raw, alpha=1.0, beta=1e-4, lam=1.0, tau=0.5)

    # sum over all 2M x K entries of (sign(h) - h)^2, divided by M = 2; sign(0) = 0 as torch.sign
    quant = sum(((1.0 if v > 0 else -1.0 if v < 0 else 0.0) - v) ** 2 for v in h.flatten().tolist()) / 2
    targets = [[1., 0.], [1., 0.], [0., 1.], [0., 1.]]
    cls = sum((c[i, j].item() - targets[i][j]) ** 2 for i in range(4) for j in range(2)) / 8
    contrastive = _nt_xent_loop(feat, 0.5)

    assert parts['quant'] == pytest.approx(quant, rel=1e-6)
    assert parts['cls'] == pytest.approx(cls, rel=1e-6)
    assert parts['contrastive'] == pytest.approx(contrastive, rel=1e-6)
    assert parts['total'] == pytest.approx(contrastive + 1e-4 * quant + cls, rel=1e-6)
    assert total.item() == pytest.approx(parts['total'], rel=1e-6)
    total2, parts2 = labcln_loss((feat, h, c), raw, alpha=2.0, beta=0.5, lam=3.0, tau=0.5)
    assert parts2['total'] == pytest.approx(2 * contrastive + 0.5 * quant + 3 * cls, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# tiny LabCLN training run
# ------------------------------------------------------------------------------------------------

def test_train_labcln_tiny():
    pool = torch.eye(10)
    model, logs = train_labcln(pool, bits=16, steps=150, batch=32, lr=1e-3, milestones=(1000,),
                               hidden=256, feat_dim=128, seed=0, log_every=50, log_fn=None)
    assert not model.training
    assert logs[0]['step'] == 1 and logs[-1]['step'] == 150
    assert logs[-1]['contrastive'] < logs[0]['contrastive'] - 0.5
    feat, codes = confusing_code(model, pool)
    assert feat.shape == (10, 128) and codes.shape == (10, 16)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}
    assert len({tuple(row.tolist()) for row in codes}) == 10
    # single label row keeps a 1-D shape and matches the batch result
    f1, c1 = confusing_code(model, pool[3])
    assert f1.shape == (128,) and torch.equal(c1, codes[3])
    # same seed -> same model
    model2, _ = train_labcln(pool, bits=16, steps=5, batch=32, hidden=32, feat_dim=16, seed=3, log_fn=None)
    model3, _ = train_labcln(pool, bits=16, steps=5, batch=32, hidden=32, feat_dim=16, seed=3, log_fn=None)
    for p2, p3 in zip(model2.parameters(), model3.parameters()):
        assert torch.equal(p2, p3)


def test_train_labcln_code_option_and_nonfinite():
    pool = torch.tensor([[1., 0., 1.], [0., 1., 0.], [0., 0., 1.]])
    model, logs = train_labcln(pool, bits=8, steps=3, batch=8, eps=(0.2, None), smoothing='code',
                               hidden=16, feat_dim=8, log_fn=None)
    assert math.isfinite(logs[-1]['total'])
    with pytest.raises(FloatingPointError):
        train_labcln(pool * float('nan'), bits=8, steps=3, batch=8, hidden=16, feat_dim=8, log_fn=None)
