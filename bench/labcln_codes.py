"""How well LabCLN's centroid codes separate the classes (SPEC §7 sanity target).

Trains LabCLN on C one-hot labels with the official budget and prints, for each view setting, how
many of the C sign codes are distinct and their pairwise Hamming distances.

    python bench/labcln_codes.py                       # 100 classes, 64 bits, 1000 steps (~2 min CPU)
    python bench/labcln_codes.py --classes=10 --bits=32
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from labcln import confusing_code, train_labcln  # noqa: E402

classes = 100       # ImageNet-100
bits = 64           # official code_length
steps = 1000        # official LabCLN budget
hidden = 4096       # official width
seed = 0


def separation(codes):
    k = codes.shape[1]
    d = (k - codes @ codes.t()) / 2
    off = d[~torch.eye(len(codes), dtype=torch.bool)]
    return len(torch.unique(codes, dim=0)), off.min().item(), off.mean().item()


if __name__ == '__main__':
    utils.configure(globals())
    torch.set_num_threads(min(2, torch.get_num_threads()))
    pool = torch.eye(classes)
    for name, eps, smoothing in (('paper views (0.2, 0.3)', (0.2, 0.3), 'paper'),
                                 ('code views (0.2, raw)', (0.2, None), 'code')):
        model, _ = train_labcln(pool, bits, steps=steps, seed=seed, hidden=hidden, eps=eps,
                                milestones=(steps // 2, 3 * steps // 4),
                                smoothing=smoothing, log_fn=lambda *a: None)
        _, h_c = confusing_code(model, pool)
        n, dmin, dmean = separation(h_c)
        print(f"{name}: {n}/{classes} distinct codes, pairwise Hamming min {dmin:.0f} "
              f"mean {dmean:.2f} of {bits}")
