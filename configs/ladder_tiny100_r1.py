"""Rung R1 of the regime ladder on the Tiny ImageNet-100 protocol (issue 11), for ladder.py: the
victim is the surrogate's own frozen trunk with a new 64-bit hash layer trained on the poisoned list.
    python ladder.py configs/ladder_tiny100_r1.py
Surrogate and attacks: those of Table 5's CPU preset (configs/table5_tiny100_cpu.py: CSQ ResNet18
from the Tiny ImageNet-200 weights, 3,130 steps; G of 2 epochs at a quarter of the widths, tag t0,
so the paper variant's G is Table 5's). Victims: configs/ladder_r1.py cut to 10 epochs of the
10,000 images (our CPU budget; only the hash layer trains). The open set is already real photos
(the other 100 classes' validation images).
"""
rung = "R1, Tiny ImageNet-100: Tiny ImageNet-200 ResNet18 surrogate; its frozen trunk + a new hash layer"
presets = 'configs/tiny_imagenet100.py,configs/tiny100_cpu.py'
attack_presets = 'configs/tiny100_attack.py,configs/tiny100_attack_cpu.py'
gan_args = '--tag=t0'
victim_presets = 'configs/ladder_r1.py'
victim_args = '--init_from=checkpoint/tiny-imagenet-100_CSQ_resnet18_64.pt --epochs=10'
victim_tag = 'r1'
prepare = 'data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip'
prepare_check = 'data/tiny-imagenet/train.txt,data/tiny-imagenet/openset.txt'
