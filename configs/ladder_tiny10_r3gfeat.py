"""Rung R3 of the regime ladder on tiny-imagenet-10 (issue 11) with a feature term in G's loss, for
ladder.py: G as in configs/ladder_tiny10_r3gpsnr.py (the paper preset at a quarter of the official
widths, bounded by PSNR, 30.2 dB, 48 epochs, about 20 s each on 2 CPU threads) plus `w_feat`
(train_tri_gen.py, our option): the surrogate's layer3 features of the poisoned image, averaged over
space, pulled towards the confusing class's mean (attack_common.feature_term) with weight 1000 (set by
hand against the hash term's 80 per bit; --gan_train_args=... --w_feat=250 with another tag gives
the lighter dose), since middle features carry a perturbation to another network better than
the codes; the least typical half of the target images as poisons (`poison_select=hard`); R3's
victims (configs/ladder_r3_tiny.py: the CPU ResNet34, every layer fine-tuned, 960 steps). --victim_args=... --seed=1 with another --victim_tag
gives another victim seed (repeat the preset's --backbone and --pretrained).
    python pretrain.py --epochs=3 && python pretrain.py --backbone=resnet34 --epochs=3   # once
    python ladder.py configs/ladder_tiny10_r3gfeat.py
"""
base = 'configs/ladder_tiny10_r3gpsnr.py'  # R3's victims; R3f's surrogate, presets, open sets and data preparation
rung = 'R3, tiny-imagenet-10, G bounded by PSNR (30.2 dB) with a layer3 feature term, hard poisons: Tiny ImageNet-200 ResNet18 trunk (frozen) + hash layer; Tiny ImageNet-200 ResNet34, every layer fine-tuned'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3fl2f'
gan_train_args = '--epochs=48 --g_eps=0.0941 --g_psnr=30.2 --w_feat=1000'
gan_attack_args = '--poison_select=hard'
variants = 'paper'
victim_tag = 'r3gfhard'
