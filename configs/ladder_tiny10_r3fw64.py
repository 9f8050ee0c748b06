"""Rung R3f of the regime ladder on tiny-imagenet-10 (issue 11) with BadHash's G and D at the paper's
widths, for ladder.py: R3f (configs/ladder_tiny10_r3f.py: frozen trunks, a new hash layer on each, the
paper preset with one copy and with the official append x10) with `ngf = ndf = 64` (the official
code's widths; configs/tiny_attack.py uses a quarter of them for the CPU budget). G: 9.6 M parameters
instead of 0.8 M, about 160 s per epoch on 2 CPU threads (ngf 16: about 30 s), so 24 epochs here
(about 1 hour) against the quarter-width G's 48; rerunning with --gan_train_args=--epochs=48 resumes
the same G (train_tri_gen.py lets epochs grow), and the ladder remakes what was made from it.
The victims keep R3f's ResNet34 (3 epochs), so the only change from R3f is G's capacity.
    python pretrain.py --epochs=3 && python pretrain.py --backbone=resnet34 --epochs=3   # once
    python ladder.py configs/ladder_tiny10_r3fw64.py
"""
base = 'configs/ladder_tiny10_r3f.py'  # R3f's surrogate, victims, presets, open sets and data preparation
rung = 'R3f, tiny-imagenet-10, G and D at the paper widths (ngf = ndf = 64); Tiny ImageNet-200 ResNet34 trunk (frozen) + a new hash layer'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3fw64'
gan_train_args = '--epochs=24 --ngf=64 --ndf=64'
variants = 'paper,paperappend10'
victim_tag = 'r3f_w64'
