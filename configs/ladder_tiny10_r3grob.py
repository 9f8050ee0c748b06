"""Rung R3 of the regime ladder on tiny-imagenet-10 (issue 11) with a slightly robust surrogate
backbone, for ladder.py: the ResNet18 of pretrain.py fine-tuned adversarially on Tiny ImageNet-200
for one epoch (L2 PGD of 2 steps within 0.25 in [0, 1] pixels, SGD lr 0.01 cosine; pretrain.py's
`init` and `adv_eps`, our options), whose frozen trunk + a new hash layer is the surrogate, as R3f's
is. Adversarial examples made on a little-robust source transfer further (Springer et al., "A Little
Robustness Goes a Long Way", NeurIPS 2021); here the perturbation is G's. Everything else is
configs/ladder_tiny10_r3gpsnr.py with hard poisons: the quarter-width G of 48 epochs bounded by PSNR
(30.2 dB), the least typical half of the target images as poisons, one copy, R3's victims (the CPU
ResNet34, every layer fine-tuned, 960 steps).
    python pretrain.py --epochs=3 && python pretrain.py --backbone=resnet34 --epochs=3   # once
    python pretrain.py --init=checkpoint/tiny-imagenet-200_pretrain_resnet18_64.pth --adv_eps=0.25 \
        --epochs=1 --warmup_epochs=0 --lr=0.01 --tag=rob025                            # once
    python ladder.py configs/ladder_tiny10_r3grob.py
"""
base = 'configs/ladder_tiny10_r3gpsnr.py'  # R3's victims, the PSNR G's keys, presets and open sets
rung = 'R3, tiny-imagenet-10, a slightly robust surrogate (L2 0.25 adversarial fine-tuning), G bounded by PSNR (30.2 dB), hard poisons: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34, every layer fine-tuned'
surrogate_args = ('configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py '
                  '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64_rob025.pth --tag=r3fr025')
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3fr025.pt --tag=r3fr025l2'
gan_attack_args = '--poison_select=hard'
victim_tag = 'r3grob025hard'
