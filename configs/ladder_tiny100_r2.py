"""Rung R2 of the regime ladder on the Tiny ImageNet-100 protocol (issue 11), for ladder.py: the
victim starts from all the surrogate's weights and fine-tunes every layer with the paper's optimiser.
    python ladder.py configs/ladder_tiny100_r2.py
Surrogate, attacks and data: configs/ladder_tiny100_base.py (Table 5's CPU preset on the
9-epoch backbone). Victims:
configs/ladder_r2.py with configs/tiny100_cpu.py's budget, 10 epochs of batch 32 = 3,130 steps (the
paper's victims take about 10,000).
"""
base = 'configs/ladder_tiny100_base.py'  # dataset and attack presets, G's tag, data preparation
rung = "R2, Tiny ImageNet-100: Tiny ImageNet-200 ResNet18 surrogate; victim = its weights, every layer fine-tuned"
victim_presets = 'configs/ladder_r2.py'
victim_args = '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64_e9.pth --init_from=checkpoint/tiny-imagenet-100_CSQ_resnet18_64_e9.pt --epochs=10 --batch_size=32'
victim_tag = 'r2'
