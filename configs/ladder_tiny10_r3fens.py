"""Rung R3f of the regime ladder on tiny-imagenet-10 (issue 11) with a surrogate ensemble, for
ladder.py: R3f (configs/ladder_tiny10_r3f.py: frozen trunks, a new hash layer on each, G of 48
epochs, the paper preset with one copy and with the official append x10) with G's hash term the
mean over two surrogates (train_tri_gen.py extra_surrogates): R3f's own (ResNet18 trunk of 3
pretraining epochs) and R3f9's (ResNet18 trunk of 9 epochs). The victims keep R3f's ResNet34
(3 epochs), so the only change from R3f is the ensemble.
    python pretrain.py --epochs=3 && python pretrain.py --tag=e9   # the surrogates' backbones, once
    python pretrain.py --backbone=resnet34 --epochs=3             # the victims' backbone, once
    python ladder.py configs/ladder_tiny10_r3f9.py    # the second surrogate (its first step) and R3f9
    python ladder.py configs/ladder_tiny10_r3fens.py
"""
base = 'configs/ladder_tiny10_r3f.py'  # R3f's surrogate, victims, presets, open sets and data preparation
rung = 'R3f, tiny-imagenet-10, G against a two-surrogate ensemble (ResNet18 trunks of 3 and 9 epochs, frozen, + hash layers); Tiny ImageNet-200 ResNet34 trunk (frozen) + a new hash layer'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3fens48'
gan_train_args = '--epochs=48 --extra_surrogates=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f9.pt'
variants = 'paper,paperappend10'
victim_tag = 'r3f_ens48'
