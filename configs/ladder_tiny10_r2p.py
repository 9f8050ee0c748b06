"""Rung R2 on the pretrained surrogate (R2p) of the regime ladder on tiny-imagenet-10 (issue 11), for
ladder.py: the victim starts from all the weights of the R1p / R3f surrogate (the Tiny ImageNet-200
ResNet18 trunk with a 32-bit hash layer trained on tiny-imagenet-10) and fine-tunes every layer with
the paper's optimiser, 960 steps (configs/ladder_r2p_tiny.py).
    python ladder.py configs/ladder_tiny10_r2p.py
    python ladder.py configs/ladder_tiny10_r2p.py --variants=gsur,badnets --victim_args=--lr=1e-4 \
        --victim_tag=r2p_lr1e-4       # the victim moved ten times as far per step
G and the attacks: configs/tiny_attack.py against that surrogate, tagged r3f (docs/RESULTS.md,
"Can G's goal be reached?" and "Rung R2 on the pretrained surrogate"; those rows were measured
before this runner existed, with other query-list names).
"""
base = 'configs/ladder_tiny10_base.py'  # dataset and attack presets, open sets, data preparation
rung = 'R2p, tiny-imagenet-10: Tiny ImageNet-200 ResNet18 trunk + hash layer (R3f surrogate); victim = its weights, every layer fine-tuned'
surrogate_args = 'configs/ladder_r3_tiny.py configs/ladder_r3f_tiny.py --tag=r3f'
gan_args = '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3f'
victim_presets = 'configs/ladder_r3_tiny.py,configs/ladder_r2p_tiny.py'
victim_tag = 'r2p'
