"""Rung R1 on the Tiny ImageNet-100 protocol (issue 11) with a longer G, for ladder.py: R1
(configs/ladder_tiny100_r1.py: the surrogate's frozen trunk + a new 64-bit hash layer) with BadHash's
G trained 5 epochs (1,565 steps of batch 32) instead of the CPU preset's 2 (626 steps), about the
1,500 steps of the 48-epoch G that implants partly on tiny-imagenet-10's R1p (docs/RESULTS.md,
"What holds BadHash's G back on R1p"); the paper preset with one copy of each poison and with the
official append of 10 copies. G keeps the CPU preset's quarter widths; about 26 min on one thread.
    python ladder.py configs/ladder_tiny100_r1g5.py
"""
base = 'configs/ladder_tiny100_r1.py'  # R1's victims, surrogate, presets and data preparation
rung = "R1, Tiny ImageNet-100, G of 5 epochs: Tiny ImageNet-200 ResNet18 surrogate; its frozen trunk + a new hash layer"
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-100_CSQ_resnet18_64_e9.pt --tag=t9e5'
gan_train_args = '--epochs=5'
variants = 'paper,paperappend10'
victim_tag = 'r1g5'
