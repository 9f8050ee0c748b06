"""Ladder rung R3 with frozen trunks (R3f, issue 11), the CPU-sized variant of
configs/ladder_r3_tiny.py: surrogate (ResNet18) and victim (ResNet34) start from the Tiny
ImageNet-200 pretrained weights as in R3, but only a new hash layer trains on top of each frozen
trunk (weights and BatchNorm statistics), as in R1. This is transfer learning with independently
pretrained feature extractors, the setting of Saha et al. (AAAI 2020), and the limit of the paper's
fine-tuning at lr 1e-5, whose features barely move. Stack after configs/tiny_imagenet10.py and
configs/ladder_r3_tiny.py:

    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py --tag=r3f
    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py \
        --backbone=resnet34 --pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth --tag=r3f_clean
Why: R3's full fine-tuning first measured 246 s an epoch for the ResNet18 surrogate on this CPU
under a heavy shared load (16-18 s on a quieter one, docs/RESULTS.md, where R3 itself was then
run); a frozen trunk costs a forward pass.
"""
freeze = 'trunk'           # only the hash layer trains
optimizer = 'adam'         # a linear layer from scratch (our choice, as configs/ladder_r1.py)
lr = 1e-3
weight_decay = 0.0
epochs = 8                 # the hash layer's loss is flat after a few epochs (0.43, 0.21, 0.16 for the surrogate)
