"""Ladder rung R0 (issue 11): today's regime. The victim is an independent network of another
architecture (ResNet34) trained from scratch on the poisoned list; the surrogate (ResNet18 of
configs/tiny_imagenet10.py) shares nothing with it but the data. Stack after the dataset preset:

    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r0.py --train_list=<attack>/poisoned_train.txt \
        --tag=r0_poisoned --queries=trig_closed=<attack>/trigger_closed.txt,trig_open=<attack>/trigger_open.txt
    python CSQ.py configs/tiny_imagenet10.py configs/ladder_r0.py --tag=r0_clean --queries=...   # the floor
The same keys as configs/tiny_victim.py (12 epochs, our CPU budget).
"""
backbone = 'resnet34'
pretrained = False
eval_every = 0
epochs = 12
