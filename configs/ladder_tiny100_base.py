"""What both Tiny ImageNet-100 rungs of the regime ladder share (issue 11), read first by
configs/ladder_tiny100_r1.py and _r2.py through their `base` key: Table 5's CPU preset for the
dataset and the attacks (configs/table5_tiny100_cpu.py: CSQ ResNet18 at 64 bits fine-tuned for
3,130 steps; G of 2 epochs at a quarter of the widths), on the backbone that `python pretrain.py`
makes with its defaults (ResNet18, 9 epochs, val top-1 0.386 here), kept under its own name (tag
e9) so that it is not confused with the 3-epoch stand-in of the tiny-imagenet-10 rungs, and the data
a fresh machine makes before the first step. The open set is already real photos (the other 100
classes' validation images). Not a rung itself.
"""
presets = 'configs/tiny_imagenet100.py,configs/tiny100_cpu.py'
surrogate_args = '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64_e9.pth --tag=e9'
attack_presets = 'configs/tiny100_attack.py,configs/tiny100_attack_cpu.py'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-100_CSQ_resnet18_64_e9.pt --tag=t9'
prepare = 'data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip'
prepare_check = 'data/tiny-imagenet/train.txt,data/tiny-imagenet/openset.txt'
