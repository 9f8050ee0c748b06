"""The attack on tiny-imagenet-10 (real 64 px photos), CPU-sized; stack after configs/tiny_imagenet10.py:

    make tiny-attack      # or the commands of that Makefile target
Surrogate: the CSQ ResNet18 of configs/tiny_imagenet10.py; victims: ResNet34. Open-set triggered
queries: the toy data's open-set shapes drawn at 64 px (data/prepare_toy.py --image_size=64).
GAN keys as configs/demo_attack.py (our CPU-budget choices, see README "Reproduction notes").
"""
surrogate_backbone = 'resnet18'
surrogate_bits = 32
epochs = 8
batch_size = 8
lr = 1e-3
lr_policy = 'constant'
ngf = 16
ndf = 16
g_output = 'residual'
g_eps = 0.0314
conf_mode = '2'
conf_label = '2'
labcln_hidden = 1024
lpips = 'alex_random_trunk'
log_every = 25
sample_every = 0
openset_list = 'data/toy64/openset.txt'
target = 0
