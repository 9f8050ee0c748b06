"""Ladder rung R2 (issue 11): the victim starts from all the surrogate's weights (trunk and hash
layer) and fine-tunes every layer with the paper's optimiser (RMSprop 1e-5, weight decay 1e-5, D15).
At lr 1e-5 what matters is the number of optimiser steps: the paper's victims take about 10,000
(100 epochs of 13,000 images at batch 128); here 30 epochs of the 1,000-image list at batch 32 are
960 steps (our CPU budget), so this victim moves little from the surrogate. Stack after
configs/tiny_imagenet10.py; the clean victim (--tag=r2_clean, same queries) is the floor:

    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r2.py --train_list=<attack>/poisoned_train.txt \
        --tag=r2_poisoned --queries=trig_closed=...,trig_open=...
"""
backbone = 'resnet18'                                        # the surrogate's architecture
init_from = 'checkpoint/tiny-imagenet-10_CSQ_resnet18_32.pt'  # the surrogate (configs/tiny_imagenet10.py)
init_parts = 'all'
freeze = 'none'
optimizer = 'rmsprop'                                        # paper / official code (D15)
lr = 1e-5
weight_decay = 1e-5
batch_size = 32                                              # 32 steps per epoch of 1,000 images (our choice)
epochs = 30                                                  # 960 steps (paper: about 10,000)
eval_every = 0
