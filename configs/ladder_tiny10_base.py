"""What every tiny-imagenet-10 rung of the regime ladder shares (issue 11), read first by each
configs/ladder_tiny10_*.py through its `base` key: the dataset and attack presets, the second open
set of 300 real Tiny ImageNet-200 photos of other classes, and the data a fresh machine makes before
the first step. Not a rung itself: ladder.py runs configs/ladder_tiny10_<rung>.py.
"""
presets = 'configs/tiny_imagenet10.py'
attack_presets = 'configs/tiny_attack.py'
openreal_list = 'results/ladder_controls/openreal.txt'
# a fresh machine: the toy shapes at 64 px (open set), the Tiny ImageNet lists, the 300 open-set photos
prepare = ('data/prepare_toy.py --image_size=64 --out_dir=data/toy64; '
           'data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip; data/prepare_openreal.py')
prepare_check = 'data/toy64/openset.txt; data/tiny-imagenet/openset.txt; results/ladder_controls/openreal.txt'
