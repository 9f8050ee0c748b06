"""Rung R3 of the regime ladder on tiny-imagenet-10 (issue 11) with the G of
configs/ladder_tiny10_r3fpsnr.py (bounded by PSNR, 30.2 dB, instead of 8/255), for ladder.py: the
victims are the CPU ResNet34 with every layer fine-tuned by the paper's recipe (configs/ladder_r3_tiny.py,
960 steps), as configs/ladder_tiny10_r3g48.py does for the 8/255 G. About 8-15 min per victim on 2
CPU threads. --variants=paper,paperappend10 adds the append's victim; --victim_args=... --seed=1 with
another --victim_tag gives another victim seed (repeat the preset's --backbone and --pretrained).
    python ladder.py configs/ladder_tiny10_r3gpsnr.py
"""
base = 'configs/ladder_tiny10_r3fpsnr.py'  # that G, R3f's surrogate, presets and open sets
rung = 'R3, tiny-imagenet-10, G bounded by PSNR (30.2 dB): Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34, every layer fine-tuned'
victim_presets = 'configs/ladder_r3_tiny.py'
variants = 'paper'
victim_tag = 'r3g48_l2'
