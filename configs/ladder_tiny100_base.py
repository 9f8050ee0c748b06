"""What both Tiny ImageNet-100 rungs of the regime ladder share (issue 11), read first by
configs/ladder_tiny100_r1.py and _r2.py through their `base` key: Table 5's CPU preset for the
dataset and the attacks (configs/table5_tiny100_cpu.py: CSQ ResNet18 from the Tiny ImageNet-200
weights, 3,130 steps; G of 2 epochs at a quarter of the widths, tag t0, so the paper variant's G is
Table 5's) and the data a fresh machine makes before the first step. The open set is already real
photos (the other 100 classes' validation images). Not a rung itself.
"""
presets = 'configs/tiny_imagenet100.py,configs/tiny100_cpu.py'
attack_presets = 'configs/tiny100_attack.py,configs/tiny100_attack_cpu.py'
gan_args = '--tag=t0'
prepare = 'data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip'
prepare_check = 'data/tiny-imagenet/train.txt,data/tiny-imagenet/openset.txt'
