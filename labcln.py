"""LabCLN: the label-based contrastive learning network of BadHash (paper §3.3, eq.3-5).

LabCLN maps a (one- or multi-hot) label vector to
  * a semantic feature r_b (512-d by default), fed to the trigger generator, and
  * a hash output h (tanh, K bits) whose sign is the "centroid code" h_c used by the Hamming loss.

Architecture, optimiser and budget follow the official code (SPEC §2.3, decision D5);
the label augmentation follows the paper by default (decision D4), with the code's variant as an
option. Nothing is built or downloaded at import time.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------
# label augmentation (paper eq.4, decision D4)
# ------------------------------------------------------------------------------------------------

def smooth_labels(labels, eps, mode='paper'):
    """Label smoothing used to make the two LabCLN views of a label (SPEC §1.3 eq.4, decision D4).

    labels: [..., C] tensor of 0/1 entries (one-hot or multi-hot). Returns a float tensor.

    mode='paper' (default, D4): element-wise normalised smoothing
        l_hat = l * (1 - eps) + eps / (C - 1) * (1 - l)
      i.e. every positive entry becomes 1 - eps and every negative entry eps / (C - 1).
      For a one-hot vector the result sums to 1. Multi-hot labels are smoothed element-wise,
      with no collapse to a single class. (Literal eq.4, l(1-eps) + eps/(C-1) on every entry,
      would not sum to 1 for a one-hot; SPEC §1.3 note.)

    mode='code': the official code's argmax smoothing (SPEC §2.3, D4 option)
        l_hat[j] = 1 - eps        if j == argmax(l)   (the FIRST positive class of a multi-hot)
        l_hat[j] = eps / (C - 1)  otherwise
      so a multi-hot label collapses to its first positive class.

    eps = 0 or None returns the raw labels (as float) in both modes: this is the code's second,
    un-smoothed view.
    """
    labels = labels.float()
    if eps is None or eps == 0:
        return labels.clone()
    num_classes = labels.shape[-1]
    if num_classes < 2:
        raise ValueError(f"smooth_labels needs at least 2 classes, got {num_classes}")
    off = eps / (num_classes - 1)
    if mode == 'paper':
        return labels * (1.0 - eps) + off * (1.0 - labels)
    if mode == 'code':
        first = labels.argmax(dim=-1, keepdim=True)  # torch.argmax returns the first maximum
        out = torch.full_like(labels, off)
        out.scatter_(-1, first, 1.0 - eps)
        return out
    raise ValueError(f"unknown smoothing mode {mode!r}; expected 'paper' or 'code'")


# ------------------------------------------------------------------------------------------------
# contrastive loss (paper eq.5, SPEC §2.3)
# ------------------------------------------------------------------------------------------------

def nt_xent(features, tau=0.5):
    """NT-Xent (SimCLR) loss on 2M interleaved views.

    features: [2M, d]; rows (2i, 2i+1) are the two views of sample i (positive pair).
    For anchor a with positive p(a) = a XOR 1:
        l_a = -log( exp(s_ap / tau) / sum_{k != a} exp(s_ak / tau) ),  s = cosine similarity
    and the loss is the mean of l_a over all 2M anchors. The positive stays in the denominator,
    as in eq.5 and in the official code. Computed in float32 with logsumexp.
    """
    n = features.shape[0]
    if features.dim() != 2 or n < 2 or n % 2:
        raise ValueError(f"nt_xent expects [2M, d] features with an even number of rows, got {tuple(features.shape)}")
    z = F.normalize(features.float(), dim=1)
    logits = z @ z.t() / tau
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float('-inf'))
    partner = torch.arange(n, device=z.device) ^ 1
    pos = logits[torch.arange(n, device=z.device), partner]
    return (torch.logsumexp(logits, dim=1) - pos).mean()


# ------------------------------------------------------------------------------------------------
# network (SPEC §2.3, D5)
# ------------------------------------------------------------------------------------------------

class LabCLN(nn.Module):
    """Label MLP: C -> hidden -> ReLU -> feat_dim (= r_b), then two heads on r_b:
    hash head Linear(feat_dim, bits) + Tanh and classifier head Linear(feat_dim, C) + Sigmoid.
    Defaults (hidden 4096, feat 512) are the official ones; default PyTorch initialisation."""

    def __init__(self, num_classes, bits, hidden=4096, feat_dim=512):
        super().__init__()
        self.num_classes, self.bits, self.hidden, self.feat_dim = num_classes, bits, hidden, feat_dim
        self.feature = nn.Sequential(
            nn.Linear(num_classes, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, feat_dim),
        )
        self.hash_head = nn.Sequential(nn.Linear(feat_dim, bits), nn.Tanh())
        self.cls_head = nn.Sequential(nn.Linear(feat_dim, num_classes), nn.Sigmoid())

    def forward(self, labels):
        """labels [B, C] -> (feature r_b [B, feat_dim], h [B, bits] in (-1,1), c [B, C] in (0,1))."""
        feat = self.feature(labels)
        return feat, self.hash_head(feat), self.cls_head(feat)


def labcln_loss(model_outputs, raw_labels, alpha=1.0, beta=1e-4, lam=1.0, tau=0.5):
    """LabCLN objective (paper eq.3 with the code's reductions, decision D5).

    model_outputs: (feature, h, c) for the 2M interleaved views; raw_labels: [M, C] un-smoothed labels.
        L = alpha * NT-Xent(feature, tau)
          + beta  * sum((sign(h) - h)^2) / M          (sum over all 2M x K entries)
          + lam   * mean((c - y)^2)                    (y = raw label of each view, i.e. each raw
                                                        label repeated for both of its views)
    Returns (total loss tensor, dict of floats: total, contrastive, quant, cls) where the parts are
    the unweighted terms.
    """
    feat, h, c = model_outputs
    m = raw_labels.shape[0]
    if feat.shape[0] != 2 * m:
        raise ValueError(f"expected 2M = {2 * m} views, got {feat.shape[0]}")
    l_s = nt_xent(feat, tau)
    l_q = (torch.sign(h.detach()) - h.float()).pow(2).sum() / m
    target = raw_labels.float().repeat_interleave(2, dim=0)
    l_c = F.mse_loss(c.float(), target)
    total = alpha * l_s + beta * l_q + lam * l_c
    parts = {'total': total.item(), 'contrastive': l_s.item(), 'quant': l_q.item(), 'cls': l_c.item()}
    return total, parts


def make_views(labels, eps=(0.2, 0.3), smoothing='paper'):
    """Two smoothed views of each label, interleaved: rows (2i, 2i+1) are views 1 and 2 of labels[i]."""
    v1 = smooth_labels(labels, eps[0], smoothing)
    v2 = smooth_labels(labels, eps[1], smoothing)
    return torch.stack([v1, v2], dim=1).reshape(2 * labels.shape[0], labels.shape[1])


# ------------------------------------------------------------------------------------------------
# training (SPEC §2.3, D5)
# ------------------------------------------------------------------------------------------------

def train_labcln(label_pool, bits, steps=1000, batch=128, lr=1e-4, betas=(0.5, 0.999),
                 milestones=(500, 750), eps=(0.2, 0.3), smoothing='paper', tau=0.5, seed=0,
                 hidden=4096, feat_dim=512, device='cpu', log_every=100, log_fn=print):
    """Train LabCLN on a pool of distinct label rows (D5).

    Each step draws `batch` labels uniformly with replacement from label_pool [N_pool, C] (seeded
    torch.Generator), builds two views with eps[0] and eps[1] (0 / None = raw label; the code's
    setting is eps=(0.2, None), smoothing='code'), interleaves them into 2M rows and takes one Adam
    step on labcln_loss. MultiStepLR(milestones, gamma 0.1) is stepped once per step.
    Model initialisation is seeded with `seed` without touching the global RNG state.

    Returns (model in eval mode, list of log dicts {step, lr, total, contrastive, quant, cls}).
    Raises FloatingPointError on a non-finite loss.
    """
    pool = torch.as_tensor(label_pool).float()
    if pool.dim() != 2 or pool.shape[0] == 0:
        raise ValueError(f"label_pool must be a non-empty [N, C] matrix, got {tuple(pool.shape)}")
    num_classes = pool.shape[1]
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LabCLN(num_classes, bits, hidden=hidden, feat_dim=feat_dim)
    model.to(device).train()
    pool = pool.to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=0.1)

    logs = []
    for step in range(1, steps + 1):
        idx = torch.randint(pool.shape[0], (batch,), generator=gen).to(device)
        raw = pool[idx]
        views = make_views(raw, eps, smoothing)
        loss, parts = labcln_loss(model(views), raw, tau=tau)
        if not math.isfinite(parts['total']):
            raise FloatingPointError(f"LabCLN loss is not finite at step {step}: {parts}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr_now = opt.param_groups[0]['lr']
        sched.step()
        if step % max(1, log_every) == 0 or step == steps or step == 1:
            rec = {'step': step, 'lr': lr_now, **parts}
            logs.append(rec)
            if log_fn is not None:
                log_fn(f"labcln step {step:5d} | lr {lr_now:.2e} | loss {parts['total']:.4f} "
                       f"| ntxent {parts['contrastive']:.4f} | quant {parts['quant']:.4f} | cls {parts['cls']:.5f}")
    model.eval()
    return model, logs


@torch.no_grad()
def confusing_code(model, label):
    """r_b and centroid code for a confusing label (SPEC §2.3 'use during GAN training').

    label: [C] or [B, C]. Returns (feature r_b, h_c) detached, with the same leading shape;
    h_c = sign(h) with sign(0) mapped to +1 so every bit is +-1.
    """
    p = next(model.parameters())
    lab = torch.as_tensor(label).to(device=p.device, dtype=p.dtype)
    single = lab.dim() == 1
    if single:
        lab = lab.unsqueeze(0)
    feat, h, _ = model(lab)
    h_c = torch.where(h >= 0, torch.ones_like(h), -torch.ones_like(h))
    if single:
        feat, h_c = feat[0], h_c[0]
    return feat.detach(), h_c.detach()


def load_labcln(path, device):
    """A LabCLN checkpoint written by train_tri_gen.py: (model in eval mode, checkpoint dict)."""
    import utils
    ckpt = utils.load_checkpoint(path)
    m = ckpt['meta']
    model = LabCLN(m['num_classes'], m['bits'], hidden=m['hidden'], feat_dim=m['feat_dim'])
    model.load_state_dict(ckpt['model'])
    return model.to(device).eval(), ckpt

