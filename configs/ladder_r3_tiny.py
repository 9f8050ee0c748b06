"""Ladder rung R3 at tiny-imagenet-10 scale (issue 11): the surrogate (CSQ ResNet18) and the victim
(CSQ ResNet34, another architecture) both start from the Tiny ImageNet-200 pretrained weights
(pretrain.py; the GPU run of docs/RESULTS.md "Regime ladder") and are fine-tuned with the paper's
recipe (no augmentation, RMSprop 1e-5, weight decay 1e-5, D14/D15), as ImageNet-1k weights are in
the paper. The ten classes are Tiny ImageNet-200 classes, so the pretraining set contains them, as
ImageNet-1k contains ImageNet-100. Stack after configs/tiny_imagenet10.py:

    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r3_tiny.py --tag=r3           # surrogate
    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r3_tiny.py --backbone=resnet34 \
        --pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth --tag=r3_clean  # victim
Budget (our CPU choice): 30 epochs of the 1,000-image list at batch 32, 960 optimiser steps (the
paper's victims take about 10,000).
"""
pretrained = 'checkpoint/tiny-imagenet-200_pretrain_resnet18_64.pth'
small_input = False        # pretrain.py's standard stem
input_norm = 'imagenet'    # pretrain.py normalises with the ImageNet mean/std
augment = 'none'           # D14
optimizer = 'rmsprop'      # D15
lr = 1e-5
weight_decay = 1e-5
batch_size = 32
epochs = 30
eval_every = 0
