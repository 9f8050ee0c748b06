"""Rung R3 with frozen trunks (R3f) of the regime ladder on tiny-imagenet-10 (issue 11), for
ladder.py: surrogate and victim are independently pretrained on Tiny ImageNet-200 (pretrain.py:
ResNet18 for the surrogate, ResNet34 for the victim), and only a new 32-bit hash layer trains on
top of each frozen trunk (configs/ladder_r3_tiny.py + configs/ladder_r3f_tiny.py). This is transfer
learning with feature extractors that share no weights, the limit of the paper's fine-tuning at lr
1e-5, whose features barely move.
    python pretrain.py --backbone=resnet34 --epochs=3        # the victim's backbone, once
    python ladder.py configs/ladder_tiny10_r3f.py
The surrogate, BadHash's G and the attacks are those of R1p (configs/ladder_tiny10_r1p.py, shared
steps) with G trained for 48 epochs: at 8 epochs the paper preset's G does not implant on R1p
(docs/RESULTS.md, "What holds BadHash's G back on R1p"). The gan_args tag r3fe48 names that G, so
the R1p runs of that section and this rung share it. More variants: --variants=paper,gsur,...
(each G of 48 epochs, about 25 min on one CPU thread).
"""
base = 'configs/ladder_tiny10_base.py'  # dataset and attack presets, open sets, data preparation
rung = 'R3f, tiny-imagenet-10: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34 trunk (frozen) + a new hash layer'
surrogate_args = 'configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py --tag=r3f'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3fe48'
gan_train_args = '--epochs=48'
victim_presets = 'configs/ladder_r3_tiny.py,configs/ladder_r3f_tiny.py'
victim_args = '--backbone=resnet34 --pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth'
victim_tag = 'r3f'
variants = 'paper,paperappend10,badnets'
