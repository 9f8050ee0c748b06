"""Rung R2 of the regime ladder on tiny-imagenet-10 (issue 11), surrogate from scratch, for ladder.py.
    python ladder.py configs/ladder_tiny10_r2.py        # resumable
The surrogate, G and attacks of configs/ladder_tiny10_r0.py (shared: made once); the victims start
from all the surrogate's weights and fine-tune every layer with the paper's optimiser (RMSprop 1e-5,
weight decay 1e-5) for 960 steps (configs/ladder_r2.py; the paper's victims take about 10,000).
"""
base = 'configs/ladder_tiny10_base.py'  # dataset and attack presets, open sets, data preparation
rung = 'R2, tiny-imagenet-10: surrogate ResNet18 from scratch; victim = its weights, every layer fine-tuned'
surrogate_args = '--epochs=8'
gan_args = '--tag=r0'
victim_presets = 'configs/ladder_r2.py'
victim_tag = 'r2'
