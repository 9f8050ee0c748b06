"""What every defense shares (DARKHASH.md §5 "Shared setup"): the model under test and its saved
codes, the defender's clean subset, the clean and triggered queries, the class prototypes and the
code-based prediction, MAP / t-MAP, and the statistics the defenses report (AUROC, false
acceptance at a false rejection rate, the MAD anomaly index), plus the small pieces with
hand-checkable answers (blending, the mask parametrisation, the pruning mask, the last conv block).

A model is given by its run folder, results/{run}/ as CSQ.py / HashNet.py write it: results.json
(config, checkpoint path, lists, topK) and codes_{split}.npz (the codes of every evaluated list).
"""
import hashlib
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

import attack_common
import utils


class DefenseInputError(ValueError):
    """A bad input; defend.py prints it as one line and exits."""


# ------------------------------------------------------------------------------------------------
# statistics (pure functions, unit-tested against hand-computed cases)
# ------------------------------------------------------------------------------------------------

def anomaly_index(norms, consistency=1.4826, log=False, lower=False):
    """Neural Cleanse's MAD outlier statistic over per-class trigger norms.

    Returns (index of the smallest norm, per-class indices, median, MAD): index_c = |n_c - median|
    / (consistency * median(|n - median|)); 1.4826 makes the MAD a consistent estimate of the
    standard deviation for normal data (BB defense/nc.py). A zero MAD gives index 0 for values at
    the median and inf for the others.
    log: the same on ln(norm) (median and MAD of the log norms; README "Reproduction notes").
    lower: the MAD of the classes at or below the median only (the lower half of a "double MAD",
    the robust spread for a skewed sample seen from the side where NC looks for the outlier)."""
    n = np.asarray(norms, dtype=np.float64)
    if log:
        n = np.log(np.maximum(n, 1e-12))
    med = float(np.median(n))
    dev = np.abs(n - med)
    ref = dev[n <= med] if lower else dev
    mad = consistency * float(np.median(ref))
    if mad > 0:
        idx = dev / mad
    else:
        idx = np.where(dev > 0, np.inf, 0.0)
    return float(idx[int(np.argmin(n))]), idx, med, mad


def flagged_classes(norms, indices, threshold=2.0):
    """Classes whose norm is below the median and whose anomaly index exceeds the threshold."""
    n = np.asarray(norms, dtype=np.float64)
    med = np.median(n)
    return [int(i) for i in np.flatnonzero((n < med) & (np.asarray(indices) > threshold))]


def auroc(pos, neg):
    """Probability that a positive (triggered) score exceeds a negative (clean) one, ties 1/2
    (the Mann-Whitney U statistic / (n_pos n_neg)). Higher scores mean more suspicious."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind='stable')
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    for v in np.unique(allv):  # average ranks of ties
        m = allv == v
        ranks[m] = ranks[m].mean()
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def far_at_frr(clean, trig, frr):
    """Threshold = the clean scores' (1 - frr) quantile, an input is flagged when its score is above
    it (so about frr of the clean inputs are rejected); returns (FAR = fraction of triggered inputs
    not flagged, the threshold, the measured FRR)."""
    clean, trig = np.asarray(clean, np.float64), np.asarray(trig, np.float64)
    t = float(np.quantile(clean, 1 - frr))
    return float(np.mean(trig <= t)), t, float(np.mean(clean > t))


def detection_report(clean_scores, trig_scores):
    """AUROC and FAR at 1% and 5% FRR of a score where higher means triggered."""
    out = {'auroc': auroc(trig_scores, clean_scores)}
    for frr in (0.01, 0.05):
        far, t, got = far_at_frr(clean_scores, trig_scores, frr)
        key = f"{int(frr * 100)}"
        out[f"far_at_frr{key}"], out[f"threshold_frr{key}"], out[f"frr{key}_measured"] = far, t, got
    return out


def binary_entropy(p):
    """H2(p) in bits, elementwise, H2(0) = H2(1) = 0."""
    p = np.clip(np.asarray(p, np.float64), 0.0, 1.0)
    with np.errstate(divide='ignore', invalid='ignore'):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.nan_to_num(h, nan=0.0)


def label_entropy(hist):
    """Shannon entropy (bits) of a histogram (counts, any scale)."""
    h = np.asarray(hist, np.float64)
    p = h[h > 0] / h.sum()
    return float(-(p * np.log2(p)).sum())


# ------------------------------------------------------------------------------------------------
# image-space pieces
# ------------------------------------------------------------------------------------------------

def blend(x, overlays, mode):
    """STRIP's superimposition of one query x [3,H,W] on overlays [N,3,H,W]: 'add' = clip(x + o,
    0, 1) (the STRIP paper's addWeighted(1, 1), DARKHASH.md §5), 'mean' = (x + o) / 2."""
    if mode == 'add':
        return (x.unsqueeze(0) + overlays).clamp(0, 1)
    if mode == 'mean':
        return (x.unsqueeze(0) + overlays) / 2
    raise DefenseInputError(f"strip_blend must be 'add' or 'mean', got {mode!r}")


def mask_and_pattern(a, b):
    """Neural Cleanse's unconstrained parametrisation: m = tanh(a)/2 + 1/2 in (0, 1) ([1,H,W]),
    p = tanh(b)/2 + 1/2 ([3,H,W])."""
    return torch.tanh(a) / 2 + 0.5, torch.tanh(b) / 2 + 0.5


def stamp(x, m, p):
    """x' = (1 - m) x + m p (the mask broadcasts over the channels and the batch)."""
    return (1 - m) * x + m * p


def prune_mask(activation, fraction):
    """0/1 mask over channels that zeroes the round(fraction * C) channels of lowest mean activation
    (ties: the lower channel index first), as fine-pruning prunes the dormant neurons first."""
    act = np.asarray(activation, np.float64)
    n = int(round(fraction * len(act)))
    mask = np.ones(len(act), np.float32)
    mask[np.argsort(act, kind='stable')[:n]] = 0
    return mask


def last_block(model):
    """The last convolutional block (ResNet layer4, VGG/AlexNet/DenseNet features): its output is
    what fine-pruning masks and what Grad-CAM weights."""
    trunk = model.trunk
    if hasattr(trunk, 'body'):
        return trunk.body[7]
    return trunk.features


def pooled_head(model):
    """True when masking the last block's channels commutes with the rest of the trunk up to the
    pooled features (ResNet: avgpool; DenseNet: ReLU then avgpool), so the pruned model's output
    is hash_layer(trunk(x) * mask) and a pruning curve needs one pass over the images."""
    return hasattr(model.trunk, 'body') or not hasattr(model.trunk, 'fc')


def head_features(model, x):
    """What the pruning curve caches: pooled features (ResNet, DenseNet) or the last block maps."""
    if pooled_head(model):
        return model.trunk(x)
    return model.trunk.features(x)


def head_output(model, feats, mask):
    """Raw model output from head_features with a channel mask applied to the last block."""
    m = mask.to(feats.device)
    if pooled_head(model):
        return model.hash_layer(feats * m)
    t = model.trunk
    z = t.avgpool(feats * m.view(1, -1, 1, 1))
    return model.hash_layer(t.fc(torch.flatten(z, 1)))


# ------------------------------------------------------------------------------------------------
# digests of what a result is made from
# ------------------------------------------------------------------------------------------------



def digest(obj):
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# the model under test, its data and its codes
# ------------------------------------------------------------------------------------------------

def read_results(run_dir, role):
    path = os.path.join(run_dir, 'results.json')
    if not os.path.isfile(path):
        raise DefenseInputError(f"{role}: {path} not found; give the results folder of a finished "
                                f"CSQ.py / HashNet.py run")
    with open(path) as f:
        return json.load(f)


def saved_codes(run_dir, split, n, bits, role):
    """codes_{split}.npz of a run, checked against the list length and bit length."""
    path = os.path.join(run_dir, f"codes_{split}.npz")
    if not os.path.isfile(path):
        raise DefenseInputError(f"{role}: {path} not found: the model has no saved codes of its "
                                f"{split} list; evaluate it with CSQ.py / HashNet.py first")
    with np.load(path) as z:
        codes = z['codes']
    if codes.shape != (n, bits):
        raise DefenseInputError(f"{path}: codes of shape {codes.shape}, expected ({n}, {bits}) "
                                f"for {bits}-bit codes of its {n}-image list")
    return codes.astype(np.float32)


def predict(codes, protos):
    """y(x) = argmin_c d_H(b(x), h_c) = argmax_c <b(x), h_c> (the lower class index on ties)."""
    if isinstance(codes, np.ndarray):
        return np.argmax(codes @ np.asarray(protos).T, axis=1)
    return torch.argmax(codes @ protos.T, dim=1)


def prototypes(ckpt, db_codes, db_labels):
    """CSQ centres from the checkpoint's loss state, else sign(sum of the class's database codes)
    (DARKHASH.md §5; a zero sum reads +1). Returns (float tensor [C, K], source)."""
    centres = ckpt.get('loss', {}).get('centres') if isinstance(ckpt.get('loss'), dict) else None
    num_classes = db_labels.shape[1]
    if centres is not None and centres.shape[0] >= num_classes:
        return centres[:num_classes].float().clone(), 'csq_centres'
    s = db_labels.astype(np.float32).T @ db_codes
    return torch.tensor(np.where(s >= 0, 1.0, -1.0), dtype=torch.float32), 'database_sign_sum'


def balanced_subset(labels, fraction, seed, source):
    """A class-balanced seeded fraction of a list: round(fraction * n_c) images of each class c
    (single-label: the first positive class), in list order."""
    if not 0 < fraction <= 1:
        raise DefenseInputError(f"defender_fraction must be in (0, 1], got {fraction}")
    cls = labels.argmax(1)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(labels.shape[1]):
        members = np.flatnonzero((cls == c) & (labels.sum(1) > 0))
        k = int(round(fraction * len(members)))
        if k:
            chosen.append(rng.choice(members, k, replace=False))
    if not chosen:
        raise DefenseInputError(f"{source}: the defender subset is empty (defender_fraction="
                                f"{fraction} of every class rounds to 0 images)")
    return np.sort(np.concatenate(chosen))


def seeded_subset(n_total, n, seed):
    if n <= 0 or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


class Setup:
    """One model under test with everything the defenses read (module docstring).

    run_dir: its results folder. c: defend.py's config. trigger_path: the triggered query list
    (default: the model's own list named c['trigger']). bits: the bit length expected (the
    backdoored model's, for the clean control)."""

    def __init__(self, run_dir, c, role, device, trigger_path=None, bits=None, say=print):
        self.run_dir, self.role, self.device, self.c, self.say = run_dir, role, device, c, say
        res = read_results(run_dir, role)
        self.results, cfg = res, res['config']
        self.run = res.get('run', os.path.basename(os.path.normpath(run_dir)))
        self.bits = cfg['bits']
        if bits is not None and self.bits != bits:
            raise DefenseInputError(f"{role}: {run_dir} is a {self.bits}-bit model, expected "
                                    f"{bits} bits (the backdoored model's)")
        self.checkpoint = res['checkpoint']
        if not os.path.isfile(self.checkpoint):
            raise DefenseInputError(f"{role}: checkpoint {self.checkpoint} (named in {run_dir}/"
                                    f"results.json) not found")
        # one loader for every finished model (one-line exit for another backbone / bit length)
        self.model, self.meta = attack_common.load_hash_model(self.checkpoint, cfg['backbone'],
                                                              self.bits, device=device)
        ckpt = utils.load_checkpoint(self.checkpoint)  # the CSQ centres of its loss state
        self.transform = utils.build_transform(cfg['image_size'], cfg['resize_size'], 'none')
        self.topk = res.get('topk', -1)
        if 'lists' not in res:  # a darkhash.py run finished before it named its lists
            raise DefenseInputError(f"{role}: {run_dir}/results.json names no image lists; a "
                                    f"DarkHash run written before they existed gets them from "
                                    f"`python darkhash.py` with its preset again (no training)")
        lists = res['lists']
        self.lists = {'test': lists['test'], 'database': lists['database'],
                      'defender': os.path.join(cfg['data_dir'], 'train.txt')}
        if trigger_path is None:
            if c['trigger'] not in lists:
                raise DefenseInputError(f"{role}: {run_dir}/results.json has no query list named "
                                        f"{c['trigger']!r} (has {', '.join(sorted(lists))})")
            trigger_path = lists[c['trigger']]
        self.lists['trigger'] = trigger_path
        self.data = {}
        try:
            for name in ('test', 'database', 'trigger', 'defender'):
                self.data[name] = utils.ImageList(self.lists[name], transform=self.transform)
        except utils.ListError as e:
            raise DefenseInputError(f"{role}: {e}") from None
        self.num_classes = self.data['database'].labels.shape[1]
        for name in ('test', 'trigger', 'defender'):
            if self.data[name].labels.shape[1] != self.num_classes:
                raise DefenseInputError(f"{self.lists[name]}: labels of width "
                                        f"{self.data[name].labels.shape[1]}, expected "
                                        f"{self.num_classes} (the database's)")
        # the codes saved by the training run (the "before" figures), when their list is unchanged
        self.codes = {s: self.run_codes(s, [s]) for s in ('database', 'test')}
        own = [k for k, v in lists.items() if os.path.abspath(v) == os.path.abspath(trigger_path)]
        self.codes['trigger'] = self.run_codes('trigger', own)
        t = self.data['trigger'].labels
        targets = np.unique(t.argmax(1))
        if c['target'] >= 0:
            self.target = c['target']
        elif len(targets) == 1 and (t.sum(1) == 1).all():
            self.target = int(targets[0])
        else:
            raise DefenseInputError(f"{trigger_path}: labels are not one target class; "
                                    f"set target=...")
        self.protos, self.proto_source = prototypes(ckpt, self.codes['database'],
                                                    self.data['database'].labels)
        # the defender's clean subset (D_def) and the query subsets
        self.def_idx = balanced_subset(self.data['defender'].labels, c['defender_fraction'],
                                       c['seed'], self.lists['defender'])
        self.x_def = self.images('defender', self.def_idx)
        self.y_def = torch.tensor(self.data['defender'].labels[self.def_idx].argmax(1))
        test_cls = self.data['test'].labels.argmax(1)
        keep = np.flatnonzero(test_cls != self.target)  # target class left out (DARKHASH §5)
        self.clean_idx = keep[seeded_subset(len(keep), c['n_queries'], c['seed'])]
        self.trig_idx = seeded_subset(len(self.data['trigger']), c['n_queries'], c['seed'])

    def run_codes(self, split, names):
        """The run's saved codes of this list (under one of `names`), checked against its length
        and bit length; encoded anew when the run did not evaluate the list or the list (bytes,
        images) changed since (the provenance record inside the .npz, README "Reuse rule"). A run
        without the saved codes of its own database or test list is an error: its "before"
        figures would be a guess."""
        ds = self.data[split]
        now = dict(ds.record(), geometry=self.transform.geometry_key(),
                   checkpoint_stamp=utils.file_stamp(self.checkpoint))
        for name in names:
            path = os.path.join(self.run_dir, f"codes_{name}.npz")
            if split == 'trigger' and not os.path.isfile(path):
                continue
            if os.path.isfile(path):
                with np.load(path) as z:
                    why = utils.record_difference(utils.read_provenance(z), now, (
                        'list_sha1', 'images_sha1', 'n', 'geometry', 'checkpoint_stamp'))
                if why:
                    self.say(f"{self.role}: {self.lists[split]} changed since the run ({why}): "
                             f"encoding it")
                    return self.encode_list(split)
            return saved_codes(self.run_dir, name, len(ds), self.bits, self.role)
        self.say(f"{self.role}: encoding {self.lists[split]} (not among the run's evaluated lists)")
        return self.encode_list(split)

    # -- images and codes --------------------------------------------------------------------
    def images(self, split, idx):
        ds = self.data[split]
        return torch.stack([ds[int(i)][0] for i in idx])

    def loader(self, split):
        return torch.utils.data.DataLoader(self.data[split], batch_size=self.c['batch_size'],
                                           shuffle=False, num_workers=self.c['num_workers'])

    @torch.no_grad()
    def over_list(self, split, fn):
        """fn(batch on the device) over a whole list, concatenated on the CPU."""
        self.model.eval()
        return torch.cat([fn(x.to(self.device)).cpu() for x, _, _ in self.loader(split)])

    def encode_list(self, split):
        return self.over_list(split, lambda x: torch.sign(self.model(x))).numpy()

    @torch.no_grad()
    def codes_of(self, x, model=None):
        """sign(f(x)) of an image tensor on the CPU, in batches (float, {-1, 0, 1})."""
        model = model or self.model
        model.eval()
        bs = self.c['batch_size']
        return torch.cat([torch.sign(model(x[i:i + bs].to(self.device))).cpu()
                          for i in range(0, len(x), bs)])

    # -- metrics ---------------------------------------------------------------------------------
    def map_tmap(self, codes):
        """MAP of the test queries and t-MAP of the triggered ones against the database, from a
        dict of codes {'test', 'trigger', 'database'} (evaluate.py, the run's topK)."""
        from evaluate import mean_average_precision, targeted_map
        db, dbl = codes['database'], self.data['database'].labels
        ties = self.c['ties']
        m = mean_average_precision(codes['test'], db, self.data['test'].labels, dbl, self.topk,
                                   ties=ties)
        t = targeted_map(codes['trigger'], db, dbl, self.target, self.topk, ties=ties)
        return {'map': float(m), 't_map': float(t)}

    def input_keys(self, reads):
        """What a defense's result depends on: the checkpoint's bytes, the lists it reads (file,
        images' size and mtime, geometry) and the defender subset's list."""
        keys = {'checkpoint_sha1': self.checkpoint_sha1()}
        for name in ('defender',) + tuple(reads):
            ds = self.data[name]
            keys[name] = {'list': self.lists[name],
                          'key': utils.ImageCache.key(ds.list_file, ds.paths, self.transform)}
        return keys

    def checkpoint_sha1(self):
        if not hasattr(self, '_sha1'):
            self._sha1 = utils.file_sha1(self.checkpoint)
        return self._sha1


def centre_loss(out, protos_y, lambda_q=1e-4):
    """The CSQ objective towards the prototypes (CSQ.py's loss for single-label data, SPEC D15):
    BCE((u + 1)/2, (h_y + 1)/2) + lambda_q mean((|u| - 1)^2), u = tanh(out)."""
    u = torch.tanh(out.float())
    return (F.binary_cross_entropy((u + 1) / 2, (protos_y + 1) / 2)
            + lambda_q * (u.abs() - 1).pow(2).mean())


def fine_tune(model, x, y, protos, c, epochs, device, mask=None, say=print, what='fine-tune'):
    """Train every layer on (x, y) with the centre loss; with `mask`, the last block's channels
    stay pruned (a forward hook). Returns the per-epoch mean losses."""
    if not len(x):
        raise DefenseInputError("the defender subset is empty")
    hook = None
    if mask is not None:
        mk = mask.to(device).view(1, -1, 1, 1)
        hook = last_block(model).register_forward_hook(lambda mod, i, o: o * mk)
    params = [p for p in model.parameters()]
    for p in params:
        p.requires_grad_(True)
    name = c['ft_optimizer']
    if name == 'rmsprop':
        opt = torch.optim.RMSprop(params, lr=c['ft_lr'], weight_decay=c['ft_weight_decay'])
    elif name == 'adam':
        opt = torch.optim.Adam(params, lr=c['ft_lr'], weight_decay=c['ft_weight_decay'])
    else:
        raise DefenseInputError(f"ft_optimizer must be rmsprop or adam, got {name!r}")
    g = torch.Generator().manual_seed(c['seed'])
    protos = protos.to(device)
    losses = []
    bs = c['ft_batch_size']
    if c['ft_bn'] not in ('train', 'frozen'):
        raise DefenseInputError(f"ft_bn must be 'train' or 'frozen', got {c['ft_bn']!r}")
    for ep in range(epochs):
        model.train()
        if c['ft_bn'] == 'frozen':  # keep the running statistics of the victim's training data
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        perm = torch.randperm(len(x), generator=g)
        tot = 0.0
        for i in range(0, len(x), bs):
            j = perm[i:i + bs]
            if len(j) < 2:  # BatchNorm needs two images
                continue
            out = model(x[j].to(device))
            loss = centre_loss(out, protos[y[j].to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(j)
        losses.append(tot / len(x))
        say(f"  {what} epoch {ep + 1}/{epochs} loss {losses[-1]:.4f}")
    model.eval()
    for p in params:
        p.requires_grad_(False)
    if hook is not None:
        hook.remove()
    return losses
