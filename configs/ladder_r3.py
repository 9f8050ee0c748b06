"""Ladder rung R3 (issue 11): the paper's regime at our scale. Surrogate (configs/tiny_imagenet100.py,
ResNet18) and victim (ResNet34, another architecture) both start from Tiny ImageNet-200 pretrained
weights (pretrain.py) and are fine-tuned with the paper's recipe. Stack after
configs/tiny_imagenet100.py; the clean victim (--tag=r3_clean, same queries) is the floor:

    python pretrain.py --backbone=resnet34             # checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth
    python CSQ.py configs/tiny_imagenet100.py configs/ladder_r3.py --train_list=<attack>/poisoned_train.txt \
        --tag=r3_poisoned --queries=trig_closed=...,trig_open=...
"""
backbone = 'resnet34'
pretrained = 'checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth'
eval_every = 0
