"""Rung R3f of the regime ladder on tiny-imagenet-10 (issue 11) with both backbones pretrained for 9
epochs, for ladder.py: R3f9 (configs/ladder_tiny10_r3f9.py: the surrogate's ResNet18 trunk of 9
epochs, G of 48 epochs, one copy and the official append x10) with the victims' ResNet34 trunk also
of 9 epochs instead of 3 (pretrain.py's default schedule), so surrogate and victims are of the
same pretraining budget.
    python pretrain.py --tag=e9 && python pretrain.py --backbone=resnet34 --tag=e9   # once
    python ladder.py configs/ladder_tiny10_r3f99.py
Every layer of the victims fine-tuned (rung R3):
    python ladder.py configs/ladder_tiny10_r3f99.py --variants=paper --victim_presets=configs/ladder_r3_tiny.py --victim_tag=r3g99
"""
base = 'configs/ladder_tiny10_r3f9.py'  # R3f9's surrogate, G, attacks, presets, open sets and data preparation
rung = 'R3f, tiny-imagenet-10, both backbones of 9 epochs: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34 trunk (frozen) + a new hash layer'
victim_args = '--backbone=resnet34 --pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64_e9.pth'
victim_tag = 'r3f99'
