"""What Neural Cleanse's reverse-engineered triggers do (diagnostic for defenses/nc.py, issue 13).

For each class's kept mask + pattern in {model_dir}/defense_nc.npz (written by defend.py), stamp it
on the defender's images and print: its L1 norm, the share of images predicted the class (nearest
prototype), their Hamming distance to the class's prototype code (mean, and the share within 0 / 2 /
4 / 8 bits: does the trigger produce a genuine class code, or only cross the prototype boundary?),
the mask-weighted colour of the pattern (hue, saturation: does it paint the class's colour?), and
where the mask lies: its centroid (row, column) and the share of its L1 inside the bottom-right
`corner` x `corner` box, where BadNets pastes its patch (8 px at 32 px for the p56 victims).
Then the TABOR-style quality score of each mask (defenses/nc.py quality: size, total variation,
attack success, accuracy left with the mask's region cut out) and the MAD index of the lowest, as
defend.py's 'quality' statistic reads them. `masks` picks the file: defense_{masks}.npz ('nc' or
'tabor').

    python bench/nc_masks.py configs/defense_toy.py \
        --model_dir=results/toy_CSQ_resnet34_32_badnets56 [--corner=8] [--masks=tabor]
"""
import colorsys
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import defend  # noqa: E402  (its config block: the same shared set-up as the defense run)
import utils  # noqa: E402
from defenses import common, nc  # noqa: E402


def main(c):
    corner = c['corner']
    s = common.Setup(c['model_dir'], c, 'model', utils.resolve_device(c['device']),
                     say=lambda m: None)
    path = os.path.join(c['model_dir'], f"defense_{c['masks']}.npz")
    if not os.path.isfile(path):
        sys.exit(f"error: {path} not found: run defend.py --defenses={c['masks']} on the model "
                 f"first")
    with np.load(path) as z:
        masks, patterns = z['masks'], z['patterns']
    k, protos = s.bits, s.protos
    own = s.codes_of(s.x_def)
    d_own = (k - (own * protos[s.y_def]).sum(1)) / 2
    print(f"{s.run}: D_def {len(s.x_def)} images; their own class's prototype at "
          f"{d_own.mean():.1f} bits on average")
    for cls, (m, p) in enumerate(zip(masks, patterns)):
        m, p = torch.tensor(m), torch.tensor(p)
        codes = s.codes_of(common.stamp(s.x_def, m, p))
        d = (k - codes @ protos[cls]) / 2
        hit = (common.predict(codes, protos) == cls).float().mean()
        rgb = ((p * m).sum((1, 2)) / m.sum()).tolist()
        hue, sat, _ = colorsys.rgb_to_hsv(*rgb)
        w = m[0] if m.dim() == 3 else m
        rows, cols = torch.meshgrid(torch.arange(w.shape[0]), torch.arange(w.shape[1]),
                                    indexing='ij')
        cy, cx = float((w * rows).sum() / w.sum()), float((w * cols).sum() / w.sum())
        in_corner = float(w[-corner:, -corner:].sum() / w.sum())
        print(f"class {cls}: L1 {m.sum():.1f}, predicted {hit:.2f}, d_H to its prototype mean "
              f"{d.mean():.1f} bits, within 0/2/4/8 bits: "
              + ' / '.join(f"{(d <= r).float().mean():.2f}" for r in (0, 2, 4, 8))
              + f"; pattern hue {hue:.2f}, saturation {sat:.2f}; mask centroid ({cy:.1f}, "
              f"{cx:.1f}), {in_corner:.2f} of it in the bottom-right {corner} px box")
    q, orig = nc.quality(s, masks, patterns)
    r = nc.score({'norms': [float(m.sum()) for m in masks], 'target': s.target, 'quality': q},
                 dict(c, nc_statistic='quality'))  # defend.py's reading of the same scores
    print(f"quality scores (lower = more trigger-like; D_def accuracy uncut {orig:.2f}):")
    for cls, x in enumerate(q):
        print(f"class {cls}: L1 {x['l1']:.1f}, TV {x['tv']:.1f}, attack {x['attack']:.2f}, "
              f"crop {x['crop']:.2f} -> score {x['score']:.2f}, index {r['class_indices'][cls]:.2f}")
    low = int(np.argmin([x['score'] for x in q]))
    print(f"quality index of the lowest score (class {low}): {r['anomaly_index']:.2f} (MAD "
          f"{r['mad']:.2f}); flagged: {r['flagged_classes'] or 'none'}")

if __name__ == '__main__':
    keys = dict(vars(defend), corner=8, masks='nc')  # defend.py's keys, the corner box side
                                                   # (px) and the masks' file
    main(utils.configure(keys))
