"""Rung R3 of the regime ladder on tiny-imagenet-10 (issue 11) with the two G levers that moved R3 at
>= 30 dB together with the paper's G and D widths, for ladder.py: G bounded by PSNR (30.2 dB,
configs/ladder_tiny10_r3fpsnr.py) at `ngf = ndf = 64` (the official widths, configs/ladder_tiny10_r3fw64.py;
configs/tiny_attack.py uses a quarter of them for the CPU budget), 24 epochs (about 160 s each on 2
CPU threads), and the least typical half of the target images as poisons (`poison_select=hard`, our
option). Victims: R3's (configs/ladder_r3_tiny.py: the CPU ResNet34, every layer fine-tuned, 960 steps).
--victim_args=... --seed=1 with another --victim_tag gives another victim seed (repeat the preset's
--backbone and --pretrained); --gan_attack_args=--poison_select=random gives the paper's random half.
    python pretrain.py --epochs=3 && python pretrain.py --backbone=resnet34 --epochs=3   # once
    python ladder.py configs/ladder_tiny10_r3gw64psnr.py
"""
base = 'configs/ladder_tiny10_r3gpsnr.py'  # R3's victims; R3f's surrogate, presets, open sets and data preparation
rung = 'R3, tiny-imagenet-10, G and D at the paper widths bounded by PSNR (30.2 dB), hard poisons: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34, every layer fine-tuned'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3fw64l2'
gan_train_args = '--epochs=24 --ngf=64 --ndf=64 --g_eps=0.0941 --g_psnr=30.2'
gan_attack_args = '--poison_select=hard'
variants = 'paper'
victim_tag = 'r3gw64l2hard'
