"""Rung R2 of the regime ladder on tiny-imagenet-10 (issue 11), surrogate from scratch, for ladder.py.
    python ladder.py configs/ladder_tiny10_r2.py        # resumable
The surrogate, G and attacks of configs/ladder_tiny10_r0.py (shared: made once); the victims start
from all the surrogate's weights and fine-tune every layer with the paper's optimiser (RMSprop 1e-5,
weight decay 1e-5) for 960 steps (configs/ladder_r2.py; the paper's victims take about 10,000).
"""
rung = 'R2, tiny-imagenet-10: surrogate ResNet18 from scratch; victim = its weights, every layer fine-tuned'
presets = 'configs/tiny_imagenet10.py'
surrogate_args = '--epochs=8'
attack_presets = 'configs/tiny_attack.py'
gan_args = '--tag=r0'
victim_presets = 'configs/ladder_r2.py'
victim_tag = 'r2'
openreal_list = 'results/ladder_controls/openreal.txt'
# a fresh machine: the toy shapes at 64 px (open set), the Tiny ImageNet lists, the 300 open-set photos
prepare = ('data/prepare_toy.py --image_size=64 --out_dir=data/toy64; '
           'data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip; data/prepare_openreal.py')
prepare_check = 'data/toy64/openset.txt; data/tiny-imagenet/openset.txt; results/ladder_controls/openreal.txt'
