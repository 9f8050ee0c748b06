"""Rung R3 of the regime ladder on tiny-imagenet-10 (issue 11) with BadHash's G of 48 epochs, for
ladder.py: the victims are CSQ ResNet34 started from their own Tiny ImageNet-200 weights with every
layer fine-tuned by the paper's recipe (configs/ladder_r3_tiny.py: RMSprop 1e-5, 960 steps), as in
configs/ladder_tiny10_r3.py; the surrogate is the Tiny ImageNet-200 ResNet18 with its trunk frozen
and a hash layer trained on tiny-imagenet-10 (R1p's and R3f's, tag r3f), the limit of the paper's
surrogate fine-tuning at lr 1e-5, against which the paper preset's G is known to train (48 epochs,
docs/RESULTS.md "What holds BadHash's G back on R1p"); G, poisons and triggered queries are
R3f's (configs/ladder_tiny10_r3f.py, shared steps).
    python pretrain.py --backbone=resnet34 --epochs=3        # the victims' backbone, once
    python ladder.py configs/ladder_tiny10_r3g48.py
configs/ladder_tiny10_r3.py keeps the surrogate fine-tuned the same way as the victims (tag r3),
with an 8-epoch G; a 48-epoch G against that surrogate did less on these victims (docs/RESULTS.md,
"Rung R3 with the 48-epoch G"), hence the frozen-trunk surrogate here.
"""
base = 'configs/ladder_tiny10_r3f.py'  # R3f's surrogate, G, attacks and variants; its victims fine-tune here
rung = 'R3, tiny-imagenet-10, G of 48 epochs: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34, every layer fine-tuned'
victim_presets = 'configs/ladder_r3_tiny.py'
victim_tag = 'r3g48'
