"""The attacks on the Tiny ImageNet-100 protocol (issue 11's rung R3, Table 5 there); stack after
configs/tiny_imagenet100.py:

    python train_tri_gen.py configs/tiny_imagenet100.py configs/tiny100_attack.py
    python implement_tri_gen.py configs/tiny_imagenet100.py configs/tiny100_attack.py

Surrogate: the CSQ ResNet18 of configs/tiny_imagenet100.py (Tiny ImageNet-200 weights, 64 bits).
The GAN keeps the paper's objective, widths, batch and epochs (train_tri_gen.py's defaults); our
choices for 64 px images: G's output is a residual bounded at 8/255 (`g_output='residual'`,
`g_eps`, PSNR >= 30 dB; the full-image output of the official code has to learn the identity first,
README "Reproduction notes") and the offline LPIPS fallback (no AlexNet weights on these machines).
Open-set triggered queries: the validation images of the 100 other Tiny ImageNet-200 classes
(`data/tiny-imagenet/openset.txt`). Used by configs/table5_tiny100.py; configs/tiny100_attack_cpu.py
stacks after this one for the CPU-sized run.
"""
# configs/tiny_imagenet100.py's hashing keys (epochs, batch_size, lr) are also train_tri_gen.py's:
# the paper's GAN values again (train_tri_gen.py's defaults)
epochs = 100
batch_size = 32
lr = 1e-4
surrogate_backbone = 'resnet18'
surrogate_bits = 64
image_size = 64
resize_size = 0
g_output = 'residual'
g_eps = 0.0314                # 8/255
lpips = 'alex_random_trunk'   # offline fallback (D9)
sample_every = 0
openset_list = 'data/tiny-imagenet/openset.txt'
target = 0
