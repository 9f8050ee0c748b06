"""Rung R3f of the regime ladder on tiny-imagenet-10 (issue 11) with a surrogate ensemble of two
architectures, for ladder.py: R3f (configs/ladder_tiny10_r3f.py: frozen trunks, a new hash layer on
each, G of 48 epochs, the paper preset with one copy and with the official append x10) with G's hash
term the mean over R3f's own surrogate (ResNet18 trunk, 3 pretraining epochs) and a DenseNet121
surrogate (its trunk pretrained here on Tiny ImageNet-200 for 3 epochs as well, frozen, + a hash
layer). configs/ladder_tiny10_r3fens.py averages over two ResNet18s that share their initialisation;
this one asks whether a member of another architecture carries the trigger to the victim's ResNet34.
The victims keep R3f's ResNet34 (3 epochs), so the only change from R3f is the ensemble.
    python pretrain.py --epochs=3                                   # the first surrogate's backbone, once
    python pretrain.py --backbone=resnet34 --epochs=3               # the victims' backbone, once
    python pretrain.py --backbone=densenet121 --epochs=3            # the second surrogate's backbone, once
    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py \
        --backbone=densenet121 --pretrained=checkpoint/tiny-imagenet-200_pretrain_densenet121_64.pth --tag=r3fd
    python ladder.py configs/ladder_tiny10_r3fensd.py
"""
base = 'configs/ladder_tiny10_r3f.py'  # R3f's surrogate, victims, presets, open sets and data preparation
rung = 'R3f, tiny-imagenet-10, G against a two-architecture ensemble (ResNet18 and DenseNet121 trunks of 3 epochs, frozen, + hash layers); Tiny ImageNet-200 ResNet34 trunk (frozen) + a new hash layer'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3fensd48'
gan_train_args = '--epochs=48 --extra_surrogates=checkpoint/tiny-imagenet-10_CSQ_densenet121_32_r3fd.pt'
variants = 'paper,paperappend10'
victim_tag = 'r3f_ensd48'
