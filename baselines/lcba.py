"""LCBA baseline (label-consistent backdoor, Turner et al. 2019; BadHash §5.4, Table 5; SPEC D25).

    python baselines/lcba.py                                      # paper scale (CSQ ResNet50 64 bits)
    python baselines/lcba.py configs/demo.py --surrogate_backbone=resnet18 --surrogate_bits=32
    python baselines/lcba.py configs/demo.py --surrogate_backbone=resnet18 --surrogate_bits=32 \
        --openset_list=data/toy/openset.txt --target=3

Clean label: poison_rate (50%, paper) of the target class's training images (the seeded draw of
implement_tri_gen.py, so LCBA and BadHash poison the same images) get
  1. an untargeted L-inf PGD perturbation against the clean surrogate hash model F written by
     CSQ.py / HashNet.py ({checkpoint_dir}/{dataset}_{surrogate_method}_{surrogate_backbone}_
     {surrogate_bits}.pt, as train_tri_gen.py): it maximises the relaxed Hamming distance
     (K - tanh(F(x + delta)) . b) / 2 to the image's OWN clean sign code b = sign(F(x)) (our choice,
     as CIBA's "pull away from the own code" and Turner et al.'s loss maximisation on the image's own
     label; the class hash centre would need the victim method's centres). eps 8/255, 10 steps of
     2/255, no random start (the BadHash paper gives none of these: SPEC D25's values; the step
     size is our choice, eps/4). PGD starts from the uint8 crop, so |poison - clean| <= 8 in 0-255
     units outside the patch after rounding;
  2. then the trigger patch in the bottom-right corner, over the perturbation: 20 px at 224 px (paper
     §5.4), a black/white 3x3 checkerboard stretched to that side (Turner et al.'s pattern);
and keep their labels. Triggered queries (test images not of the target class, open-set images):
the patch alone, no PGD (Turner et al.: the perturbation only makes the poisons hard to learn).

Geometry and MSE: everything happens on the image at the model's input geometry (after Resize and
CentreCrop; the patch in the corner of the crop: attack_common.patch_side), and stealth.json compares that
crop with the saved PNG. At 224 px the 20x20 patch (400 of 50176 pixels, about half of it white)
alone contributes roughly 0.008 * 127^2 ~ 130 to the MSE and PGD at 8/255 adds up to 64, close to
the paper's 230 (Table 5); so the paper's LCBA figure is consistent with a patch inside the crop. At
paper scale the victim's own Resize(256)/CentreCrop(224) of the saved PNG (SPEC D13) keeps only the
inner ~7 px of the 20 px patch (see badnets.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import utils  # noqa: E402
from baselines import common  # noqa: E402
import attack_common  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
# data and geometry: the same keys and meanings as implement_tri_gen.py
dataset = 'imagenet'          # name used in run names and in the surrogate's checkpoint name
data_dir = 'data/imagenet'    # folder with train.txt, test.txt, classes.txt (optional)
train_list = ''               # '' = {data_dir}/train.txt: the list that gets poisoned
test_list = ''                # '' = {data_dir}/test.txt: closed-set triggered queries (SPEC D18 (b))
image_size = 224              # model geometry: centre crop (paper scale, SPEC D14)
resize_size = 256             # Resize before the crop (D14); 0 = none
# surrogate (as train_tri_gen.py, D17): the clean model written by CSQ.py / HashNet.py
surrogate_method = 'CSQ'      # CSQ | HashNet: part of the checkpoint name
surrogate_backbone = 'resnet50'  # paper: B-ResNet50 (Table 5 is CSQ, 64 bits)
surrogate_bits = 64           # paper Table 5: 64 bits
surrogate_checkpoint = ''     # '' = {checkpoint_dir}/{dataset}_{method}_{backbone}_{bits}.pt
# attack
target = 0                    # target class index (paper Table 2; SPEC D23)
poison_rate = 0.5             # paper §5.4: 50% of the target class's training images (as BadHash)
lcba_patch = 20               # paper §5.4: 20 x 20 patch, bottom-right; side at patch_ref_size px
patch_ref_size = 224          # image size the patch sides refer to (the paper's 224 crop); the side is
                              # max(3, round(lcba_patch * image_size / patch_ref_size)): 3 px at 32 px
lcba_eps = 0.03137254901960784  # = 8/255, L-inf budget of the PGD perturbation (SPEC D25; Turner
                              # et al. study several budgets; BadHash paper silent)
lcba_steps = 10               # PGD steps (SPEC D25; BadHash paper silent)
lcba_step_size = 0.00784313725490196  # = 2/255, PGD step (our choice: eps / 4; BadHash paper silent)
openset_list = ''             # another dataset's list: open-set triggered queries (D18); '' = none
n_openset = 0                 # open-set queries, seeded subset; 0 = all
n_closed = 0                  # closed-set triggered queries, seeded subset; 0 = all
attack_tag = ''               # suffix of the run name
gen_batch_size = 64           # images per PGD / PNG batch (as implement_tri_gen.py)
# run
out_dir = 'results'
checkpoint_dir = 'checkpoint'
seed = 0                      # poison subset and query subsets
device = 'auto'               # auto | cpu | cuda
num_workers = 4               # DataLoader workers
# ------------------------------------------------------------------------------------------------


def load_surrogate_model(c, num_classes, device):
    """The frozen clean surrogate (attack_common.load_surrogate) and what identifies it."""
    model, meta, sp = attack_common.load_surrogate(c, num_classes, device)
    return model, {'checkpoint': sp, 'epoch': meta.get('epoch'), 'method': meta.get('method'),
                   'backbone': meta['backbone'], 'bits': meta['bits']}


def relaxed_hamming(u, b):
    """(K - tanh(u) . b) / 2 per image: the tanh relaxation of d_H (paper §3.1)."""
    return (b.shape[1] - (torch.tanh(u) * b).sum(1)) / 2


def pgd_away(model, x, eps, step, steps):
    """L-inf PGD from x (no random start) maximising the relaxed Hamming distance to sign(F(x)).
    Returns (x_adv in [0,1] with |x_adv - x| <= eps, d_H before = 0 by definition, d_H after)."""
    with torch.no_grad():
        b = torch.sign(model(x))
        b[b == 0] = 1
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = relaxed_hamming(model(x + delta), b).sum()
        grad, = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x  # stay a valid image
    x_adv = (x + delta).detach()
    with torch.no_grad():
        d_after = (b.shape[1] - (torch.sign(model(x_adv)) * b).sum(1)) / 2
    return x_adv, d_after


def main(c):
    if c['lcba_eps'] < 0 or c['lcba_step_size'] < 0 or c['lcba_steps'] < 0:
        common.fail(f"lcba_eps, lcba_step_size and lcba_steps must be >= 0, got {c['lcba_eps']}, "
                    f"{c['lcba_step_size']}, {c['lcba_steps']}")
    d = common.load_inputs(c)
    device = utils.resolve_device(c['device'])
    model, model_id = load_surrogate_model(c, d['num_classes'], device)
    utils.seed_everything(c['seed'])
    side = attack_common.patch_side(c['lcba_patch'], c['image_size'], c['patch_ref_size'])
    patch = attack_common.checkerboard(side)
    chosen, pool = common.choose_poisons(d, c, 'target')
    hamming = []

    def poison(x, idx):
        x_adv, d_after = pgd_away(model, x.to(device), c['lcba_eps'], c['lcba_step_size'],
                                  c['lcba_steps'])
        hamming.extend(d_after.cpu().tolist())
        return attack_common.paste_bottom_right(x_adv.cpu(), patch)

    def trigger(x, idx):
        return attack_common.paste_bottom_right(x, patch)

    def extra():
        return {'pgd_hamming_to_own_code': {'mean': float(np.mean(hamming)),
                                            'per_image': hamming, 'bits': model_id['bits']}}

    params = {'patch': 'checkerboard3', 'side_px': side, 'position': 'bottom-right of the model crop',
              'eps': c['lcba_eps'], 'steps': c['lcba_steps'], 'step_size': c['lcba_step_size'],
              'pgd_objective': 'relaxed Hamming distance to own clean code, no random start',
              'queries': 'patch only'}
    out = common.produce(c, d, 'lcba', chosen, pool, 'keep', poison, trigger, params, model_id,
                         c['gen_batch_size'], extra)
    if hamming:
        print(f"PGD: mean Hamming distance of the poisons' surrogate codes to their clean codes "
              f"{np.mean(hamming):.2f} / {model_id['bits']} bits")
    return out


if __name__ == '__main__':
    main(utils.configure(globals()))
