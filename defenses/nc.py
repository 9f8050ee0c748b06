"""Neural Cleanse for hashing (Wang et al. 2019; their visualizer; DARKHASH.md §5 NC-Hash).

Per class c: the smallest mask m (1 x H x W) and pattern p (3 x H x W) that send the defender's
images to c's prototype code: x' = (1 - m) x + m p, m = tanh(a)/2 + 1/2, p = tanh(b)/2 + 1/2;
loss = mean(1 - h_c . tanh f(x') / K) / 2 + lambda |m|_1, Adam (lr nc_lr, betas 0.5, 0.9).

The optimisation is Neural Cleanse's own (CostSchedule): it runs in epochs (one shuffled pass
over D_def in batches of nc_batch); an epoch succeeds when at least nc_success of its images are
predicted c (y = nearest prototype); lambda starts at 0 (the trigger is first found without the
norm term) and is set to nc_lambda after nc_patience successful epochs, then x2 after
nc_patience successful epochs in a row, / 2^1.5 after nc_patience failing ones. The end-of-epoch
mask of a successful epoch with the smallest mean L1 is kept. It stops early once lambda has gone
both up and down and the kept norm has not shrunk for nc_early_stop epochs, else after nc_epochs
(README "Reproduction notes": with a fixed number of steps some classes never converged, which
widened the spread of the norms). A class never reached keeps its last mask's norm and
success=False (NC would have no mask at all; the norm is then an upper bound, which can only make
that class look less anomalous).
Statistic (nc_statistic): the MAD anomaly index of the smallest norm over classes (> 2 flags the
model) and the classes below the median with an index > 2 (common.anomaly_index /
flagged_classes), on the L1 norms ('mad', NC's) or on their logarithms ('log_mad'); all of them are
in the result.

TABOR (Guo et al. 2019, "TABOR: A Highly Accurate Approach to Inspecting and Restoring Trojan
Backdoors in AI Systems"): the same per-class optimisation with its regularisers added at fixed
weights (tabor_*): R1 the mask's and the out-of-mask pattern's L1 + L2, R2 their total variation,
R3 the image with the mask's region cut out keeps its own class's code (a mask painted over the
object is penalised), R4 the trigger alone on black reaches the class's code. Read by the
trigger-quality score of quality() (tabor_statistic), or by any of NC's statistics.

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


class CostSchedule:
    """Neural Cleanse's balance between the attack and the mask norm (Wang et al. 2019, their
    visualizer's defaults: cost reset to 0, multiplier 2 up and 2^1.5 down, early stop at a
    threshold of 1.0 once the cost has moved both ways). Call step(ok, best) once per epoch, ok =
    the epoch reached the success rate, best = the smallest successful norm so far (inf if none);
    it returns True when the optimisation should stop. `cost` is the weight of the next epoch."""

    def __init__(self, init_cost, patience, early_stop_patience, up=2.0, down=2 ** 1.5):
        self.init_cost, self.patience, self.es_patience = init_cost, patience, early_stop_patience
        self.up_mult, self.down_mult = up, down
        self.cost = 0.0
        self.set_count = self.up_count = self.down_count = self.es_count = 0
        self.up_flag = self.down_flag = False
        self.es_best = math.inf

    def step(self, ok, best):
        if self.es_patience > 0:
            if best < math.inf:  # no shrinking only counts once a valid mask exists
                self.es_count = self.es_count + 1 if best >= self.es_best else 0
            self.es_best = min(best, self.es_best)
            if self.up_flag and self.down_flag and self.es_count >= self.es_patience:
                return True
        if self.cost == 0 and ok:
            self.set_count += 1
            if self.set_count >= self.patience:
                self.cost = self.init_cost
                self.up_count = self.down_count = 0
                self.up_flag = self.down_flag = False
        else:
            self.set_count = 0
        self.up_count, self.down_count = ((self.up_count + 1, 0) if ok
                                          else (0, self.down_count + 1))
        if self.up_count >= self.patience:
            self.up_count, self.up_flag = 0, True
            self.cost *= self.up_mult
        elif self.down_count >= self.patience:
            self.down_count, self.down_flag = 0, True
            self.cost /= self.down_mult
        return False


def _init(shape, gen, device):
    """Seeded uniform(0, 1) start, mapped through atanh so that the parametrised value is it."""
    u = torch.rand(shape, generator=gen).mul(0.98).add(0.01)
    return torch.atanh(2 * u - 1).to(device).requires_grad_(True)


def optimise(s, c, code_loss, success_fn, threshold, extra=None):
    """The shared NC loop (module docstring): code_loss(u) on a batch; success_fn(codes) -> the
    batch's 0/1 successes; an epoch succeeds when their mean over D_def >= threshold. extra(m, p,
    j): a further loss term on the mask, the pattern and the batch's indices into D_def (TABOR's
    regularisers), added with its own fixed weights; the schedule and the success test are NC's."""
    model, x = s.model, s.x_def
    model.eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(c['seed'])
    h, w = x.shape[2:]
    a = _init((1, h, w), gen, s.device)
    b = _init((3, h, w), gen, s.device)
    opt = torch.optim.Adam([a, b], lr=c['nc_lr'], betas=(0.5, 0.9))
    sched = CostSchedule(c['nc_lambda'], c['nc_patience'], c['nc_early_stop'])
    best, best_rate, last_rate = math.inf, 0.0, 0.0
    best_mask = best_pattern = None
    bs = min(c['nc_batch'], len(x))
    epochs = 0
    for epoch in range(c['nc_epochs']):
        perm = torch.randperm(len(x), generator=gen)
        hits, l1s = 0.0, []
        for i in range(0, len(x), bs):
            j = perm[i:i + bs]
            m, p = common.mask_and_pattern(a, b)
            out = model(common.stamp(x[j].to(s.device), m, p))
            u = torch.tanh(out.float())
            l1 = m.sum()
            loss = code_loss(u) + sched.cost * l1
            if extra is not None:
                loss = loss + extra(m, p, j)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hits += float(success_fn(torch.sign(u.detach())).sum())
            l1s.append(l1.item())
        epochs = epoch + 1
        rate, reg = hits / len(x), float(np.mean(l1s))
        last_rate = rate
        ok = rate >= threshold
        if ok and reg < best:  # NC keeps the end-of-epoch mask, scored by the epoch's mean L1
            best, best_rate = reg, rate
            m, p = common.mask_and_pattern(a, b)
            best_mask, best_pattern = m.detach().cpu().clone(), p.detach().cpu().clone()
            # (the norm reported is this mask's L1, as NC's outlier detection reads the saved mask)
        if sched.step(ok, best):
            break
    success = best_mask is not None
    if not success:
        m, p = common.mask_and_pattern(a, b)
        best_mask, best_pattern = m.detach().cpu(), p.detach().cpu()
        best_rate = last_rate
    return {'norm': float(best_mask.sum()), 'success': success, 'rate': float(best_rate),
            'epochs': epochs, 'steps': epochs * math.ceil(len(x) / bs), 'final_lambda': sched.cost,
            'mask': best_mask, 'pattern': best_pattern}


def _save_masks(s, name, masks, patterns):
    """The reverse-engineered triggers, for a look: masks and patterns as one .npz."""
    import os
    path = os.path.join(s.run_dir, f"defense_{name}.npz")
    np.savez_compressed(path, masks=np.stack([m.numpy() for m in masks]),
                        patterns=np.stack([p.numpy() for p in patterns]))
    return path


# nc_statistic -> common.anomaly_index's options: NC's MAD of the L1 norms, the same on log norms
# (mask areas spread by ratios; README "Reproduction notes"), the MAD of the lower half only
STATISTICS = {'mad': {}, 'log_mad': {'log': True}, 'lower_mad': {'lower': True}}


def _partial(s, name='nc'):
    """The finished classes of an interrupted run with the same stamp (defend.py sets s.stamp to
    the result's reuse stamp), else {}; and the file they are kept in."""
    import os
    path = os.path.join(s.run_dir, f'defense_{name}_partial.pt')
    stamp = getattr(s, 'stamp', None)
    if stamp is None or not os.path.isfile(path):
        return {}, path
    done = torch.load(path, map_location='cpu', weights_only=True)
    return (done['classes'] if done.get('stamp') == stamp else {}), path


def neural_cleanse(s, c, say):
    return _per_class(s, c, say, 'nc', 'NC', lambda cls, protos: None)


def tabor_terms(m, p):
    """TABOR's mask and pattern regularisers (Guo et al. 2019, R1 and R2): the mask's L1 + squared
    L2, the same of the pattern outside the mask ((1 - m) p), and the total variation (sum of
    absolute differences between vertical and horizontal neighbours) of each. m: [1,H,W],
    p: [3,H,W]. Returns (r1_mask, r1_pattern, r2_mask, r2_pattern)."""
    def tv(t):
        return (t[..., 1:, :] - t[..., :-1, :]).abs().sum() + (t[..., 1:] - t[..., :-1]).abs().sum()
    out = (1 - m) * p
    return (m.abs().sum() + m.pow(2).sum(), out.abs().sum() + out.pow(2).sum(), tv(m), tv(out))


def tabor_images(x, m, p):
    """TABOR's R3 and R4 inputs: the images with the trigger's region cut out ((1 - m) x: a
    trigger that covers the object destroys its class) and the trigger alone on black (m p: a
    real trigger works without an image under it)."""
    return (1 - m) * x, (m * p).unsqueeze(0)


def tabor(s, c, say):
    """Neural Cleanse with TABOR's regularisers added to each class's optimisation (module
    docstring of tabor_terms / tabor_images; weights tabor_*), scored by score() with
    tabor_statistic (default: the MAD of the quality scores of quality()).
    In hashing terms R3 pulls the cut-out image's code to the prototype of its own class (the
    defender knows D_def's labels) and R4 the trigger alone to the class's prototype, both with
    NC's code loss (1 - h . tanh f / K) / 2."""
    k, x, y = s.bits, s.x_def, s.y_def
    w = [c['tabor_r1_mask'], c['tabor_r1_pattern'], c['tabor_r2_mask'], c['tabor_r2_pattern']]

    def extra_for(cls, protos):
        h = protos[cls]

        def extra(m, p, j):
            loss = sum(wi * t for wi, t in zip(w, tabor_terms(m, p)) if wi)
            cut, alone = tabor_images(x[j].to(s.device), m, p)
            if c['tabor_r3']:
                u = torch.tanh(s.model(cut).float())
                loss = loss + c['tabor_r3'] * ((1 - (u * protos[y[j].to(s.device)]).sum(1) / k)
                                               / 2).mean()
            if c['tabor_r4']:
                u = torch.tanh(s.model(alone).float())
                loss = loss + c['tabor_r4'] * ((1 - u @ h / k) / 2).mean()
            return loss
        return extra

    return _per_class(s, c, say, 'tabor', 'TABOR', extra_for)


def _per_class(s, c, say, name, label, extra_for):
    """One optimisation per class towards its prototype (NC, or TABOR with extra_for(cls, protos)
    giving the added loss), kept class by class under the result's stamp, scored by score()."""
    import os
    k = s.bits
    protos = s.protos.to(s.device)
    done, partial = _partial(s, name)
    per_class = []
    for cls in range(s.num_classes):
        if cls in done:  # one optimisation per class is the long loop: an interruption keeps them
            r = done[cls]
            say(f"  {label} class {cls} [{cls + 1}/{s.num_classes}]: L1 {r['norm']:.1f} (kept "
                f"from an interrupted run with the same stamp, {partial})")
            per_class.append(r)
            continue
        h = protos[cls]
        r = optimise(s, c, lambda u: ((1 - u @ h / k) / 2).mean(),
                     lambda codes: (common.predict(codes, protos) == cls).float(),
                     c['nc_success'], extra=extra_for(cls, protos))
        per_class.append(r)
        say(f"  {label} class {cls} [{cls + 1}/{s.num_classes}]: L1 {r['norm']:.1f} "
            f"({'reached' if r['success'] else 'NOT reached'}, rate {r['rate']:.2f}, "
            f"{r['epochs']} epochs, lambda {r['final_lambda']:.2g})")
        if getattr(s, 'stamp', None) is not None:
            done[cls] = r
            torch.save({'stamp': s.stamp, 'classes': done}, partial + '.tmp')
            os.replace(partial + '.tmp', partial)
    path = _save_masks(s, name, [r['mask'] for r in per_class], [r['pattern'] for r in per_class])
    if os.path.isfile(partial):  # the whole result is stored by defend.py from here on
        os.remove(partial)
    res = {'norms': [r['norm'] for r in per_class], 'success': [r['success'] for r in per_class],
           'target': s.target, 'epochs_per_class': [r['epochs'] for r in per_class],
           'steps_per_class': [r['steps'] for r in per_class], 'masks': path,
           'prototypes': s.proto_source}
    res['quality'], res['quality_orig'] = quality(s, [r['mask'] for r in per_class],
                                                  [r['pattern'] for r in per_class])
    return score(res, c, f'{name}_statistic')


def quality(s, masks, patterns):
    """A trigger-quality score per class in the spirit of TABOR's detection metric (Guo et al.
    2019; its terms as we read the paper, without its explanation-based refinement of the mask):
    score = ln(L1 / HW) + ln(TV / HW) - ln(attack) - ln(crop / orig), lower = more trigger-like.
    L1 / TV: the mask's size and total variation; attack: the share of D_def stamped with the
    trigger that is predicted the class; crop: the share of D_def still predicted its own class with
    the mask's region cut out ((1 - m) x); orig: the same share without a cut. Rates of 0 count as
    half an image. Returns (per-class dicts, orig)."""
    x, y, protos = s.x_def, s.y_def, s.protos
    floor = 0.5 / len(x)
    orig = max(float((common.predict(s.codes_of(x), protos) == y).float().mean()), floor)
    out = []
    for cls, (m, p) in enumerate(zip(masks, patterns)):
        m, p = torch.as_tensor(m).float(), torch.as_tensor(p).float()
        hw = m.numel()
        l1, tv = float(m.sum()), float(tabor_terms(m, p)[2])
        attack = float((common.predict(s.codes_of(common.stamp(x, m, p)), protos) == cls)
                       .float().mean())
        crop = float((common.predict(s.codes_of(x * (1 - m)), protos) == y).float().mean())
        q = (math.log(max(l1, 1e-6) / hw) + math.log(max(tv, 1e-6) / hw)
             - math.log(max(attack, floor)) - math.log(max(crop, floor) / orig))
        out.append({'l1': l1, 'tv': tv, 'attack': attack, 'crop': crop, 'score': q})
    return out, orig


def rescore(res, c, s, key):
    """A stored result scored anew (defend.py's reuse): its quality scores are computed from its
    saved masks if a run made before them lacks them (a function of the masks and the checkpoint,
    both under the result's stamp), then score()."""
    import os
    if 'quality' not in res and os.path.isfile(res.get('masks', '')):
        with np.load(res['masks']) as z:
            res = dict(res)
            res['quality'], res['quality_orig'] = quality(s, z['masks'], z['patterns'])
    return score(res, c, key)


def score(res, c, key='nc_statistic'):
    """The outlier statistics of a result (all of STATISTICS on the per-class norms, and 'quality'
    on the quality scores when the result has them; c[key] and nc_threshold flag). defend.py calls
    it again on a reused result: the statistic keys are not part of what the optimisation is made
    from."""
    norms = res['norms']
    every = {name: common.anomaly_index(norms, **kw) for name, kw in STATISTICS.items()}
    if 'quality' in res:
        every['quality'] = common.anomaly_index([q['score'] for q in res['quality']])
    stat = c[key]
    if stat not in every:
        names = list(STATISTICS) + ['quality']
        raise common.DefenseInputError(
            f"{key} must be one of {', '.join(names)}, got {stat!r}" if stat not in names else
            f"{key}={stat!r}: this result has no quality scores (no saved masks)")
    index, indices, _, mad = every[stat]
    values = [q['score'] for q in res['quality']] if stat == 'quality' else norms
    flagged = common.flagged_classes(values, indices, c['nc_threshold'])
    return dict(res, statistic=stat, threshold=c['nc_threshold'],
                anomaly_index=index, anomaly_indices={k: v[0] for k, v in every.items()},
                class_indices=[float(v) for v in indices], median=float(np.median(norms)),
                mad=mad, smallest_class=int(np.argmin(norms)), flagged_classes=flagged,
                model_flagged=bool(index > c['nc_threshold']),
                target_flagged=res['target'] in flagged)


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
        return (dist <= k / 8).float()

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
            'epochs': r['epochs'],
            'nearest_class': near, 'nearest_distance_bits': dist, 'masks': path}
