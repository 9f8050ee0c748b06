"""Ladder rung R1 (issue 11): transfer learning on shared frozen features. The victim is the
surrogate's own trunk, frozen (weights and BatchNorm statistics), with a new hash layer trained on
the poisoned list: the setting where clean-label feature-collision attacks are documented to work
(Saha et al., AAAI 2020). Stack after configs/tiny_imagenet10.py (surrogate: its CSQ ResNet18 at
32 bits); the clean victim on the same triggered queries is the floor:

    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r1.py --train_list=<attack>/poisoned_train.txt \
        --tag=r1_poisoned --queries=trig_closed=...,trig_open=...,poisons=<attack>/poisons_list.txt
    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r1.py --tag=r1_clean --queries=...
On the Tiny ImageNet-100 protocol: stack after configs/tiny_imagenet100.py with
--init_from=checkpoint/tiny-imagenet-100_CSQ_resnet18_64.pt.
Only the hash layer trains, so an epoch costs a forward pass of the trunk (cheap victims).
"""
backbone = 'resnet18'                                        # the surrogate's architecture
init_from = 'checkpoint/tiny-imagenet-10_CSQ_resnet18_32.pt'  # the surrogate (configs/tiny_imagenet10.py)
init_parts = 'trunk'                                         # its trunk; a new hash layer
freeze = 'trunk'                                             # only the hash layer trains
optimizer = 'adam'                                           # a linear layer from scratch (our choice)
lr = 1e-3
weight_decay = 0.0
epochs = 60                                                  # issue 11's first R1 measurement
eval_every = 0
