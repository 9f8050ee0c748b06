"""Rung R0 of the regime ladder on tiny-imagenet-10 (issue 11): today's regime, for ladder.py.
    python ladder.py configs/ladder_tiny10_r0.py        # resumable; about 2 CPU hours on 1 thread
Surrogate: CSQ ResNet18 from scratch (configs/tiny_imagenet10.py cut to 8 epochs, our CPU budget);
G and the attacks: configs/tiny_attack.py (8 epochs), tagged r0; victims: an independent ResNet34
from scratch, 12 epochs (configs/ladder_r0.py). Open sets: the toy shapes at 64 px (the attack
preset's) and 300 real Tiny ImageNet-200 photos of other classes (results/ladder_controls/
openreal.txt, written by data/prepare_openreal.py as the runner's first step).
configs/ladder_tiny10_r2.py fine-tunes the same surrogate on the same attacks.
"""
base = 'configs/ladder_tiny10_base.py'  # dataset and attack presets, open sets, data preparation
rung = 'R0, tiny-imagenet-10: surrogate ResNet18 from scratch; independent ResNet34 victim from scratch'
surrogate_args = '--epochs=8'
gan_args = '--tag=r0'
victim_presets = 'configs/ladder_r0.py'
victim_tag = 'r0'
