"""Rung R3 of the regime ladder on tiny-imagenet-10 (issue 11), for ladder.py: the closest rung to
the paper these machines allow.
    python ladder.py configs/ladder_tiny10_r3.py
Surrogate CSQ ResNet18 and victims CSQ ResNet34 both start from the Tiny ImageNet-200 weights
(pretrain.py) and fine-tune every layer with the paper's recipe, 960 steps (configs/ladder_r3_tiny.py).
G and the attacks: configs/tiny_attack.py against that surrogate, tagged r3. The rows of
docs/RESULTS.md "Rung R3 at tiny-imagenet-10 scale with full fine-tuning" were measured with these
runs before this runner existed (their query lists had other names; the runner encodes its own).
"""
base = 'configs/ladder_tiny10_base.py'  # dataset and attack presets, open sets, data preparation
rung = 'R3, tiny-imagenet-10: Tiny ImageNet-200 ResNet18 surrogate; Tiny ImageNet-200 ResNet34 victim, every layer fine-tuned'
surrogate_args = 'configs/ladder_r3_tiny.py --tag=r3 --eval_every=30'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3.pt --tag=r3'
victim_presets = 'configs/ladder_r3_tiny.py'
victim_args = '--backbone=resnet34 --pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth'
victim_tag = 'r3'
