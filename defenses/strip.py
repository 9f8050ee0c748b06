"""STRIP for hashing (Gao et al. 2019; BB detection_infer/strip.py; DARKHASH.md §5 STRIP-Hash).

Each query x is superimposed on strip_n images of the defender's subset (common.blend, seeded
draw) and the blended copies are encoded. A trigger that dominates the model keeps the copies'
codes alike, a clean query's copies drift towards their overlays' classes:
  - H_bit (primary) = (1/K) sum_k H2(p_k), p_k = fraction of the copies with bit k = +1;
  - H_label (secondary) = entropy of the class histogram of the top-strip_topk database items
    retrieved by all copies together (pooled over the copies; the run's saved database codes).
Low entropy means triggered, so the detection score is -H. An input is flagged below the clean
queries' 1% or 5% quantile: FAR (triggered queries accepted) at those FRRs, and AUROC.
"""
import numpy as np
import torch

from . import common


def entropies(s, x, overlays, mode, db, db_labels, topk):
    """(H_bit, H_label) of one query x [3,H,W] against overlays [N,3,H,W]."""
    codes = s.codes_of(common.blend(x, overlays, mode)).numpy()
    p = (codes > 0).mean(0)
    h_bit = float(common.binary_entropy(p).mean())
    ip = codes @ db.T  # larger inner product = smaller Hamming distance; ties: database order
    top = np.argsort(-ip, axis=1, kind='stable')[:, :topk]
    hist = db_labels[top.ravel()].sum(0)
    return h_bit, common.label_entropy(hist)


def run(s, c, say):
    from tqdm import tqdm
    gen = np.random.default_rng(c['seed'] + 1)
    db, dbl = s.codes['database'], s.data['database'].labels.astype(np.float64)
    out = {}
    for name, split, idx in (('clean', 'test', s.clean_idx), ('triggered', 'trigger', s.trig_idx)):
        x = s.images(split, idx)
        hb, hl = [], []
        for i in tqdm(range(len(x)), desc=f"STRIP {s.role} {name}", leave=False):
            ov = s.x_def[torch.from_numpy(gen.choice(len(s.x_def), c['strip_n'],
                                                     replace=len(s.x_def) < c['strip_n']))]
            a, b = entropies(s, x[i], ov, c['strip_blend'], db, dbl, c['strip_topk'])
            hb.append(a)
            hl.append(b)
        out[name] = {'h_bit': hb, 'h_label': hl}
    res = {'n_clean': len(s.clean_idx), 'n_triggered': len(s.trig_idx), 'n_blend': c['strip_n'],
           'blend': c['strip_blend']}
    for stat in ('h_bit', 'h_label'):
        clean, trig = np.array(out['clean'][stat]), np.array(out['triggered'][stat])
        rep = common.detection_report(-clean, -trig)
        rep.update(mean_clean=float(clean.mean()), mean_triggered=float(trig.mean()))
        res[stat] = rep
        say(f"  STRIP {stat}: AUROC {rep['auroc']:.3f}  FAR@1%FRR {rep['far_at_frr1']:.3f}  "
            f"FAR@5%FRR {rep['far_at_frr5']:.3f}  (mean clean {rep['mean_clean']:.3f}, "
            f"triggered {rep['mean_triggered']:.3f})")
    res['scores'] = out
    return res
