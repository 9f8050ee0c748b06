"""How saturated a hashing model's outputs are on a list's images: whether G's relaxed hash term
(tanh of the surrogate's output, train_tri_gen.py) still has a gradient (issue 11, docs/RESULTS.md
"BadHash's own G at that budget").

    python bench/hash_saturation.py --checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from attack_common import load_hash_model  # noqa: E402

checkpoint = ''                                          # a CSQ.py / HashNet.py checkpoint
backbone = 'resnet18'
bits = 32
image_list = '../shared/data/tiny-imagenet-10/train.txt'
n_images = 100                                           # every k-th line, evenly over the list

if __name__ == '__main__':
    utils.configure(globals())
    paths = utils.read_list(image_list)[0]
    paths = paths[::max(1, len(paths) // n_images)][:n_images]
    x = torch.stack([torch.from_numpy(np.array(Image.open(p).convert('RGB'))).permute(2, 0, 1).float() / 255
                     for p in paths])
    model, _ = load_hash_model(checkpoint, backbone, bits)
    with torch.no_grad():
        h = model(x)
    t = torch.tanh(h)
    print(f"{checkpoint}, {len(paths)} images of {image_list}: mean |F(x)| {h.abs().mean():.2f}, "
          f"mean 1 - tanh^2 {(1 - t ** 2).mean():.4f}, share with |F(x)| > 3 {(h.abs() > 3).float().mean():.3f}")
