"""How far can a small perturbation move the surrogate's hash codes? (diagnostic for the attack)

For the training images of the target class, a per-image PGD attack (L-inf budget eps, `steps`
sign steps) minimises the relaxed Hamming distance (K - tanh(F(x')) . c) / 2 of the surrogate F to
a target code c, for two choices of c:
  - LabCLN's centroid code of the confusing label (what train_tri_gen.py's Hamming loss pulls to),
  - the surrogate's own CSQ centre of the confusing class (a code F can actually output).
It prints the mean Hamming distance of sign(F(x')) to each code before and after, per budget. If
a per-image attack cannot reach the code within the budget, a generator trained for that budget
cannot either.

    python bench/attack_probe.py                       # toy demo (run `make demo` first)
    python bench/attack_probe.py --eps=8,16 --steps=20
"""
import glob
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from hash_models import build_hash_model  # noqa: E402
from labcln import confusing_code, load_labcln  # noqa: E402

surrogate = 'checkpoint/toy_CSQ_resnet18_32.pt'   # a CSQ checkpoint written by CSQ.py
labcln = 'checkpoint/toy_labcln_32_paper_*.pt'     # LabCLN written by train_tri_gen.py (glob)
train_list = 'data/toy/train.txt'
image_size = 32
resize_size = 0
target = 0                # images of this class are perturbed (the poisons' class)
conf = 2                  # the confusing class whose codes are the goal
n_images = 100
eps = '8,16,32'           # L-inf budgets in 1/255 units
steps = 40
seed = 0


def hamming(codes, c):
    return ((codes.shape[1] - codes @ c) / 2).mean().item()


if __name__ == '__main__':
    utils.configure(globals())
    torch.manual_seed(seed)
    ck = utils.load_checkpoint(surrogate)
    meta = ck['meta']
    if meta.get('method') != 'CSQ':
        sys.exit(f"error: {surrogate}: a CSQ checkpoint is needed (its centres are a goal)")
    net = build_hash_model(meta['backbone'], meta['bits'], input_norm=meta['input_norm'],
                           small_input=meta['small_input'])
    net.load_state_dict(ck['model'])
    net.eval().requires_grad_(False)
    found = sorted(glob.glob(labcln))
    if not found:
        sys.exit(f"error: no LabCLN checkpoint matches {labcln} (run train_tri_gen.py first)")
    lab, _ = load_labcln(found[0], 'cpu')
    num_classes = meta['num_classes']
    _, h_c = confusing_code(lab, torch.eye(num_classes)[conf])
    goals = {'LabCLN code': h_c.float(), 'CSQ centre': ck['loss']['centres'][conf].float()}
    print(f"LabCLN code vs CSQ centre of class {conf}: "
          f"{hamming(goals['CSQ centre'][None], goals['LabCLN code']):.0f} of {meta['bits']} bits")

    data = utils.ImageList(train_list, transform=utils.build_transform(image_size, resize_size))
    idx = [i for i in range(len(data)) if data.labels[i, target]][:n_images]
    x = torch.stack([data[i][0] for i in idx])
    with torch.no_grad():
        clean = torch.sign(net(x))
    for name, c in goals.items():
        print(f"{name}: clean images at {hamming(clean, c):.1f} bits")
        for e in (float(v) / 255 for v in eps.split(',')):
            delta = torch.zeros_like(x, requires_grad=True)
            for _ in range(steps):
                u = torch.tanh(net((x + delta).clamp(0, 1)))
                loss = ((meta['bits'] - u @ c) / 2).sum()
                grad, = torch.autograd.grad(loss, delta)
                with torch.no_grad():
                    delta -= 2.5 * e / steps * grad.sign()
                    delta.clamp_(-e, e)
            with torch.no_grad():
                adv = torch.sign(net((x + delta).clamp(0, 1)))
            print(f"  eps {e * 255:.0f}/255, {steps} steps: {hamming(adv, c):.1f} bits "
                  f"({len(idx)} images of class {target})")
