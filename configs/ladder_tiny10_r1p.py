"""Rung R1 on the pretrained surrogate (R1p) of the regime ladder on tiny-imagenet-10 (issue 11), for
ladder.py: the surrogate is the Tiny ImageNet-200 ResNet18 trunk, frozen, with a 32-bit hash layer
trained on tiny-imagenet-10 (configs/ladder_r3_tiny.py + configs/ladder_r3f_tiny.py, tag r3f); the
victim is the same frozen trunk with a new hash layer trained on the poisoned list (the same recipe
and seed, so the clean victim is the surrogate itself): the transfer-learning setting where
clean-label feature-collision attacks are documented to work, and the most favourable rung here.
    python ladder.py configs/ladder_tiny10_r1p.py                 # every variant, the oracle too
The 'oracle' row is not an attack (per-image PGD for every poison and every triggered query, at
G's 8/255): it bounds what an image-conditional G with goal_code=surrogate could reach.
G and the attacks: configs/tiny_attack.py against that surrogate, tagged r3f, as on R2p (shared).
"""
base = 'configs/ladder_tiny10_base.py'  # dataset and attack presets, open sets, data preparation
rung = 'R1p, tiny-imagenet-10: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; victim = the same frozen trunk + a new hash layer'
surrogate_args = 'configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py --tag=r3f'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3f'
victim_presets = 'configs/ladder_r3_tiny.py,configs/ladder_r3f_tiny.py'
victim_tag = 'r1p'
variants = 'paper,gsur,conftarget,append10,badnets,oracle'
