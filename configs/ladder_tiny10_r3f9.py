"""Rung R3f of the regime ladder on tiny-imagenet-10 (issue 11) with a stronger surrogate backbone,
for ladder.py: R3f (configs/ladder_tiny10_r3f.py: frozen trunks, a new hash layer on each, G of 48
epochs, the paper preset with one copy and with the official append x10) with the surrogate's
ResNet18 pretrained for 9 epochs instead of 3 (pretrain.py's default schedule). The victims keep
R3f's ResNet34 (3 epochs), so the only change from R3f is the surrogate's backbone.
    python pretrain.py --tag=e9                              # the surrogate's backbone, once
    python pretrain.py --backbone=resnet34 --epochs=3        # the victims' backbone, once
    python ladder.py configs/ladder_tiny10_r3f9.py
R1p on the same surrogate (the victim is its own frozen trunk + a new hash layer):
    python ladder.py configs/ladder_tiny10_r3f9.py --victim_presets=configs/ladder_r3_tiny.py,configs/ladder_r3f_tiny.py \
        --victim_args=--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64_e9.pth --victim_tag=r1p9
"""
base = 'configs/ladder_tiny10_r3f.py'  # R3f's victims, variants, presets, open sets and data preparation
rung = 'R3f, tiny-imagenet-10, surrogate backbone of 9 epochs: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34 trunk (frozen) + a new hash layer'
surrogate_args = ('configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py '
                  '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64_e9.pth --tag=r3f9')
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f9.pt --tag=r3f9e48'
variants = 'paper,paperappend10'
victim_tag = 'r3f9'
