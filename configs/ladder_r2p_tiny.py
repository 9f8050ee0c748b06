"""Ladder rung R2 on the pretrained surrogate (R2p, issue 11): the victim starts from all the
weights of the R1p/R3f surrogate (a Tiny ImageNet-200 ResNet18 trunk with the 32-bit hash layer
trained on tiny-imagenet-10, configs/ladder_r3f_tiny.py) and fine-tunes every layer with the
paper's optimiser (RMSprop 1e-5, weight decay 1e-5, D15, from configs/ladder_r3_tiny.py). R2 of
configs/ladder_r2.py starts from the surrogate trained from scratch; this one from the pretrained
surrogate, where BadHash partly implants with frozen features (docs/RESULTS.md). Stack after
configs/tiny_imagenet10.py and configs/ladder_r3_tiny.py; the clean victim is the floor:

    P="configs/tiny_imagenet10.py configs/ladder_r3_tiny.py configs/ladder_r2p_tiny.py"
    python CSQ.py $P --train_list=<attack>/poisoned_train.txt --tag=r2p_poisoned_<variant> --queries=...
    python CSQ.py $P --tag=r2p_clean --queries=...
Budget (our CPU choice): 30 epochs of the 1,000-image list at batch 32, 960 optimiser steps (the
paper's victims take about 10,000), as configs/ladder_r2.py.
"""
init_from = 'checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt'  # the R1p / R3f surrogate
init_parts = 'all'
freeze = 'none'
batch_size = 32
epochs = 30
eval_every = 0
