"""Rung R1 of the regime ladder on the Tiny ImageNet-100 protocol (issue 11), for ladder.py: the
victim is the surrogate's own frozen trunk with a new 64-bit hash layer trained on the poisoned list.
    python ladder.py configs/ladder_tiny100_r1.py
Surrogate, attacks and data: configs/ladder_tiny100_base.py (Table 5's CPU preset on the
9-epoch backbone). Victims:
configs/ladder_r1.py cut to 10 epochs of the 10,000 images (our CPU budget; only the hash layer
trains).
"""
base = 'configs/ladder_tiny100_base.py'  # dataset and attack presets, G's tag, data preparation
rung = "R1, Tiny ImageNet-100: Tiny ImageNet-200 ResNet18 surrogate; its frozen trunk + a new hash layer"
victim_presets = 'configs/ladder_r1.py'
victim_args = '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64_e9.pth --init_from=checkpoint/tiny-imagenet-100_CSQ_resnet18_64_e9.pt --epochs=10'
victim_tag = 'r1'
