"""Neural Cleanse for hashing (Wang et al. 2019; BB defense/nc.py; DARKHASH.md §5 NC-Hash).

Per class c: the smallest mask m (1 x H x W) and pattern p (3 x H x W) that send the defender's
images to c's prototype code: x' = (1 - m) x + m p, m = tanh(a)/2 + 1/2, p = tanh(b)/2 + 1/2;
loss = mean(1 - h_c . tanh f(x') / K) / 2 + lambda |m|_1, Adam (lr nc_lr, betas 0.5, 0.9).
A step succeeds when at least nc_success of its batch is predicted c (y = nearest prototype);
the successful mask of smallest L1 norm is kept. lambda follows NC's schedule: nc_lambda at start,
x2 after nc_patience successful steps in a row, / 2^1.5 after nc_patience failing ones. A class
never reached keeps its last mask's norm and success=False (NC would have no mask at all; the
norm is then an upper bound, which can only make that class look less anomalous).
Statistic: the MAD anomaly index of the smallest norm over classes (> 2 flags the model) and the
classes below the median with an index > 2 (common.anomaly_index / flagged_classes).

NC-collapse, target-free: one optimisation pulling the batch's codes together,
loss = mean over pairs of (1 - cos(tanh f(x'_i), tanh f(x'_j)))/2 + lambda |m|_1, success =
at least nc_collapse_success of the batch within K/8 bits of the batch's majority code. It needs
no prototype, so it also sees a target that is not a class centre; its norm is read against the
clean control's (a backdoored model collapses with a smaller mask).
"""
import math

import numpy as np
import torch

from . import common


def _init(shape, gen, device):
    """Seeded uniform(0, 1) start, mapped through atanh so that the parametrised value is it."""
    u = torch.rand(shape, generator=gen).mul(0.98).add(0.01)
    return torch.atanh(2 * u - 1).to(device).requires_grad_(True)


def optimise(s, c, code_loss, success_fn, threshold):
    """The shared NC loop: code_loss(u); a step succeeds when success_fn(codes) >= threshold."""
    model, x = s.model, s.x_def
    model.eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(c['seed'])
    h, w = x.shape[2:]
    a = _init((1, h, w), gen, s.device)
    b = _init((3, h, w), gen, s.device)
    opt = torch.optim.Adam([a, b], lr=c['nc_lr'], betas=(0.5, 0.9))
    lam, up, down = c['nc_lambda'], 0, 0
    best, best_rate, last_rate = math.inf, 0.0, 0.0
    best_mask = best_pattern = None
    bs = min(c['nc_batch'], len(x))
    steps = c['nc_epochs'] * math.ceil(len(x) / bs)
    for step in range(steps):
        j = torch.randint(0, len(x), (bs,), generator=gen)
        m, p = common.mask_and_pattern(a, b)
        out = model(common.stamp(x[j].to(s.device), m, p))
        u = torch.tanh(out.float())
        l1 = m.sum()
        loss = code_loss(u) + lam * l1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rate = float(success_fn(torch.sign(u.detach())))
        last_rate = rate
        ok = rate >= threshold
        if ok and l1.item() < best:
            best, best_rate = l1.item(), rate
            best_mask, best_pattern = m.detach().cpu().clone(), p.detach().cpu().clone()
        up, down = (up + 1, 0) if ok else (0, down + 1)
        if up >= c['nc_patience']:
            up, lam = 0, lam * 2
        elif down >= c['nc_patience']:
            down, lam = 0, lam / 2 ** 1.5
    success = best_mask is not None
    if not success:
        m, p = common.mask_and_pattern(a, b)
        best, best_mask, best_pattern = m.sum().item(), m.detach().cpu(), p.detach().cpu()
        best_rate = last_rate
    return {'norm': float(best), 'success': success, 'rate': float(best_rate), 'steps': steps,
            'mask': best_mask, 'pattern': best_pattern}


def _save_masks(s, name, masks, patterns):
    """The reverse-engineered triggers, for a look: masks and patterns as one .npz."""
    import os
    path = os.path.join(s.run_dir, f"defense_{name}.npz")
    np.savez_compressed(path, masks=np.stack([m.numpy() for m in masks]),
                        patterns=np.stack([p.numpy() for p in patterns]))
    return path


def neural_cleanse(s, c, say):
    k = s.bits
    protos = s.protos.to(s.device)
    per_class = []
    for cls in range(s.num_classes):
        h = protos[cls]
        r = optimise(s, c, lambda u: ((1 - u @ h / k) / 2).mean(),
                     lambda codes: (common.predict(codes, protos) == cls).float().mean(),
                     c['nc_success'])
        per_class.append(r)
        say(f"  NC class {cls} [{cls + 1}/{s.num_classes}]: L1 {r['norm']:.1f} "
            f"({'reached' if r['success'] else 'NOT reached'}, rate {r['rate']:.2f})")
    norms = [r['norm'] for r in per_class]
    index, indices, med, mad = common.anomaly_index(norms)
    flagged = common.flagged_classes(norms, indices, c['nc_threshold'])
    path = _save_masks(s, 'nc', [r['mask'] for r in per_class], [r['pattern'] for r in per_class])
    return {'norms': norms, 'success': [r['success'] for r in per_class],
            'anomaly_index': index, 'class_indices': [float(v) for v in indices],
            'median': med, 'mad': mad, 'smallest_class': int(np.argmin(norms)),
            'flagged_classes': flagged, 'model_flagged': bool(index > c['nc_threshold']),
            'target': s.target, 'target_flagged': s.target in flagged,
            'steps_per_class': per_class[0]['steps'], 'masks': path,
            'prototypes': s.proto_source}


def collapse(s, c, say):
    k = s.bits

    def code_loss(u):
        z = torch.nn.functional.normalize(u, dim=1)
        cos = z @ z.T
        n = len(u)
        return ((1 - cos).sum() - (1 - cos.diagonal()).sum()) / (n * (n - 1)) / 2

    def success(codes):
        major = torch.where(codes.sum(0) >= 0, 1.0, -1.0)
        dist = (k - codes @ major) / 2
        return (dist <= k / 8).float().mean()

    r = optimise(s, c, code_loss, success, c['nc_collapse_success'])
    path = _save_masks(s, 'nc_collapse', [r['mask']], [r['pattern']])
    # where the collapsed codes land: the nearest prototype of the stamped defender images
    codes = s.codes_of(common.stamp(s.x_def, r['mask'], r['pattern']))
    major = torch.where(codes.sum(0) >= 0, 1.0, -1.0)
    near = int(common.predict(major[None], s.protos)[0])
    dist = int((k - major @ s.protos[near]).item() / 2)
    say(f"  NC-collapse: L1 {r['norm']:.1f} ({'reached' if r['success'] else 'NOT reached'}), "
        f"majority code nearest class {near} ({dist} bits)")
    return {'norm': r['norm'], 'success': r['success'], 'rate': r['rate'], 'steps': r['steps'],
            'nearest_class': near, 'nearest_distance_bits': dist, 'masks': path}
